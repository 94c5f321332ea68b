"""In-place pod resize on the sandbox: the API server's side is real (the ``resize``
subresource, its validation, the QoS rule); the kubelet's side is emulated by the
project's kwok stages (tests/sandbox/kwok/pod-resize.yaml says exactly what). The pure
model (``rightsizer.model.pods``) reads the outcome from the real objects."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from rightsizer.actuation.pods import ResizeConflictError, resize_pod, serves_resize
from rightsizer.actuation.resources import WriteRejectedError
from rightsizer.engine.recommendation import Resources
from rightsizer.model.pods import QosClass, ResizeState, plan_resize, pod_info
from rightsizer.model.workloads import ContainerResources, parse_resources
from tests.integration.waiting import wait_for

pytestmark = pytest.mark.k8s

MI = 2**20
ANNOTATION = "sandbox.rightsizer.dev/resize"


def pod_body(name: str, node: str, requests: dict[str, str], limits: dict[str, str]) -> Any:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "app",
                    "image": "registry.example/app:1",
                    "resources": {"requests": requests, "limits": limits},
                    "resizePolicy": [
                        {"resourceName": "cpu", "restartPolicy": "NotRequired"},
                        {"resourceName": "memory", "restartPolicy": "NotRequired"},
                    ],
                },
                {"name": "sidecar", "image": "registry.example/side:1"},
            ],
        },
    }


def read(core: client.CoreV1Api, ns: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = core.api_client.sanitize_for_serialization(
        core.read_namespaced_pod(name, ns)
    )
    return body


def reported(core: client.CoreV1Api, ns: str, name: str) -> dict[str, Any] | None:
    """The pod once the (emulated) kubelet reports the resources in force."""
    body = read(core, ns, name)
    info = pod_info(body)
    if info.containers and all(c.actual is not None for c in info.containers):
        return body
    return None


@pytest.fixture
def running_pod(kube: Any, k8s_api: ApiClient, namespace: str) -> str:
    core = client.CoreV1Api(k8s_api)
    core.create_namespaced_pod(
        namespace,
        pod_body("web-0", kube.node_name, {"cpu": "500m", "memory": "512Mi"}, {"memory": "1Gi"}),
    )
    wait_for("the pod's resources reported", lambda: reported(core, namespace, "web-0"))
    return "web-0"


def test_a_pod_is_resized_in_place_without_a_restart(
    k8s_api: ApiClient, namespace: str, running_pod: str
) -> None:
    core = client.CoreV1Api(k8s_api)
    before = pod_info(read(core, namespace, running_pod))
    assert before.qos_class == QosClass.BURSTABLE
    app = ContainerResources("app", Resources(120, 300 * MI), Resources(None, 600 * MI))
    decision = plan_resize(before, {"app": app})
    assert decision.needed and decision.restarts == ()

    assert serves_resize(k8s_api)
    stale = read(core, namespace, running_pod)["metadata"]["resourceVersion"]
    core.patch_namespaced_pod(running_pod, namespace, {"metadata": {"labels": {"x": "y"}}})
    with pytest.raises(ResizeConflictError):  # someone changed the pod since it was read
        resize_pod(k8s_api, namespace, running_pod, decision.resize, resource_version=stale)
    fresh = read(core, namespace, running_pod)["metadata"]["resourceVersion"]
    stored = resize_pod(k8s_api, namespace, running_pod, decision.resize, resource_version=fresh)
    assert pod_info(stored).containers[0].wanted == app

    def resized() -> Any:
        info = pod_info(read(core, namespace, running_pod))
        return info if info.containers[0].actual == app else None

    after = wait_for("the new resources in force", resized)
    assert after.uid == before.uid
    assert after.resize_state == ResizeState.DONE
    assert [c.restart_count for c in after.containers] == [0, 0]
    assert after.containers[1].actual == before.containers[1].actual  # untouched
    body = read(core, namespace, running_pod)
    allocated = body["status"]["containerStatuses"][0]["allocatedResources"]
    assert parse_resources(allocated) == app.requests
    # Nothing left to do: the model agrees with the server.
    assert plan_resize(after, {"app": app}).resize == ()


def test_the_api_server_refuses_what_the_model_refuses(
    k8s_api: ApiClient, namespace: str, kube: Any
) -> None:
    """A Guaranteed pod asked to become Burstable: refused by the model and, if sent
    anyway, by the real API server — the model's QoS rule is the server's."""
    core = client.CoreV1Api(k8s_api)
    body = pod_body("db-0", kube.node_name, {"cpu": "1", "memory": "1Gi"}, {})
    body["spec"]["containers"] = body["spec"]["containers"][:1]
    body["spec"]["containers"][0]["resources"]["limits"] = {"cpu": "1", "memory": "1Gi"}
    core.create_namespaced_pod(namespace, body)
    pod = wait_for("reported", lambda: reported(core, namespace, "db-0"))
    info = pod_info(pod)
    assert info.qos_class == QosClass.GUARANTEED

    burstable = ContainerResources("app", Resources(250, 256 * MI), Resources())
    decision = plan_resize(info, {"app": burstable})
    assert not decision.needed
    assert "QoS class would change" in decision.refused
    with pytest.raises(WriteRejectedError, match=r"HTTP 422: .*QOS Class may not change"):
        resize_pod(k8s_api, namespace, "db-0", decision.resize)

    both = ContainerResources("app", Resources(250, 256 * MI), Resources(250, 256 * MI))
    assert plan_resize(info, {"app": both}).needed


@pytest.mark.parametrize("outcome", ["Deferred", "Infeasible"])
def test_pending_resizes_are_reported_and_a_deferred_one_completes(
    k8s_api: ApiClient, namespace: str, running_pod: str, outcome: str
) -> None:
    core = client.CoreV1Api(k8s_api)
    core.patch_namespaced_pod(
        running_pod, namespace, {"metadata": {"annotations": {ANNOTATION: outcome}}}
    )
    app = ContainerResources("app", Resources(700, 512 * MI), Resources(None, 1024 * MI))
    resize_pod(k8s_api, namespace, running_pod, [app])

    def pending() -> Any:
        info = pod_info(read(core, namespace, running_pod))
        return info if info.resize_state == ResizeState(outcome) else None

    info = wait_for(f"PodResizePending {outcome}", pending)
    assert info.containers[0].actual != app  # not in force
    other = ContainerResources("app", Resources(600, 512 * MI), Resources(None, 1024 * MI))
    if outcome == "Deferred":  # the kubelet will retry it: don't pile another on top
        assert "Deferred" in plan_resize(info, {"app": other}).refused
    else:  # never on this node as asked: another size may be tried
        assert plan_resize(info, {"app": other}).needed

    # The node frees up (the annotation goes): the kubelet retries and the resize lands.
    core.patch_namespaced_pod(
        running_pod, namespace, {"metadata": {"annotations": {ANNOTATION: None}}}
    )
    done = wait_for(
        "the resize in force",
        lambda: (
            (i := pod_info(read(core, namespace, running_pod))).containers[0].actual == app and i
        ),
    )
    assert done.resize_state == ResizeState.DONE
