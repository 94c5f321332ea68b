"""Writes to workloads through the Kubernetes API (adapter)."""

from __future__ import annotations

from collections.abc import Mapping

from kubernetes import client
from kubernetes.client import ApiClient

from rightsizer.model.workloads import WorkloadInfo, apps_api_method


def annotate(api: ApiClient, workload: WorkloadInfo, annotations: Mapping[str, str]) -> None:
    """Merge-patch annotations into the workload's own metadata (never its pod template,
    so nothing rolls)."""
    patcher = getattr(client.AppsV1Api(api), apps_api_method("patch", workload.kind))
    patcher(workload.name, workload.namespace, {"metadata": {"annotations": dict(annotations)}})
