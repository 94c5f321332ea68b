"""The HPA compensation arithmetic (issue 16 groundwork): U_new = round(U × r_old ÷ r_new)
keeps the absolute scale point; Resource metrics sum the pod's requests; AverageValue
targets need nothing; out-of-bounds targets hold the resource."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from rightsizer.engine.recommendation import Resources
from rightsizer.model.hpa import (
    HPA_RECORD_ANNOTATION,
    MetricSource,
    UtilizationBounds,
    compensate,
    compensated_percent,
    hpa_info,
    hpa_patch,
    revert_changes,
)

MI = 2**20


def hpa(*metrics: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web", "namespace": "shop", "resourceVersion": "7"}
    if annotations is not None:
        meta["annotations"] = annotations
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta,
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 10, "metrics": list(metrics)},
    }  # fmt: skip


def resource(name: str, utilization: int | None = None, value: str | None = None) -> dict[str, Any]:
    target: dict[str, Any] = (
        {"type": "Utilization", "averageUtilization": utilization}
        if utilization is not None else {"type": "AverageValue", "averageValue": value}
    )  # fmt: skip
    return {"type": "Resource", "resource": {"name": name, "target": target}}


def container_resource(name: str, container: str, utilization: int) -> dict[str, Any]:
    return {"type": "ContainerResource", "containerResource": {
        "name": name, "container": container,
        "target": {"type": "Utilization", "averageUtilization": utilization}}}  # fmt: skip


def test_reads_resource_and_container_resource_metrics_and_skips_the_others() -> None:
    info = hpa_info(hpa(
        resource("cpu", 60),
        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue"}}},
        container_resource("memory", "app", 80),
        resource("ephemeral-storage", 50),
    ))  # fmt: skip
    assert info.target_ref == "Deployment/web"
    assert info.resource_version == "7"
    assert [(m.index, m.source, m.resource, m.container, m.utilization_percent)
            for m in info.metrics] == [
        (0, MetricSource.RESOURCE, "cpu", None, 60),
        (2, MetricSource.CONTAINER_RESOURCE, "memory", "app", 80),
    ]  # fmt: skip
    assert info.metrics[0].path == "/spec/metrics/0/resource/target/averageUtilization"
    assert info.metrics[1].path == "/spec/metrics/2/containerResource/target/averageUtilization"
    assert info.scaled_resources == {"cpu", "memory"}


def test_halving_the_cpu_request_doubles_the_target() -> None:
    info = hpa_info(hpa(resource("cpu", 60)))
    c = compensate(info, {"app": Resources(1000, 512 * MI)}, {"app": Resources(500, 512 * MI)})
    assert c.held is None
    [change] = c.changes
    assert (change.before_percent, change.after_percent) == (60, 120)
    assert (change.request_before, change.request_after) == (1000, 500)
    assert change.describe() == "HPA target cpu 60%→120% (pod requests 1000m→500m)"


def test_a_resource_metric_is_relative_to_the_sum_of_the_pods_requests() -> None:
    """Only the app container changes (400m → 200m); the sidecar's 100m stays: the pod's sum
    goes 500m → 300m, so 60 % becomes 100 %, not 120 %."""
    info = hpa_info(hpa(resource("cpu", 60)))
    before = {"app": Resources(400, None), "proxy": Resources(100, None)}
    after = {"app": Resources(200, None), "proxy": Resources(100, None)}
    [change] = compensate(info, before, after).changes
    assert (change.request_before, change.request_after, change.after_percent) == (500, 300, 100)


def test_a_container_resource_metric_reads_its_own_container() -> None:
    info = hpa_info(hpa(container_resource("cpu", "proxy", 50)))
    before = {"app": Resources(400, None), "proxy": Resources(100, None)}
    changed_app = {"app": Resources(200, None), "proxy": Resources(100, None)}
    assert compensate(info, before, changed_app).changes == ()
    changed_proxy = {"app": Resources(400, None), "proxy": Resources(200, None)}
    [change] = compensate(info, before, changed_proxy).changes
    assert change.after_percent == 25


def test_average_value_targets_need_no_change() -> None:
    info = hpa_info(hpa(resource("memory", value="300Mi")))
    c = compensate(info, {"app": Resources(None, 512 * MI)}, {"app": Resources(None, 256 * MI)})
    assert c.changes == () and c.held is None
    assert c.unaffected == ("Resource memory: AverageValue target, absolute: no change needed",)


def test_a_target_outside_the_bounds_holds_the_resource() -> None:
    info = hpa_info(hpa(resource("cpu", 80), resource("memory", 70)))
    before = {"app": Resources(1000, 1024 * MI)}
    after = {"app": Resources(300, 896 * MI)}  # cpu 80 % → 267 %: out; memory 70 % → 80 %
    c = compensate(info, before, after, UtilizationBounds(10, 200))
    assert c.held == {"cpu": "HPA web target cpu would go 80%→267%, outside 10–200%"}
    assert [(x.metric.resource, x.after_percent) for x in c.changes] == [("memory", 80)]


def test_a_container_without_the_request_makes_the_utilization_undefined() -> None:
    info = hpa_info(hpa(resource("cpu", 60)))
    before = {"app": Resources(500, None), "proxy": Resources(None, None)}
    after = {"app": Resources(250, None), "proxy": Resources(None, None)}
    c = compensate(info, before, after)
    assert c.changes == ()
    assert c.held is None  # the HPA could not scale on it before either: nothing moves


def test_the_patch_tests_the_old_target_and_records_it() -> None:
    info = hpa_info(hpa(resource("cpu", 60), annotations={"team": "shop"}))
    c = compensate(info, {"app": Resources(1000, None)}, {"app": Resources(500, None)})
    ops = hpa_patch(info, c.changes, "2026-11-30T12:00:00Z")
    path = "/spec/metrics/0/resource/target/averageUtilization"
    assert ops[:2] == [{"op": "test", "path": path, "value": 60},
                       {"op": "replace", "path": path, "value": 120}]  # fmt: skip
    assert ops[2]["path"] == "/metadata/annotations/rightsizer.dev~1hpa-previous"
    assert json.loads(ops[2]["value"]) == {
        "time": "2026-11-30T12:00:00Z",
        "targets": {"0": [60, 120]},
    }
    bare = hpa_info(hpa(resource("cpu", 60)))
    assert hpa_patch(bare, c.changes, "t")[2]["value"].keys() == {HPA_RECORD_ANNOTATION}
    back = revert_changes(c.changes)
    assert hpa_patch(info, back, "t")[:2] == [
        {"op": "test", "path": path, "value": 120},
        {"op": "replace", "path": path, "value": 60},
    ]


@given(
    st.integers(1, 200),
    st.integers(1, 64_000),
    st.integers(1, 64_000),
)
def test_the_absolute_scale_point_moves_by_less_than_half_a_percent_of_the_new_request(
    percent: int, old: int, new: int
) -> None:
    """U_new × r_new stays within half a percentage point of r_new of U_old × r_old: the
    HPA's 10 % tolerance absorbs the rounding."""
    after = compensated_percent(percent, old, new)
    assert abs(after * new - percent * old) <= 0.5 * new


def test_the_outlook_shows_each_metric_s_target_change_before_any_write() -> None:
    """``target_outlook``: what the recommendation objects and ``report`` show."""
    from rightsizer.model.hpa import target_outlook

    info = hpa_info(hpa(
        resource("cpu", 60), resource("memory", value="500Mi"),
        container_resource("cpu", "side", 50),
    ))  # fmt: skip
    before = {"app": Resources(800, 512 * MI), "side": Resources(200, 64 * MI)}
    after = {"app": Resources(300, 256 * MI), "side": Resources(200, 64 * MI)}
    pod, absolute, side = target_outlook([info], before, after)
    assert (pod.target_percent, pod.compensated_percent, pod.within_bounds) == (60, 120, True)
    assert pod.short() == "HPA web cpu 60%→120%"
    assert "pod requests 1000m→500m" in pod.text
    assert absolute.target_percent is None and absolute.compensated_percent is None
    assert absolute.short() == "HPA web memory AverageValue target: no change needed"
    assert (side.compensated_percent, side.short()) == (50, "HPA web cpu (side) 50%→50%")
    assert "request unchanged" in side.text


def test_the_outlook_shows_a_target_out_of_bounds_as_held() -> None:
    from rightsizer.model.hpa import target_outlook

    info = hpa_info(hpa(resource("cpu", 80)))
    (o,) = target_outlook([info], {"app": Resources(1000, None)}, {"app": Resources(200, None)},
                          UtilizationBounds(10, 200))  # fmt: skip
    assert (o.compensated_percent, o.within_bounds) == (400, False)
    assert o.short() == "HPA web cpu 80%→400% (out of bounds: held)"
    (undefined,) = target_outlook(
        [info], {"app": Resources(None, MI)}, {"app": Resources(None, MI)}
    )
    assert undefined.compensated_percent is None and "undefined" in undefined.short()
