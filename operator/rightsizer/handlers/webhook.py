"""The mutating admission webhook for pods: new pods of a workload sized in place get the
values its pods run with (``model/admission.py`` decides; ``docs/design.md``, "Admission
webhook").

Thin by design: the pod's owner comes from its metadata, the owner from the operator's
workload cache, the policy's mode and the namespace's opt-in from Kopf's indexes — no API
call while a pod waits. It never refuses a pod and never raises: a failure of its own
leaves the pod as asked (the configuration's ``failurePolicy: Ignore`` covers the rest:
the operator down, a timeout).

Off unless ``RIGHTSIZER_WEBHOOK_PORT`` is set: the handler is registered only then (Kopf
refuses admission handlers without a server).
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from rightsizer import names
from rightsizer.actuation import webhook_tls
from rightsizer.handlers.caches import Caches
from rightsizer.model.admission import WorkloadFacts, decide, owner_of, policy_modes

PORT_VARIABLE = "RIGHTSIZER_WEBHOOK_PORT"
ADDRESS_VARIABLE = "RIGHTSIZER_WEBHOOK_ADDRESS"
CONFIGURATION_VARIABLE = "RIGHTSIZER_WEBHOOK_CONFIGURATION"
#: The handler's id: the last part of the webhook's path (``/size-pods``).
HANDLER_ID = "size-pods"
#: The cache each owner kind is in (``caches.py``).
CACHE_OF_KIND = {"Deployment": "deployments", "StatefulSet": "statefulsets",
                 "DaemonSet": "daemonsets"}  # fmt: skip
operator_log = logging.getLogger("rightsizer.operator")


@dataclass(frozen=True)
class WebhookSettings:
    port: int
    """``RIGHTSIZER_WEBHOOK_PORT``: where the webhook listens (HTTPS); unset or 0: no
    webhook."""
    address: str = "127.0.0.1"
    """``RIGHTSIZER_WEBHOOK_ADDRESS``: the address it listens on (in a pod: 0.0.0.0)."""
    configuration: str = "rightsizer"
    """``RIGHTSIZER_WEBHOOK_CONFIGURATION``: the MutatingWebhookConfiguration whose
    ``caBundle`` the operator fills in at start-up."""


def webhook_settings_from_env(env: Mapping[str, str] | None = None) -> WebhookSettings | None:
    """Raises ``ValueError`` naming the variable that is wrong."""
    env = os.environ if env is None else env
    text = env.get(PORT_VARIABLE, "").strip()
    if not text or text == "0":
        return None
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"{PORT_VARIABLE}: not a port number: {text!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"{PORT_VARIABLE}: not a port number: {text!r}")
    return WebhookSettings(
        port=port,
        address=env.get(ADDRESS_VARIABLE, "").strip() or WebhookSettings.address,
        configuration=env.get(CONFIGURATION_VARIABLE, "").strip() or WebhookSettings.configuration,
    )


def start(settings: kopf.OperatorSettings, api: ApiClient, webhook: WebhookSettings) -> str:
    """Make the certificate for the names the configuration calls, serve with it, and put
    its CA in the configuration; returns a line for the start-up log. A configuration
    that is missing or may not be read is the installer's mistake: the operator stops."""
    name = webhook.configuration
    try:
        configuration = webhook_tls.read_configuration(api, name)
    except ApiException as exc:
        if exc.status in (403, 404):
            raise kopf.PermanentError(
                f"MutatingWebhookConfiguration {name}: HTTP {exc.status} ({exc.reason}); "
                f"install it (manifests/mutatingwebhook.yaml) or set {PORT_VARIABLE}=0"
            ) from None
        raise kopf.TemporaryError(
            f"MutatingWebhookConfiguration {name}: HTTP {exc.status}"
        ) from None
    hosts = webhook_tls.hosts_of(configuration)
    if not hosts:
        raise kopf.PermanentError(f"MutatingWebhookConfiguration {name} calls no Service or URL")
    certificate = webhook_tls.make_certificate(hosts, datetime.datetime.now(datetime.UTC))
    certfile, keyfile = webhook_tls.write(certificate)
    settings.admission.server = kopf.WebhookServer(
        addr=webhook.address, port=webhook.port, host=hosts[0],
        certfile=certfile, pkeyfile=keyfile,
    )  # fmt: skip
    webhook_tls.patch_ca_bundle(api, name, configuration.get("webhooks") or [], certificate.ca_pem)
    return f"admission webhook on https://{webhook.address}:{webhook.port} for {', '.join(hosts)}"


def _facts(
    caches: Caches | None, namespace: str, meta: Mapping[str, Any], indexes: Mapping[str, Any]
) -> WorkloadFacts | None:
    owner = owner_of(meta)
    if owner is None or caches is None or not caches.synced():
        return None
    store = caches.stores[CACHE_OF_KIND[owner.kind]]
    workload = store.find(namespace, owner.name)
    if workload is None:
        return None
    modes = policy_modes(indexes["policies"].get(namespace, []))
    limits = [item for items in indexes["limitranges"].get(namespace, []) for item in items]
    quotas = list(indexes["resourcequotas"].get(namespace, []))
    return WorkloadFacts(workload.annotations, workload.selector, modes, limits, quotas)


async def size_pod(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, namespace: str | None, **indexes: Any
) -> None:
    """Sets the pod's containers' requests and limits to its workload's pod-resources and
    notes what it changed; anything unexpected leaves the pod alone. Async: it reads only
    memory (a sync handler would queue behind Kopf's worker threads while a pod waits).
    ``indexes``: Kopf's (``policies``, ``namespaces``, ``limitranges``,
    ``resourcequotas``: ``main.py``)."""
    try:
        namespaces: kopf.Index[str, dict[str, str]] = indexes["namespaces"]
        ns = namespace or ""
        labels = next(iter(namespaces.get(ns, [])), {})
        if labels.get(names.AUTO_APPLY_LABEL) != names.AUTO_APPLY_ENABLED:
            return  # the configuration's namespaceSelector should have kept it away
        meta = body.get("metadata") or {}
        decision = decide(body, _facts(getattr(memo, "caches", None), ns, meta, indexes))
        if decision.changed:
            containers = list((body.get("spec") or {}).get("containers") or [])
            for index, container in decision.containers.items():
                containers[index] = container
            patch.spec["containers"] = containers
        if decision.note:
            patch.metadata.annotations[names.ADMISSION_ANNOTATION] = decision.note
    except Exception:
        operator_log.exception(f"admission of a pod in {namespace} failed; created as asked")
        patch.clear()
