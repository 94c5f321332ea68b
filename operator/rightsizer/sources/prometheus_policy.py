"""A policy's Prometheus: its URL and credentials (from a Secret) → a history reader
(adapter: reads the Secret, writes a CA bundle to the temp directory)."""

from __future__ import annotations

import os
import tempfile

from kubernetes.client import ApiClient

from rightsizer.policy.spec import PrometheusSource
from rightsizer.sources import kubernetes_api
from rightsizer.sources.prometheus import PrometheusClient, PrometheusConfig
from rightsizer.sources.prometheus_history import PrometheusHistory


def open_history(api: ApiClient, src: PrometheusSource, namespace: str) -> PrometheusHistory:
    """A reader for ``src``; the caller closes ``.client`` when done."""
    token = basic = ca_file = None
    if src.auth_secret:
        data = kubernetes_api.read_secret(api, namespace, src.auth_secret)
        token = data.get("token")
        if "username" in data:
            basic = (data["username"], data.get("password", ""))
        if data.get("ca.crt"):
            ca_file = os.path.join(
                tempfile.gettempdir(), f"rightsizer-ca-{namespace}-{src.auth_secret}.crt"
            )
            with open(ca_file, "w") as fh:
                fh.write(data["ca.crt"])
    cfg = PrometheusConfig(
        url=src.url, bearer_token=token, basic_auth=basic, ca_bundle=ca_file,
        label_matchers=src.label_matchers, timeout_s=60.0, retries=2,
    )  # fmt: skip
    return PrometheusHistory(PrometheusClient(cfg))
