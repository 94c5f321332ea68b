"""Moves an HPA's utilization targets (adapter: the only I/O here). What to send is decided
by ``rightsizer.model.hpa``; this module sends it and names the server's answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from rightsizer.actuation.resources import WriteRejectedError, api_message
from rightsizer.model.hpa import HpaInfo, TargetChange, hpa_info, hpa_patch


class HpaChangedError(RuntimeError):
    """The HPA's target is no longer the one decided on (its JSON patch ``test`` failed, or
    HTTP 409): read it again and decide again."""


def read_hpa(api: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """The HPA as the API server has it, as plain JSON."""
    hpa = client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler(
        name, namespace, _request_timeout=(5, 30)
    )
    plain: dict[str, Any] = api.sanitize_for_serialization(hpa)  # type: ignore[no-untyped-call]
    return plain


def move_targets(
    api: ApiClient,
    hpa: HpaInfo,
    changes: Sequence[TargetChange],
    record_time: str,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Apply ``changes`` to ``hpa`` if its targets are still the ones they start from;
    returns the HPA as stored. ``HpaChangedError`` when they are not;
    ``WriteRejectedError`` when refused otherwise."""
    ops = hpa_patch(hpa, changes, record_time)
    v2 = client.AutoscalingV2Api(api)
    try:
        if dry_run:
            stored = v2.patch_namespaced_horizontal_pod_autoscaler(
                hpa.name, hpa.namespace, ops, dry_run="All", _request_timeout=(5, 30)
            )
        else:
            stored = v2.patch_namespaced_horizontal_pod_autoscaler(
                hpa.name, hpa.namespace, ops, _request_timeout=(5, 30)
            )
    except ApiException as exc:
        message = api_message(exc)
        if exc.status == 409:
            raise HpaChangedError(message) from None
        if exc.status == 422:  # a failed ``test`` op answers a bare 422: look why
            now = hpa_info(read_hpa(api, hpa.namespace, hpa.name))
            moved = _moved(now, changes)
            if moved:
                raise HpaChangedError(f"{hpa.namespace}/{hpa.name}: {moved}") from None
        raise WriteRejectedError(f"HTTP {exc.status}: {message}") from None
    plain: dict[str, Any] = api.sanitize_for_serialization(stored)  # type: ignore[no-untyped-call]
    return plain


def _moved(now: HpaInfo, changes: Sequence[TargetChange]) -> str:
    """How the HPA's targets differ from those ``changes`` start from ("" if they don't)."""
    current = {m.index: m.utilization_percent for m in now.metrics}
    return "; ".join(
        f"metric {c.metric.index} target is {current.get(c.metric.index)}%, not {c.before_percent}%"
        for c in changes
        if current.get(c.metric.index) != c.before_percent
    )
