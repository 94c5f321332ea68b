"""What a source error leaves in the status and Events: its fixed message, nothing else."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from rightsizer.controller.reconcile import Ports, ReconcileInput, reconcile
from rightsizer.engine.recommendation import Resources
from rightsizer.model.workloads import ContainerResources, PolicyInfo, WorkloadInfo
from rightsizer.policy.spec import PrometheusSource
from rightsizer.sources.errors import (
    SourceError,
    SourceProblem,
    SourceRefusedError,
    SourceRejectedError,
)
from rightsizer.sources.prometheus import QueryBudgetExhaustedError
from rightsizer.sources.prometheus_history import PrometheusHistory

NOW = 1_800_000_000.0
SPEC = {"source": {"prometheus": {"url": "http://prometheus:9090", "history": "1d",
                                  "step": "1m"}, "metricsServer": {"enabled": False}}}  # fmt: skip
DETAIL = "answered with 'INTERNAL-ONLY-PAGE secret=hunter2' for 'Bearer FILE-SECRET-1\\n'"


def run(error: SourceError) -> tuple[dict[str, dict[str, str]], list[tuple[str, str]], str]:
    def failing(src: PrometheusSource, ns: str) -> PrometheusHistory:
        raise error

    policy = PolicyInfo("shop", "p", "uid", "2026-01-01T00:00:00Z", SPEC)
    app = ContainerResources("app", Resources(500, 2**29), Resources())
    web = WorkloadInfo("Deployment", "shop", "web", "w", {}, {}, 1, (app,))
    outcome, _ = reconcile(ReconcileInput(policy, 1, {}, [web], [], [], NOW), None, Ports(failing))
    conditions = {c["type"]: c for c in outcome.status["conditions"]}
    events = [(e.reason, e.message) for e in outcome.events]
    everything = json.dumps([outcome.status, [asdict(e) for e in outcome.events],
                             outcome.source_error])  # fmt: skip
    return conditions, events, everything


@pytest.mark.parametrize(
    "error",
    [
        SourceRejectedError(DETAIL, SourceProblem.NOT_PROMETHEUS_JSON),
        SourceRejectedError(DETAIL),
        SourceError(DETAIL, SourceProblem.PARTIAL_DATA),
    ],
)
def test_a_failing_source_shows_only_its_fixed_problem(error: SourceError) -> None:
    conditions, events, everything = run(error)
    source = conditions["SourceUnavailable"]
    assert (source["status"], source["reason"]) == ("True", "SourceError")
    assert source["message"] == error.problem.value
    assert conditions["Ready"]["message"] == error.problem.value
    assert events == [("SourceUnavailable", error.problem.value)]
    for secret in ("hunter2", "INTERNAL-ONLY", "FILE-SECRET"):
        assert secret not in everything


def test_a_refused_source_says_so() -> None:
    conditions, events, _ = run(SourceRefusedError(SourceProblem.SECRET_NOT_MARKED))
    source = conditions["SourceUnavailable"]
    assert (source["status"], source["reason"]) == ("True", "SourceRefused")
    assert source["message"] == SourceProblem.SECRET_NOT_MARKED.value
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == (
        "False", "SourceRefused"
    )  # fmt: skip
    assert events == [("SourceRefused", SourceProblem.SECRET_NOT_MARKED.value)]


def test_messages_are_a_closed_set_of_fixed_texts() -> None:
    texts = [p.value for p in SourceProblem]
    assert len(set(texts)) == len(texts)
    assert all("{" not in t and "%" not in t for t in texts)


def test_a_spent_query_budget_is_progress_not_an_error() -> None:
    def spent(src: PrometheusSource, ns: str) -> PrometheusHistory:
        raise QueryBudgetExhaustedError("spent", SourceProblem.QUERY_BUDGET)

    policy = PolicyInfo("shop", "p", "uid", "2026-01-01T00:00:00Z", SPEC)
    outcome, runtime = reconcile(ReconcileInput(policy, 1, {}, [], [], [], NOW), None, Ports(spent))
    conditions = {c["type"]: c for c in outcome.status["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["SourceUnavailable"]["status"] == "False"
    assert runtime is not None and runtime.catching_up
