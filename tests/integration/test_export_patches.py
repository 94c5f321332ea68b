"""Exported patches against the real kube-apiserver: the kustomize strategic-merge patch
and the JSON patch are accepted and both leave the pod template with exactly the values
Apply mode would write; a reordered template makes the JSON patch fail instead of
changing the wrong container; ``report --kube --format jsonpatch`` end to end."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from rightsizer.cli.main import main
from rightsizer.engine.recommendation import ContainerRecommendation, Resources
from rightsizer.export.patches import (
    TemplateContainer,
    Templates,
    plan_changes,
    render_jsonpatch,
    render_kustomize,
)
from rightsizer.guardrails.apply import ApplyContext, ApplySettings, container_change
from rightsizer.model.assessment import Assessment, Severity
from rightsizer.model.hpa import UtilizationBounds
from rightsizer.quantity import cpu_millicores, memory_bytes
from rightsizer.sources.kubernetes_api import template_containers
from rightsizer.sources.samples_file import read_samples
from tests.integration.conftest import EXAMPLE
from tests.sandbox import Prometheus

pytestmark = pytest.mark.k8s
MI = 2**20
SETTINGS = ApplySettings()
SMP = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def deployment(
    namespace: str, name: str, order: tuple[str, str], proxy_resources: dict[str, Any] | None = None
) -> dict[str, Any]:
    containers = {
        "proxy": {"name": "proxy", "image": "registry.example/proxy:1",
                  "resources": proxy_resources or {}},
        "app": {
            "name": "app", "image": "registry.example/web:1",
            "resources": {"requests": {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "1Gi"},
                          "limits": {"cpu": "2", "memory": "1Gi"}},
        },
    }  # fmt: skip
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [containers[c] for c in order]}},
        },
    }  # fmt: skip


def rows(namespace: str, name: str) -> list[Assessment]:
    """app: 1 CPU / 1 GiB requested, asks for 300m / 200 Mi with a 700 Mi peak (the step
    down and the memory floor both show); proxy: nothing requested, asks 50m / 64 Mi."""

    def rec(container: str, target: Resources, limits: Resources, now: Resources,
            now_limits: Resources, peak: float) -> ContainerRecommendation:  # fmt: skip
        return ContainerRecommendation(
            namespace, f"Deployment/{name}", container, target, target, target, target,
            limits, 5000, 5000, 3.0, now, now_limits, peak, 0, 3 * 86400,
        )  # fmt: skip

    recs = [
        rec("app", Resources(300, 200 * MI), Resources(None, 300 * MI),
            Resources(1000, 1024 * MI), Resources(2000, 1024 * MI), 700 * MI),
        rec("proxy", Resources(50, 64 * MI), Resources(None, 96 * MI),
            Resources(None, None), Resources(None, None), 60 * MI),
    ]  # fmt: skip
    return [Assessment(r, 1, True, "", Severity.WARNING, Severity.WARNING) for r in recs]


def intended(rs: list[Assessment]) -> dict[str, tuple[Resources, Resources]]:
    ctx = ApplyContext(settings=SETTINGS, now_s=0, policy="", policy_generation=0)
    out = {}
    for r in rs:
        change = container_change(r, ctx).change
        assert change is not None
        out[change.container] = (change.requests, change.limits)
    return out


def live(api: ApiClient, namespace: str, name: str) -> dict[str, dict[str, Any]]:
    obj = client.AppsV1Api(api).read_namespaced_deployment(name, namespace)
    data: dict[str, Any] = api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
    return {
        c["name"]: c.get("resources") or {} for c in data["spec"]["template"]["spec"]["containers"]
    }


def cpu_mem(values: dict[str, str]) -> Resources:
    return Resources(
        cpu_millicores(values["cpu"]) if "cpu" in values else None,
        memory_bytes(values["memory"]) if "memory" in values else None,
    )


def assert_intended(api: ApiClient, namespace: str, name: str) -> None:
    got = live(api, namespace, name)
    for container, (requests, limits) in intended(rows(namespace, name)).items():
        res = got[container]
        assert cpu_mem(res.get("requests") or {}) == requests, container
        assert cpu_mem(res.get("limits") or {}) == limits, container
    assert got["app"]["requests"]["ephemeral-storage"] == "1Gi"  # other resources kept


def templates_of(api: ApiClient, namespace: str) -> Templates:
    found = template_containers(api, namespace, ("Deployment",))
    return {k: [TemplateContainer(n, r) for n, r in v] for k, v in found.items()}


def test_kustomize_and_json_patches_apply_and_give_apply_modes_values(
    k8s_api: ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(k8s_api)
    for name in ("web-smp", "web-json"):
        apps.create_namespaced_deployment(namespace, deployment(namespace, name, ("proxy", "app")))
    intent = intended(rows(namespace, "web-smp"))
    # the patches show the guardrails: CPU halves (not 300m), memory stays above the peak
    assert intent["app"][0] == Resources(500, math.ceil(700 * MI * 1.1))
    templates = templates_of(k8s_api, namespace)
    assert [c.name for c in templates[(namespace, "Deployment/web-json")]] == ["proxy", "app"]

    smp_plan = plan_changes(rows(namespace, "web-smp"), SETTINGS, templates)
    (doc,) = [d for d in yaml.safe_load_all(render_kustomize(smp_plan, SETTINGS)) if d]
    apps.patch_namespaced_deployment("web-smp", namespace, doc, _content_type=SMP)
    assert_intended(k8s_api, namespace, "web-smp")

    json_plan = plan_changes(rows(namespace, "web-json"), SETTINGS, templates)
    (entry,) = json.loads(render_jsonpatch(json_plan, templates))
    assert entry["target"]["name"] == "web-json"
    apps.patch_namespaced_deployment("web-json", namespace, entry["patch"],
                                     _content_type=JSON_PATCH)  # fmt: skip
    assert_intended(k8s_api, namespace, "web-json")


def test_json_patch_fails_on_a_reordered_template(k8s_api: ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(k8s_api)
    proxy = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}}
    apps.create_namespaced_deployment(namespace, deployment(namespace, "web", ("proxy", "app"),
                                                            proxy))  # fmt: skip
    templates = templates_of(k8s_api, namespace)
    (entry,) = json.loads(render_jsonpatch(plan_changes(rows(namespace, "web"), SETTINGS,
                                                        templates), templates))  # fmt: skip
    # someone swaps the containers after the patch was made
    swapped = deployment(namespace, "web", ("app", "proxy"), proxy)
    apps.replace_namespaced_deployment("web", namespace, swapped)
    before = live(k8s_api, namespace, "web")
    # without the test operations the API would take the patch, on the wrong containers
    untested = [op for op in entry["patch"] if op["op"] != "test"]
    apps.patch_namespaced_deployment("web", namespace, untested, dry_run="All",
                                     _content_type=JSON_PATCH)  # fmt: skip
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment("web", namespace, entry["patch"],
                                         _content_type=JSON_PATCH)  # fmt: skip
    assert err.value.status == 422
    assert live(k8s_api, namespace, "web") == before


@pytest.mark.prometheus
def test_report_kube_jsonpatch_end_to_end(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    prometheus: Prometheus,
    kubeconfig: str,
    k8s_api: ApiClient,
    namespace: str,
) -> None:
    """The example's ``shop`` history, moved into this test's namespace, where only
    Deployment/web exists (its containers in the other order than the samples'): the
    command reads the positions from the API, leaves out StatefulSet/db with an error,
    and the JSON patch it prints is taken by the API."""
    frame = read_samples(EXAMPLE)
    frame = frame[frame["namespace"] == "shop"].assign(namespace=namespace)
    csv = tmp_path / "samples.csv"
    frame.to_csv(csv, index=False)
    end_s = math.floor(time.time() / 300) * 300
    prometheus.load_samples(csv, end_s, tmp_path / "om")
    capsys.readouterr()
    body = deployment(namespace, "web", ("proxy", "app"))
    for c in body["spec"]["template"]["spec"]["containers"]:
        c["name"] = {"proxy": "istio-proxy"}.get(c["name"], c["name"])
    client.AppsV1Api(k8s_api).create_namespaced_deployment(namespace, body)

    # the client reads $KUBECONFIG once, at import: point its default at the sandbox
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", kubeconfig)
    code = main(["report", "--prometheus", prometheus.url, "--kube", "-n", namespace,
                 "--history", "3d", "--step", "300s", "--end", str(end_s),
                 "--format", "jsonpatch"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1, err
    assert f"{namespace}/StatefulSet/db container postgres (workload not found)" in err
    (entry,) = json.loads(out)
    assert entry["target"]["name"] == "web"
    tests = [op for op in entry["patch"] if op["op"] == "test"]
    assert {op["path"]: op["value"] for op in tests} == {
        "/spec/template/spec/containers/0/name": "istio-proxy",
        "/spec/template/spec/containers/1/name": "app",
    }
    client.AppsV1Api(k8s_api).patch_namespaced_deployment(
        "web", namespace, entry["patch"], _content_type=JSON_PATCH
    )
    got = live(k8s_api, namespace, "web")
    by_path = {op["path"]: op["value"] for op in entry["patch"]}
    assert (
        got["app"]["requests"]["cpu"]
        == by_path["/spec/template/spec/containers/1/resources/requests/cpu"]
    )


def hpa_body(name: str, cpu_percent: int) -> dict[str, Any]:
    """An HPA on the pod's CPU utilization, and on memory by an absolute average."""
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1, "maxReplicas": 4,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {
                    "type": "Utilization", "averageUtilization": cpu_percent}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {
                    "type": "AverageValue", "averageValue": "500Mi"}}},
            ],
        },
    }  # fmt: skip


def test_hpa_target_changes_are_exported_next_to_the_requests(
    k8s_api: ApiClient, namespace: str
) -> None:
    """Issue 16 item 5: with the live HPAs (read by ``hpas_of``), ``Compensate`` exports
    the HPA's new target next to the request change; both renderings apply to the real
    API server and leave the same target, the other metric as it was."""
    from rightsizer.sources.kubernetes_api import hpas_of

    apps, v2 = client.AppsV1Api(k8s_api), client.AutoscalingV2Api(k8s_api)
    proxy = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}}
    for name in ("web-smp", "web-json"):
        apps.create_namespaced_deployment(
            namespace, deployment(namespace, name, ("proxy", "app"), proxy)
        )
        v2.create_namespaced_horizontal_pod_autoscaler(namespace, hpa_body(name, 60))
    templates = templates_of(k8s_api, namespace)
    hpas = hpas_of(k8s_api, namespace)
    settings = ApplySettings(hpa_resources="Compensate")

    def target(name: str) -> tuple[int, Any]:
        spec = k8s_api.sanitize_for_serialization(  # type: ignore[no-untyped-call]
            v2.read_namespaced_horizontal_pod_autoscaler(name, namespace))["spec"]  # fmt: skip
        return (spec["metrics"][0]["resource"]["target"]["averageUtilization"],
                spec["metrics"][1]["resource"]["target"])  # fmt: skip

    # pod CPU requests: app 1000m + proxy 1000m → 500m + 500m (one 50 % step each)
    plan = plan_changes(rows(namespace, "web-smp"), settings, templates, hpas)
    text = render_kustomize(plan, settings, templates=templates)
    assert "HPA target cpu 60%→120% (pod requests 2000m→1000m)" in text
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert [d["kind"] for d in docs] == ["Deployment", "HorizontalPodAutoscaler"]
    apps.patch_namespaced_deployment("web-smp", namespace, docs[0], _content_type=SMP)
    v2.patch_namespaced_horizontal_pod_autoscaler("web-smp", namespace, docs[1],
                                                  _content_type=SMP)  # fmt: skip
    assert target("web-smp") == (120, {"type": "AverageValue", "averageValue": "500Mi"})

    plan = plan_changes(rows(namespace, "web-json"), settings, templates, hpas)
    entries = json.loads(render_jsonpatch(plan, templates))
    assert [e["target"]["kind"] for e in entries] == ["Deployment", "HorizontalPodAutoscaler"]
    apps.patch_namespaced_deployment("web-json", namespace, entries[0]["patch"],
                                     _content_type=JSON_PATCH)  # fmt: skip
    v2.patch_namespaced_horizontal_pod_autoscaler("web-json", namespace, entries[1]["patch"],
                                                  _content_type=JSON_PATCH)  # fmt: skip
    assert target("web-json")[0] == 120

    # Skip leaves both resources the HPA scales on (cpu and memory) out: nothing to patch.
    skip = ApplySettings(hpa_resources="Skip")
    assert plan_changes(rows(namespace, "web-json"), skip, templates, hpas).workloads == ()
    # A target that would leave the bounds holds the CPU change, said in the header.
    narrow = ApplySettings(hpa_resources="Compensate", hpa_bounds=UtilizationBounds(10, 100))
    plan = plan_changes(rows(namespace, "web-json"), narrow, templates, hpas)
    assert not plan.workloads[0].hpa
    assert "held (HpaTargetOutOfBounds)" in render_kustomize(plan, narrow)


def test_report_kube_shows_the_hpa_target_change_next_to_the_request_change(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    prometheus: Prometheus,
    kubeconfig: str,
    k8s_api: ApiClient,
    namespace: str,
) -> None:
    """Issue 16 item 5: ``report --kube`` (table and JSON) reads the live HPA on
    Deployment/web and shows, per workload, the cpu target that keeps its scale point with
    the recommended requests (a ``Resource`` metric: the pod's summed requests, as the
    recommendations saw them), the memory AverageValue one as needing nothing."""
    frame = read_samples(EXAMPLE)
    frame = frame[frame["namespace"] == "shop"].assign(namespace=namespace)
    csv = tmp_path / "samples.csv"
    frame.to_csv(csv, index=False)
    end_s = math.floor(time.time() / 300) * 300
    prometheus.load_samples(csv, end_s, tmp_path / "om")
    client.AutoscalingV2Api(k8s_api).create_namespaced_horizontal_pod_autoscaler(
        namespace, hpa_body("web", 60)
    )
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", kubeconfig)
    argv = ["report", "--prometheus", prometheus.url, "--kube", "-n", namespace,
            "--history", "3d", "--step", "300s", "--end", str(end_s)]  # fmt: skip
    capsys.readouterr()
    assert main([*argv, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    web = [r for r in doc["recommendations"] if r["workload"] == "Deployment/web"]
    now = sum(cpu_millicores(r["current"]["requests"]["cpu"]) for r in web)
    then = sum(cpu_millicores(r["target"]["cpu"]) for r in web)
    assert now > 0 and then > 0 and then != now
    expected = math.floor(60 * now / then + 0.5)
    cpu, memory = doc["hpa"]
    assert (cpu["workload"], cpu["hpa"], cpu["resource"]) == ("Deployment/web", "web", "cpu")
    assert (cpu["targetPercent"], cpu["compensatedPercent"]) == (60, expected)
    assert cpu["withinBounds"] is (10 <= expected <= 200)
    assert memory["targetType"] == "AverageValue" and "compensatedPercent" not in memory

    assert main([*argv, "--format", "table"]) == 0
    table = capsys.readouterr().out
    assert f"{namespace}/Deployment/web: HPA web cpu 60%→{expected}%" in table
    assert "HPA web memory AverageValue target: no change needed" in table
    # without --kube, no HPA is read or shown
    assert main([a for a in argv if a != "--kube"] + ["--format", "table"]) == 0
    assert "HPA" not in capsys.readouterr().out
