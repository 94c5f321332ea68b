"""Resizes running pods in place through their ``resize`` subresource (adapter: the only
I/O here). What to send is decided by ``rightsizer.model.pods``; this module sends it and
names the server's answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from rightsizer.actuation.resources import WriteRejectedError, api_message
from rightsizer.model.pods import resize_patch
from rightsizer.model.workloads import ContainerResources

RESIZE_SUBRESOURCE = "pods/resize"


class ResizeConflictError(RuntimeError):
    """The pod changed since it was read (HTTP 409): read it again and decide again."""


def serves_resize(api: ApiClient) -> bool:
    """Whether the API server serves ``pods/resize`` (Kubernetes 1.33 and later)."""
    resources = client.CoreV1Api(api).get_api_resources(_request_timeout=(5, 30))
    return any(r.name == RESIZE_SUBRESOURCE for r in resources.resources or [])


def resize_pod(
    api: ApiClient,
    namespace: str,
    name: str,
    resize: Sequence[ContainerResources],
    resource_version: str = "",
) -> dict[str, Any]:
    """Ask for new resources on a running pod's containers; returns the pod as stored.
    With ``resource_version``, only if the pod is still as it was read (else
    ``ResizeConflictError``). ``WriteRejectedError`` when refused (e.g. the QoS rule)."""
    body = resize_patch(resize)
    if resource_version:
        body["metadata"] = {"resourceVersion": resource_version}
    try:
        pod = client.CoreV1Api(api).patch_namespaced_pod_resize(
            name, namespace, body, _request_timeout=(5, 30)
        )
    except ApiException as exc:
        if exc.status == 409:
            raise ResizeConflictError(api_message(exc)) from None
        raise WriteRejectedError(f"HTTP {exc.status}: {api_message(exc)}") from None
    plain: dict[str, Any] = api.sanitize_for_serialization(pod)  # type: ignore[no-untyped-call]
    return plain
