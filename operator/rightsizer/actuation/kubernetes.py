"""Writes to workloads through the Kubernetes API (adapter)."""

from __future__ import annotations

from collections.abc import Mapping

from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from rightsizer import names
from rightsizer.actuation.resources import WriteRejectedError, api_message
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


class AnnotateConflictError(RuntimeError):
    """The workload changed since it was read (HTTP 409): decide again on the fresh one."""


def annotate_checked(
    api: ApiClient,
    workload: WorkloadInfo,
    annotations: Mapping[str, str | None],
    resource_version: str = "",
) -> None:
    """Merge-patch the workload's own annotations (None removes one; never the pod
    template, so nothing rolls). With ``resource_version``, only if the workload is still
    as it was read (else ``AnnotateConflictError``); ``WriteRejectedError`` when refused."""
    metadata: dict[str, object] = {"annotations": dict(annotations)}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    patcher = getattr(client.AppsV1Api(api), apps_api_method("patch", workload.kind))
    try:
        patcher(
            workload.name, workload.namespace, {"metadata": metadata},
            _content_type="application/merge-patch+json", _request_timeout=(5, 30),
        )  # fmt: skip
    except ApiException as exc:
        if exc.status == 409:
            raise AnnotateConflictError(api_message(exc)) from None
        raise WriteRejectedError(f"HTTP {exc.status}: {api_message(exc)}") from None


def namespace_opted_in(api: ApiClient, namespace: str) -> bool:
    """The namespace's opt-in label as the API server has it now (read right before a
    write; a list by name, as the operator may list namespaces but not get them)."""
    found = client.CoreV1Api(api).list_namespace(
        field_selector=f"metadata.name={namespace}", _request_timeout=(5, 30)
    )
    return any(
        ((ns.metadata.labels if ns.metadata else None) or {}).get(names.AUTO_APPLY_LABEL)
        == names.AUTO_APPLY_ENABLED
        for ns in found.items or []
    )
