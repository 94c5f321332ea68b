"""The admission webhook end to end on the sandbox: the real kube-apiserver calls the
operator (a local process) over HTTPS at 127.0.0.1, trusting only the CA the operator
made at start-up and put into the MutatingWebhookConfiguration; the real
kube-controller-manager creates the pods (ReplicaSets on kwok nodes).

The configurations here call a URL (the sandbox has no in-cluster Service routing);
``manifests/mutatingwebhook.yaml`` calls the operator's Service. Each configuration is
limited to this module's namespaces by an extra namespace label, so it never meets
another test's pods.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from rightsizer import names
from rightsizer.handlers.webhook import HANDLER_ID
from tests.integration.test_operator_e2e import GROUP, PLURAL, RSR, VERSION, install_crd
from tests.integration.waiting import wait_for
from tests.sandbox import KubeAccess, OperatorProcess, free_port

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

SCOPE_LABEL = "webhook-e2e.rightsizer.dev/scope"
TEMPLATE = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
SIZED = {"requests": {"cpu": "120m", "memory": "310Mi"}}


def configuration(name: str, port: int, scope: str) -> dict[str, Any]:
    """As manifests/mutatingwebhook.yaml, but calling 127.0.0.1 and limited to ``scope``."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": "pods.rightsizer.dev",
            "clientConfig": {"url": f"https://127.0.0.1:{port}/{HANDLER_ID}"},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                       "resources": ["pods"], "scope": "Namespaced"}],
            "namespaceSelector": {"matchLabels": {names.AUTO_APPLY_LABEL: "enabled",
                                                  SCOPE_LABEL: scope}},
            "failurePolicy": "Ignore", "timeoutSeconds": 2, "sideEffects": "None",
            "reinvocationPolicy": "Never", "admissionReviewVersions": ["v1"],
            "matchPolicy": "Equivalent",
        }],
    }  # fmt: skip


@dataclass
class Webhook:
    api: ApiClient
    name: str
    port: int
    scope: str
    operator: OperatorProcess

    def read(self) -> dict[str, Any]:
        admission: Any = client.AdmissionregistrationV1Api(self.api)
        body: dict[str, Any] = self.api.sanitize_for_serialization(  # type: ignore[no-untyped-call]
            admission.read_mutating_webhook_configuration(self.name)
        )
        return body

    def handshake(self) -> bool:
        """A TLS handshake that verifies the server against the configuration's CA."""
        bundle = self.read()["webhooks"][0]["clientConfig"].get("caBundle")
        if not bundle:
            return False
        context = ssl.create_default_context(cadata=base64.b64decode(bundle).decode())
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw, \
                    context.wrap_socket(raw, server_hostname="127.0.0.1"):  # fmt: skip
                return True
        except (OSError, ssl.SSLError):
            return False


@contextmanager
def webhook(
    api: ApiClient, kubeconfig: str, log: Path, allowed_prometheus: Sequence[str] = ()
) -> Iterator[Webhook]:
    """A configuration of its own and an operator serving it (reading the Prometheus
    endpoints of ``allowed_prometheus`` for its policies, if any)."""
    scope = uuid.uuid4().hex[:8]
    name, port = f"rightsizer-e2e-{scope}", free_port()
    admission: Any = client.AdmissionregistrationV1Api(api)
    admission.create_mutating_webhook_configuration(configuration(name, port, scope))
    operator = OperatorProcess(kubeconfig, log, allowed_prometheus, env={
        "RIGHTSIZER_WEBHOOK_PORT": str(port), "RIGHTSIZER_WEBHOOK_CONFIGURATION": name,
    })  # fmt: skip
    hook = Webhook(api, name, port, scope, operator)
    try:
        wait_for("the webhook to serve with the configuration's CA", hook.handshake, 60,
                 hint=operator.hint)  # fmt: skip
        yield hook
    finally:
        operator.stop()
        admission.delete_mutating_webhook_configuration(name)


def namespace(api: ApiClient, scope: str, *, opted_in: bool) -> str:
    name = f"t-wh-{uuid.uuid4().hex[:8]}"
    labels = {SCOPE_LABEL: scope}
    if opted_in:
        labels[names.AUTO_APPLY_LABEL] = "enabled"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name, "labels": labels}})
    return name


SIDECAR = {"requests": {"cpu": "10m"}}


def deployment(name: str, resources: dict[str, Any], sized: dict[str, Any],
               sidecar: dict[str, Any] = SIDECAR) -> dict[str, Any]:  # fmt: skip
    pod_resources = {"policy": "sizer", "time": "2026-11-30T20:00:00Z",
                     "containers": {"app": sized}}  # fmt: skip
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}, "annotations": {
            names.POD_RESOURCES_ANNOTATION: json.dumps(pod_resources)}},
        "spec": {
            "replicas": 0, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                {"name": "app", "image": f"registry.example/{name}:1", "resources": resources},
                {"name": "sidecar", "image": "registry.example/side:1",
                 "resources": sidecar}]}},
        },
    }  # fmt: skip


def policy(*, live: bool = False) -> dict[str, Any]:
    """Apply mode, reading nothing (its Prometheus is not on the operator's allow-list):
    it never writes; the webhook only needs it to exist in Apply mode with an in-place
    method. ``live``: reading
    metrics-server instead, every few seconds — too little history to apply anything, but
    its workloads get recommendation objects (InsufficientData)."""
    source: dict[str, Any] = {"metricsServer": {"enabled": live}}
    if not live:
        source["prometheus"] = {"url": "http://127.0.0.1:9/"}
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "RightSizePolicy",
        "metadata": {"name": "sizer"},
        "spec": {
            "targets": {"kinds": ["Deployment"]},
            "source": source,
            "update": {"mode": "Apply", "method": "InPlaceOrRollout"},
            "reconcileInterval": "3s" if live else "1h",
        },
    }  # fmt: skip


def setup_namespace(
    api: ApiClient, ns: str, *deployments: dict[str, Any], live: bool = False
) -> None:
    """The policy, then the Deployments (no pods yet), then a status on the policy: the
    operator's caches have listed everything once (its ticks wait for that)."""
    custom: Any = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, policy(live=live))
    for body in deployments:
        # The policy named as the in-place path names it (model.inplace: namespace/name).
        annotations = body["metadata"]["annotations"]
        sized = json.loads(annotations[names.POD_RESOURCES_ANNOTATION])
        sized["policy"] = f"{ns}/sizer"
        annotations[names.POD_RESOURCES_ANNOTATION] = json.dumps(sized)
        client.AppsV1Api(api).create_namespaced_deployment(ns, body)

    def status() -> Any:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "sizer")
        return (obj.get("status") or {}).get("conditions")

    wait_for(f"a status on {ns}/sizer", status, 90)


def scale(api: ApiClient, ns: str, name: str, replicas: int) -> list[dict[str, Any]]:
    """Scale up; returns the Deployment's pods once all exist."""
    apps: Any = client.AppsV1Api(api)
    apps.patch_namespaced_deployment_scale(name, ns, {"spec": {"replicas": replicas}})
    core: Any = client.CoreV1Api(api)

    def pods() -> list[dict[str, Any]] | None:
        listed = core.list_namespaced_pod(ns, label_selector=f"app={name}").items
        found: list[dict[str, Any]] = [api.sanitize_for_serialization(p) for p in listed]  # type: ignore[no-untyped-call]
        return found if len(found) >= replicas else None

    result: list[dict[str, Any]] = wait_for(f"{replicas} pods of {ns}/{name}", pods, 90)
    return result


def app(pod: dict[str, Any]) -> dict[str, Any]:
    [container] = [c for c in pod["spec"]["containers"] if c["name"] == "app"]
    resources: dict[str, Any] = container["resources"]
    return resources


def note(pod: dict[str, Any]) -> str | None:
    return (pod["metadata"].get("annotations") or {}).get(names.ADMISSION_ANNOTATION)


@pytest.fixture(scope="module")
def served(kubeconfig: str, k8s_api: ApiClient, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Webhook]:  # fmt: skip
    install_crd(kubeconfig)
    with webhook(k8s_api, kubeconfig, tmp_path_factory.mktemp("webhook") / "operator.log") as hook:
        yield hook


def test_the_operator_fills_in_only_the_ca_bundle(served: Webhook) -> None:
    """The CA the operator made is the one the API server now uses, and nothing else in
    the configuration changed."""
    after = served.read()
    ours = configuration(served.name, served.port, served.scope)["webhooks"][0]
    [hook] = after["webhooks"]
    bundle = hook["clientConfig"].pop("caBundle")
    assert base64.b64decode(bundle).startswith(b"-----BEGIN CERTIFICATE-----")
    assert {k: hook[k] for k in ours} == ours
    assert served.handshake()


def test_a_new_pod_gets_the_workloads_pod_resources(served: Webhook, k8s_api: ApiClient) -> None:
    ns = namespace(k8s_api, served.scope, opted_in=True)
    guaranteed = {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    small = {
        "requests": {"cpu": "10m", "memory": "16Mi"},
        "limits": {"cpu": "10m", "memory": "16Mi"},
    }
    setup_namespace(k8s_api, ns, deployment("web", TEMPLATE, SIZED),
                    deployment("exact", guaranteed, SIZED, sidecar=small))  # fmt: skip
    try:
        pods = scale(k8s_api, ns, "web", 2)
        for pod in pods:
            assert app(pod) == {"requests": SIZED["requests"], "limits": TEMPLATE["limits"]}, pod
            text = note(pod) or ""
            assert text.startswith("app: cpu request 500m→120m; memory request 1Gi→310Mi"), text
            # The sidecar is not in the annotation: as the template has it.
            [sidecar] = [c for c in pod["spec"]["containers"] if c["name"] == "sidecar"]
            assert sidecar["resources"] == SIDECAR
            assert pod["status"]["qosClass"] == "Burstable"
        template = client.AppsV1Api(k8s_api).read_namespaced_deployment("web", ns)
        assert template.spec.template.spec.containers[0].resources.requests["cpu"] == "500m"

        # Requests alone below Guaranteed's limits would make the pod Burstable: refused.
        [pod] = scale(k8s_api, ns, "exact", 1)
        assert app(pod) == guaranteed
        assert pod["status"]["qosClass"] == "Guaranteed"
        assert "QoS class would change from Guaranteed to Burstable" in (note(pod) or "")
    finally:
        client.CoreV1Api(k8s_api).delete_namespace(ns)


def test_values_the_limitrange_refuses_are_not_set_and_the_pod_is_created(
    served: Webhook, k8s_api: ApiClient
) -> None:
    """The API server's LimitRanger (after the webhook) would refuse 120m under a 200m
    minimum: the pod is created with its template's values and the note says why."""
    ns = namespace(k8s_api, served.scope, opted_in=True)
    client.CoreV1Api(k8s_api).create_namespaced_limit_range(ns, {
        "metadata": {"name": "floor"},
        "spec": {"limits": [{"type": "Container", "min": {"cpu": "200m"}}]},
    })  # fmt: skip
    setup_namespace(k8s_api, ns, deployment("web", TEMPLATE, SIZED,
                                            sidecar={"requests": {"cpu": "200m"}}))  # fmt: skip
    try:
        [pod] = scale(k8s_api, ns, "web", 1)
        assert app(pod) == TEMPLATE
        assert "cpu below the LimitRange's Container min" in (note(pod) or "")
    finally:
        client.CoreV1Api(k8s_api).delete_namespace(ns)


def test_the_recommendation_object_shows_the_drift(
    served: Webhook, k8s_api: ApiClient, metrics_server: KubeAccess
) -> None:
    """Template, applied values and pods per set of values, from the real pods (sized by
    the webhook here, as the in-place path would)."""
    ns = namespace(k8s_api, served.scope, opted_in=True)
    setup_namespace(k8s_api, ns, deployment("web", TEMPLATE, SIZED), live=True)
    custom: Any = client.CustomObjectsApi(k8s_api)
    try:
        scale(k8s_api, ns, "web", 2)

        def drift() -> Any:
            try:
                obj = custom.get_namespaced_custom_object(GROUP, VERSION, ns, RSR, "deployment-web")
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
            containers = {c["name"]: c for c in (obj.get("status") or {}).get("containers", [])}
            entry = (containers.get("app") or {}).get("drift") or {}
            running = entry.get("running") or []
            return entry if sum(r["pods"] for r in running) == 2 else None

        entry = wait_for("the drift of deployment-web", drift, 120, hint=served.operator.hint)
        assert entry["template"] == TEMPLATE
        assert entry["applied"] == SIZED
        assert entry["running"] == [
            {"requests": SIZED["requests"], "limits": TEMPLATE["limits"], "pods": 2,
             "matches": "Applied"},
        ]  # fmt: skip
    finally:
        client.CoreV1Api(k8s_api).delete_namespace(ns)


def test_a_namespace_not_opted_in_is_untouched(served: Webhook, k8s_api: ApiClient) -> None:
    ns = namespace(k8s_api, served.scope, opted_in=False)
    setup_namespace(k8s_api, ns, deployment("web", TEMPLATE, SIZED))
    try:
        pods = scale(k8s_api, ns, "web", 2)
        assert [app(p) for p in pods] == [TEMPLATE, TEMPLATE]
        assert [note(p) for p in pods] == [None, None]
    finally:
        client.CoreV1Api(k8s_api).delete_namespace(ns)


def test_pods_are_created_with_the_templates_values_while_the_webhook_is_down(
    kubeconfig: str, k8s_api: ApiClient, tmp_path: Path
) -> None:
    with webhook(k8s_api, kubeconfig, tmp_path / "operator.log") as hook:
        ns = namespace(k8s_api, hook.scope, opted_in=True)
        try:
            setup_namespace(k8s_api, ns, deployment("web", TEMPLATE, SIZED))
            [pod] = scale(k8s_api, ns, "web", 1)
            assert app(pod)["requests"] == SIZED["requests"], "the webhook should work first"
            hook.operator.stop()
            assert not hook.handshake()
            # The configuration is still there, its webhook unreachable: Ignore.
            pods = scale(k8s_api, ns, "web", 3)
            later = [p for p in pods if p["metadata"]["uid"] != pod["metadata"]["uid"]]
            assert len(later) == 2
            assert [app(p) for p in later] == [TEMPLATE, TEMPLATE]
            assert [note(p) for p in later] == [None, None]
        finally:
            try:
                client.CoreV1Api(k8s_api).delete_namespace(ns)
            except ApiException as exc:
                if exc.status != 404:
                    raise
