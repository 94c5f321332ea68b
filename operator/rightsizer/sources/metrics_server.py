"""Live samples from metrics-server (``metrics.k8s.io``) as a samples frame.

The served version is discovered (``v1beta1`` up to Kubernetes 1.36, ``v1`` from 1.37).
Pods map to workloads through their owner references. Duplicates (same pod, container
and timestamp — metrics-server answers the same scrape until the next one) are dropped.

Quantities are rounded as upstream VPA's metrics client rounds them: CPU up to whole
millicores (``Quantity.MilliValue()``), memory up to whole bytes (``Quantity.Value()``).
Frames from here are encoded with ``cpu_whole_millicores=True`` so that the ``vpa``
strategy keeps those millicores instead of truncating them again (``upstream_amounts``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pandas as pd
from kubernetes import client
from kubernetes.client import ApiClient

from rightsizer.quantity import QuantityError, cpu_millicores, memory_bytes
from rightsizer.samples.frame import ALL_COLUMNS, drop_duplicate_samples, empty_samples
from rightsizer.samples.workloads import WorkloadResolver
from rightsizer.sources import kubernetes_api as kube
from rightsizer.sources.errors import SourceError, SourceProblem, SourceUnavailableError

GROUP = "metrics.k8s.io"


def served_version(api: ApiClient) -> str:
    """The preferred version of ``metrics.k8s.io``; fails clearly when it is not served."""
    groups = kube.call_api(client.ApisApi(api).get_api_versions)
    for group in groups.groups:
        if group.name == GROUP:
            return str(group.preferred_version.version)
    raise SourceUnavailableError(
        SourceProblem.METRICS_NOT_SERVED.value, SourceProblem.METRICS_NOT_SERVED
    )


#: metrics-server's answers: timeouts (connect, read) and the largest body read.
METRICS_TIMEOUT_S = (5.0, 30.0)
METRICS_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
_READ_PIECE_BYTES = 64 * 1024


def list_pod_metrics(
    api: ApiClient, namespace: str | None, version: str,
    max_bytes: int = METRICS_MAX_RESPONSE_BYTES,
) -> list[dict[str, Any]]:  # fmt: skip
    """PodMetrics objects, read streamed up to ``max_bytes`` (a larger answer fails)."""
    custom = client.CustomObjectsApi(api)
    options = {"_preload_content": False, "_request_timeout": METRICS_TIMEOUT_S}
    if namespace:
        resp = kube.call_api(
            custom.list_namespaced_custom_object, GROUP, version, namespace, "pods", **options
        )
    else:
        resp = kube.call_api(custom.list_cluster_custom_object, GROUP, version, "pods", **options)
    try:
        body = bytearray()
        for piece in resp.stream(_READ_PIECE_BYTES):
            body += piece
            if len(body) > max_bytes:
                raise SourceError(
                    f"metrics-server answered with more than {max_bytes} bytes",
                    SourceProblem.METRICS_TOO_LARGE,
                )
    except SourceError:
        raise
    except Exception as exc:
        raise SourceUnavailableError(
            f"reading metrics-server's answer failed: {type(exc).__name__}",
            SourceProblem.KUBERNETES_UNREACHABLE,
        ) from None
    finally:
        resp.release_conn()
    try:
        doc = json.loads(body)
        items = doc.get("items", [])
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise TypeError
    except (ValueError, TypeError, AttributeError, RecursionError):
        raise SourceError(
            "metrics-server's answer is not a PodMetrics list", SourceProblem.METRICS_MALFORMED
        ) from None
    return items


def _timestamp_s(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def pod_metrics_to_samples(items: list[dict[str, Any]], resolver: WorkloadResolver) -> pd.DataFrame:
    """PodMetrics objects → a samples frame (pure), CPU in whole millicores (as cores)."""
    rows = []
    for item in items:
        meta = item.get("metadata", {})
        ns, pod = meta.get("namespace"), meta.get("name")
        ts_text = item.get("timestamp")
        if not ns or not pod or not ts_text:
            raise SourceError(
                f"malformed PodMetrics object: {meta}", SourceProblem.METRICS_MALFORMED
            )
        ts = _timestamp_s(ts_text)
        workload = resolver.workload(ns, pod)
        for container in item.get("containers", []):
            usage = container.get("usage", {})
            try:
                cpu = cpu_millicores(usage["cpu"]) / 1000.0 if "cpu" in usage else None
                mem = float(memory_bytes(usage["memory"])) if "memory" in usage else None
            except QuantityError as exc:
                raise SourceError(
                    f"PodMetrics {ns}/{pod}: {exc}", SourceProblem.METRICS_MALFORMED
                ) from None
            rows.append(
                {"timestamp": ts, "namespace": ns, "workload": workload, "pod": pod,
                 "container": container.get("name", ""), "cpu": cpu, "memory": mem}
            )  # fmt: skip
    if not rows:
        return empty_samples()
    frame = pd.DataFrame(rows)
    for column in ALL_COLUMNS:
        if column not in frame.columns:
            frame[column] = False if column == "oom" else float("nan")
    frame = frame[list(ALL_COLUMNS)].astype({"cpu": "float64", "memory": "float64"})
    return drop_duplicate_samples(frame)


def poll(api: ApiClient, namespace: str | None = None, version: str | None = None) -> pd.DataFrame:
    """One poll of every pod's live usage (in ``namespace`` or cluster-wide)."""
    version = version or served_version(api)
    items = list_pod_metrics(api, namespace, version)
    try:
        namespaces = {str(i["metadata"]["namespace"]) for i in items}
    except (KeyError, TypeError):
        raise SourceError(
            "a PodMetrics object without a namespace", SourceProblem.METRICS_MALFORMED
        ) from None
    resolver = WorkloadResolver()
    for ns in namespaces:
        resolver.add_pod_owners(kube.pod_owners(api, ns))
        resolver.add_replicaset_owners(kube.replicaset_owners(api, ns))
    try:
        return pod_metrics_to_samples(items, resolver)
    except (KeyError, ValueError, TypeError, AttributeError, OverflowError):
        raise SourceError(
            "metrics-server answered with a malformed PodMetrics object",
            SourceProblem.METRICS_MALFORMED,
        ) from None
