"""The metrics-server source against the sandbox's real metrics-server (kwok-emulated usage)."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from rightsizer.sources import metrics_server as metrics_source
from tests.sandbox import KubeAccess

pytestmark = [pytest.mark.k8s, pytest.mark.slow]


def deployment(name: str, cpu: str, memory: str, replicas: int) -> client.V1Deployment:
    labels = {"app": name}
    usage = {"kwok.x-k8s.io/usage-cpu": cpu, "kwok.x-k8s.io/usage-memory": memory}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels, annotations=usage),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="app", image="registry.example/app:1")]
                ),
            ),
        ),
    )


def test_poll_turns_pod_metrics_into_samples(
    metrics_server: KubeAccess, k8s_api: ApiClient, namespace: str
) -> None:
    assert metrics_source.served_version(k8s_api) == "v1beta1"  # Kubernetes 1.36
    apps = client.AppsV1Api(k8s_api)
    apps.create_namespaced_deployment(namespace, deployment("api", "400m", "200Mi", 2))
    deadline = time.monotonic() + 150
    frame = pd.DataFrame()
    while time.monotonic() < deadline:
        frame = metrics_source.poll(k8s_api, namespace)
        if len(frame) == 2:
            break
        time.sleep(2)
    else:
        pytest.fail(f"no PodMetrics for both pods after 150s: {frame}")
    assert set(frame["workload"]) == {"Deployment/api"}  # via owner references
    assert set(frame["container"]) == {"app"}
    assert frame["pod"].nunique() == 2
    assert frame["cpu"].to_numpy() == pytest.approx([0.4, 0.4], abs=0.02)
    assert (frame["memory"] == 200 * 2**20).all()
