"""Writes to workloads through the Kubernetes API (adapter)."""

from __future__ import annotations

from collections.abc import Mapping

from kubernetes import client
from kubernetes.client import ApiClient

from rightsizer import names
from rightsizer.model.workloads import WorkloadInfo, apps_api_method


def annotate(api: ApiClient, workload: WorkloadInfo, annotations: Mapping[str, str]) -> None:
    """Merge-patch annotations into the workload's own metadata (never its pod template,
    so nothing rolls)."""
    patcher = getattr(client.AppsV1Api(api), apps_api_method("patch", workload.kind))
    patcher(workload.name, workload.namespace, {"metadata": {"annotations": dict(annotations)}})


#: A status write gives up after this long (connect, read); the next tick tries again.
STATUS_WRITE_TIMEOUT_S = (5.0, 30.0)


def write_policy_status(
    api: ApiClient, namespace: str, name: str, status: Mapping[str, object]
) -> None:
    """Merge-patch a policy's status subresource (raises on any failure).

    Written here rather than through Kopf's patch: when Kopf's own patch exhausts its
    retries (an API outage), the exception leaves Kopf's timer loop and the timer is never
    started again for that object (``kopf/_core/engines/daemons.py``: ``_runner`` marks
    it ``forever_stopped``)."""
    client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        names.GROUP, names.VERSION, namespace, names.POLICY_PLURAL, name, {"status": dict(status)},
        _content_type="application/merge-patch+json", _request_timeout=STATUS_WRITE_TIMEOUT_S,
    )  # fmt: skip
