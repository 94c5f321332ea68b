"""``report`` shows the HPA target changes next to the request changes (live HPAs with
``--kube``): per workload an HPA scales on cpu/memory, the target that keeps its scale
point with the recommended requests."""

from __future__ import annotations

import json
from typing import Any

from rightsizer.engine.recommendation import ContainerRecommendation, Resources
from rightsizer.model.assessment import assess, totals
from rightsizer.report.hpa import hpa_changes
from rightsizer.report.render import render_report

MI = 2**20


def rec(container: str, current: Resources, target: Resources) -> ContainerRecommendation:
    return ContainerRecommendation(
        "shop", "Deployment/web", container, target, target, target, target,
        Resources(None, None), 4000, 4000, 3.0, current, Resources(None, None), 0.0, 0,
        history_span_s=3 * 86_400.0,
    )  # fmt: skip


def hpa(target: str = "web", cpu: int = 60) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": target}, "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": cpu}}},
        ]},
    }  # fmt: skip


ROWS = assess(
    [rec("app", Resources(800, 512 * MI), Resources(300, 256 * MI)),
     rec("side", Resources(200, 64 * MI), Resources(200, 64 * MI))],
    {}, min_history_s=3600, min_samples=30,
)  # fmt: skip


def test_a_resource_metric_moves_with_the_pod_s_summed_requests() -> None:
    (w,) = hpa_changes(ROWS, [hpa(), hpa(target="other")])
    (o,) = w.outlook
    assert (o.target_percent, o.compensated_percent, o.within_bounds) == (60, 120, True)
    assert w.line() == "shop/Deployment/web: HPA web cpu 60%→120%"
    assert hpa_changes(ROWS, [hpa(target="other")]) == []


def test_the_table_markdown_and_json_show_it_and_csv_does_not() -> None:
    found = hpa_changes(ROWS, [hpa()])
    t = totals(ROWS)
    for fmt in ("table", "markdown"):
        text = render_report(ROWS, t, fmt, {}, found)
        assert "shop/Deployment/web: HPA web cpu 60%→120%" in text
        assert "HPA" not in render_report(ROWS, t, fmt, {}, [])
    (item,) = json.loads(render_report(ROWS, t, "json", {}, found))["hpa"]
    assert item["compensatedPercent"] == 120 and item["withinBounds"] is True
    assert "hpa" not in json.loads(render_report(ROWS, t, "json", {}, []))
    assert "HPA" not in render_report(ROWS, t, "csv", {}, found)


def test_a_target_out_of_bounds_reads_as_held() -> None:
    (w,) = hpa_changes(ROWS, [hpa(cpu=150)])
    assert w.line() == "shop/Deployment/web: HPA web cpu 150%→300% (out of bounds: held)"


def test_json_built_row_by_row_is_the_text_of_one_dump() -> None:
    """``render_json`` (one row at a time, for memory) writes exactly what
    ``json.dumps(document, indent=2)`` writes: with and without HPAs, rows short of data
    (fewer fields), non-ASCII text (escaped alike), no rows at all."""
    from rightsizer.report.render import render_json, to_report_document

    short = assess(
        [rec("thin", Resources(100, 64 * MI), Resources(50, 32 * MI))],
        {}, min_history_s=30 * 86_400, min_samples=30,
    )  # fmt: skip
    rows = [*ROWS, *short]
    assert not short[0].enough_data
    for found in ([], hpa_changes(ROWS, [hpa()])):
        for some in (rows, []):
            t = totals(some)
            source = {"prometheus": "http://p", "note": "ünïcode …", "namespaces": ["shop"]}
            want = json.dumps(to_report_document(some, t, source, found), indent=2) + "\n"
            assert render_json(some, t, source, found) == want
            assert render_report(some, t, "json", source, found) == want
