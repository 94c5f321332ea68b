"""A policy's Prometheus: its URL and credentials (from a Secret) → a history reader
(adapter: reads the Secret, writes a CA bundle to the temp directory).

Refusals come first and send nothing: a URL not under the install's allow-list, then a
Secret that is not marked for the operator or whose values cannot go into a header. The
client is given the canonical URL that was checked, never the policy's own text.
"""

from __future__ import annotations

import hashlib
import os
import tempfile

from kubernetes.client import ApiClient

from rightsizer.policy.spec import PrometheusSource
from rightsizer.sources import kubernetes_api
from rightsizer.sources.credentials import (
    CredentialsError,
    PrometheusCredentials,
    credentials_from_secret,
)
from rightsizer.sources.endpoints import AllowList, EndpointError
from rightsizer.sources.errors import SourceProblem, SourceRefusedError
from rightsizer.sources.limits import SourceLimits
from rightsizer.sources.prometheus import PrometheusClient, PrometheusConfig
from rightsizer.sources.prometheus_history import PrometheusHistory


def open_history(
    api: ApiClient, src: PrometheusSource, namespace: str, allowed: AllowList,
    limits: SourceLimits | None = None, deadline_monotonic: float | None = None,
) -> PrometheusHistory:  # fmt: skip
    """A reader for ``src`` whose requests end by ``deadline_monotonic`` and within
    ``limits``; the caller closes ``.client`` when done. Raises ``SourceRefusedError``
    (nothing sent) when the URL, the matchers or the Secret may not be used."""
    try:
        endpoint = allowed.check(src.url)
    except EndpointError as exc:
        raise SourceRefusedError(exc.problem) from None
    except ValueError:  # whatever a parser may still find wrong: refused all the same
        raise SourceRefusedError(SourceProblem.URL_HOST) from None
    limits = limits or SourceLimits()
    credentials = PrometheusCredentials()
    if src.auth_secret:
        secret_type, data = kubernetes_api.read_secret(api, namespace, src.auth_secret)
        try:
            credentials = credentials_from_secret(secret_type, data)
        except CredentialsError as exc:
            raise SourceRefusedError(exc.problem) from None
    cfg = PrometheusConfig(
        url=endpoint.url, bearer_token=credentials.token, basic_auth=credentials.basic_auth,
        ca_bundle=_ca_file(credentials.ca_bundle_pem) if credentials.ca_bundle_pem else None,
        label_matchers=src.label_matchers, timeout_s=limits.query_timeout_s, retries=2,
        trust_env=False, max_response_bytes=limits.max_response_bytes,
        max_queries=limits.max_queries,
    )  # fmt: skip
    client = PrometheusClient(cfg, deadline_monotonic)
    try:
        return PrometheusHistory(client)
    except ValueError:
        client.close()
        raise SourceRefusedError(SourceProblem.LABEL_MATCHERS) from None


def _ca_file(pem: str) -> str:
    """A file holding ``pem``, named by its content: policies of different namespaces can
    share one, but no policy can replace another's bundle by choosing names."""
    digest = hashlib.sha256(pem.encode()).hexdigest()
    path = os.path.join(tempfile.gettempdir(), f"rightsizer-ca-{digest}.crt")
    if not os.path.exists(path):
        fd, tmp = tempfile.mkstemp(prefix="rightsizer-ca-", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(pem)
        os.replace(tmp, path)
    return path
