"""Writes new requests/limits to a workload's pod template (adapter: the only I/O here).

Server-side apply with the field manager ``rightsizer``: the apply configuration holds
only the selected containers' ``resources`` (cpu and memory) and our record annotation,
so no other field changes owner or value. Each write is first sent as a server-side
dry-run (admission, LimitRanges and quotas answer without anything being stored), and
carries the ``resourceVersion`` the decision was made on: if someone edited the workload
meanwhile, the API answers 409 and ``write`` asks ``redecide`` again on the fresh object
instead of overwriting blind.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from rightsizer.engine.recommendation import Resources
from rightsizer.model.workloads import apps_api_method
from rightsizer.names import FIELD_MANAGER, RECORD_ANNOTATION
from rightsizer.quantity import quantities

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
MAX_ATTEMPTS = 6
#: Pause before attempt n (n × this): a rolling Deployment's status moves its
#: resourceVersion several times a second.
RETRY_PAUSE_S = 0.2


class WriteRejectedError(RuntimeError):
    """The API (or its admission) refused the write; nothing was stored."""


@dataclass(frozen=True)
class ResourcesWrite:
    """What to write: new cpu/memory requests and limits per container, and the record."""

    kind: str
    namespace: str
    name: str
    containers: Mapping[str, tuple[Resources, Resources]]
    record: Mapping[str, Any]
    resource_version: str = ""


def apply_configuration(write: ResourcesWrite) -> dict[str, Any]:
    """The server-side apply body (pure). Every cpu/memory value we manage is stated each
    time: a field we once owned and now leave out would be removed."""
    containers = []
    for name, (requests, limits) in sorted(write.containers.items()):
        resources: dict[str, Any] = {}
        req = quantities(requests.cpu_millicores, requests.memory_bytes)
        lim = quantities(limits.cpu_millicores, limits.memory_bytes)
        if req:
            resources["requests"] = req
        if lim:
            resources["limits"] = lim
        containers.append({"name": name, "resources": resources})
    metadata: dict[str, Any] = {
        "name": write.name,
        "namespace": write.namespace,
        "annotations": {RECORD_ANNOTATION: json.dumps(write.record, separators=(",", ":"))},
    }
    if write.resource_version:
        metadata["resourceVersion"] = write.resource_version
    return {
        "apiVersion": "apps/v1",
        "kind": write.kind,
        "metadata": metadata,
        "spec": {"template": {"spec": {"containers": containers}}},
    }


def api_message(exc: ApiException) -> str:
    """The message of an API error (its Status), or its HTTP reason."""
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


def write(
    api: ApiClient,
    plan: ResourcesWrite,
    redecide: Callable[[dict[str, Any]], ResourcesWrite | None] | None = None,
) -> tuple[ResourcesWrite | None, int]:
    """Dry-run, then apply. On 409 (edited meanwhile) read the workload again and let
    ``redecide`` make a new plan from it (None: nothing to write any more).

    Returns the plan that was written (None if none) and the API requests made.
    Raises ``WriteRejectedError`` when the dry-run or the write is refused.
    """
    apps = client.AppsV1Api(api)
    patch = getattr(apps, apps_api_method("patch", plan.kind))
    requests = 0
    current: ResourcesWrite | None = plan
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert current is not None
        body = apply_configuration(current)
        try:
            for dry_run in ("All", None):
                requests += 1
                patch(
                    current.name, current.namespace, body, field_manager=FIELD_MANAGER,
                    force=True, dry_run=dry_run, _content_type=APPLY_CONTENT_TYPE,
                )  # fmt: skip
            return current, requests
        except ApiException as exc:
            if exc.status != 409 or redecide is None:
                raise WriteRejectedError(f"HTTP {exc.status}: {api_message(exc)}") from None
        requests += 1
        time.sleep(RETRY_PAUSE_S * attempt)
        fresh = _plain(
            api, getattr(apps, apps_api_method("read", plan.kind))(plan.name, plan.namespace)
        )
        current = redecide(fresh)
        if current is None:
            return None, requests
    raise WriteRejectedError(f"still conflicting after {MAX_ATTEMPTS} attempts")


def pods_of(api: ApiClient, namespace: str) -> Sequence[dict[str, Any]]:
    """The namespace's pods (plain dicts)."""
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace)
    out: list[dict[str, Any]] = _plain(api, pods).get("items") or []
    return out


def events_of(api: ApiClient, namespace: str, reason: str) -> Sequence[dict[str, Any]]:
    """The namespace's Events with ``reason`` (plain dicts)."""
    events = client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"reason={reason}", _request_timeout=(5, 30)
    )
    out: list[dict[str, Any]] = _plain(api, events).get("items") or []
    return out


def _plain(api: ApiClient, obj: Any) -> dict[str, Any]:
    """An API object as the plain dict the API sent."""
    plain: dict[str, Any] = api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
    return plain
