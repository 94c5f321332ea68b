"""Reads from the Kubernetes API for reports: owners, label selectors, LimitRanges.

Thin: each function lists objects with the official client and returns plain data.
"""

from __future__ import annotations

import base64
from typing import Any

from kubernetes import client, config
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from rightsizer.engine.policy import LimitRangeItem, parse_limit_range
from rightsizer.model.workloads import WORKLOAD_KINDS, apps_api_method
from rightsizer.sources.errors import (
    SourceError,
    SourceProblem,
    SourceRefusedError,
    SourceRejectedError,
    SourceUnavailableError,
)


def api_client(context: str | None = None) -> ApiClient:
    """The current kubeconfig context (or ``context``), else the in-cluster account."""
    try:
        return config.new_client_from_config(context=context)
    except config.ConfigException:
        if context is None:
            try:
                config.load_incluster_config()
                return ApiClient()
            except config.ConfigException:
                pass
        raise SourceUnavailableError(
            "no Kubernetes access: set KUBECONFIG or run in a cluster"
            + (f" (context {context!r} not found)" if context else "")
        ) from None


def call_api(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        raise _source_error(exc) from None


def _source_error(exc: Exception) -> SourceError:
    if isinstance(exc, ApiException):
        if exc.status in (401, 403):
            return SourceRejectedError(
                f"the Kubernetes API refused access (HTTP {exc.status}): {exc.reason}",
                SourceProblem.KUBERNETES_REFUSED,
            )
        return SourceUnavailableError(
            f"Kubernetes API error {exc.status}: {exc.reason}", SourceProblem.KUBERNETES_FAILED
        )
    # urllib3 connection errors and the like
    return SourceUnavailableError(
        f"cannot reach the Kubernetes API: {exc}", SourceProblem.KUBERNETES_UNREACHABLE
    )


def pod_owners(api: ApiClient, namespace: str) -> dict[tuple[str, str], tuple[str, str]]:
    pods = call_api(client.CoreV1Api(api).list_namespaced_pod, namespace)
    owners = {}
    for pod in pods.items:
        for ref in pod.metadata.owner_references or []:
            if ref.controller:
                owners[(namespace, pod.metadata.name)] = (ref.kind, ref.name)
    return owners


def replicaset_owners(api: ApiClient, namespace: str) -> dict[tuple[str, str], tuple[str, str]]:
    sets = call_api(client.AppsV1Api(api).list_namespaced_replica_set, namespace)
    owners = {}
    for rs in sets.items:
        for ref in rs.metadata.owner_references or []:
            if ref.controller:
                owners[(namespace, rs.metadata.name)] = (ref.kind, ref.name)
    return owners


def workloads_matching(
    api: ApiClient, namespace: str, selector: str, kinds: tuple[str, ...]
) -> set[tuple[str, str]]:
    """(namespace, Kind/name) of the workloads whose labels match ``selector``."""
    apps = client.AppsV1Api(api)
    found = set()
    for kind in kinds:
        if kind not in WORKLOAD_KINDS:
            continue
        lister = apps_api_method("list", kind)
        items = call_api(getattr(apps, lister), namespace, label_selector=selector).items
        found |= {(namespace, f"{kind}/{w.metadata.name}") for w in items}
    return found


def limit_range_items(api: ApiClient, namespace: str) -> list[LimitRangeItem]:
    ranges = call_api(client.CoreV1Api(api).list_namespaced_limit_range, namespace)
    items: list[LimitRangeItem] = []
    for lr in ranges.items:
        data = api.sanitize_for_serialization(lr)
        data["kind"] = "LimitRange"
        items.extend(parse_limit_range(data))
    return items


def read_secret(api: ApiClient, namespace: str, name: str) -> tuple[str, dict[str, bytes]]:
    """A Secret's type and its data, decoded (values stay in memory only; never logged).

    Missing and forbidden look the same to the caller, so a policy's author cannot use
    the operator to learn which Secrets exist.
    """
    try:
        secret = client.CoreV1Api(api).read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status in (403, 404):
            raise SourceRefusedError(SourceProblem.SECRET_UNREADABLE) from None
        raise _source_error(exc) from None
    except Exception as exc:
        raise _source_error(exc) from None
    try:
        data = {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
    except ValueError:
        raise SourceRefusedError(SourceProblem.SECRET_NOT_TEXT) from None
    return str(secret.type or ""), data


def template_containers(
    api: ApiClient, namespace: str, kinds: tuple[str, ...]
) -> dict[tuple[str, str], list[tuple[str, dict[str, Any]]]]:
    """(namespace, Kind/name) → its pod template's containers in order: name and
    ``resources`` as plain data (for JSON patches, which address containers by index)."""
    apps = client.AppsV1Api(api)
    found = {}
    for kind in kinds:
        if kind not in WORKLOAD_KINDS:
            continue
        lister = apps_api_method("list", kind)
        for w in call_api(getattr(apps, lister), namespace).items:
            found[(namespace, f"{kind}/{w.metadata.name}")] = [
                (c.name, api.sanitize_for_serialization(c.resources) or {})
                for c in w.spec.template.spec.containers or []
            ]
    return found


def hpas_of(api: ApiClient, namespace: str) -> list[dict[str, Any]]:
    """The namespace's HorizontalPodAutoscalers (autoscaling/v2) as plain data."""
    found = call_api(client.AutoscalingV2Api(api).list_namespaced_horizontal_pod_autoscaler,
                     namespace)  # fmt: skip
    plain: list[dict[str, Any]] = api.sanitize_for_serialization(found).get("items") or []
    return plain


def pod_names(api: ApiClient, namespace: str) -> set[str] | None:
    """Names of the namespace's pods now; None when the API does not answer (forgetting
    then goes by idleness alone)."""
    try:
        pods = client.CoreV1Api(api).list_namespaced_pod(namespace)
    except (ApiException, OSError):
        return None
    return {str(p.metadata.name) for p in pods.items if p.metadata is not None}
