"""The reconcile forgets gone pods: entries held and checkpoints stay bounded under daily
rollouts (the operator's read loop with a scripted history port)."""

from __future__ import annotations

from rightsizer.controller.reconcile import Ports, ReconcileInput, reconcile
from rightsizer.dev.churn import Churn, ChurnHistory
from rightsizer.engine.recommendation import Resources
from rightsizer.engine.strategies.vpa import VpaStrategy
from rightsizer.history import checkpoints
from rightsizer.model.workloads import ContainerResources, PolicyInfo, WorkloadInfo

START = 1_800_000_000.0
HOUR = 3600.0
SPEC = {
    "strategy": {"name": "vpa"},
    "source": {
        "prometheus": {"url": "http://prometheus:9090", "history": "1d", "step": "1m"},
        "metricsServer": {"enabled": False},
    },
}


def test_reconcile_forgets_rolled_out_pods_and_checkpoints_stay_small() -> None:
    churn = Churn(replicas=4, job_every_s=3600.0)
    policy = PolicyInfo(churn.namespace, "p", "uid", "2026-01-01T00:00:00Z", SPEC)
    app = ContainerResources("app", Resources(500, 2**29), Resources())
    web = WorkloadInfo("Deployment", churn.namespace, churn.deployment, "w", {}, {}, 4, (app,))
    asked: list[str] = []

    def live_pods(ns: str) -> set[str]:
        asked.append(ns)
        return {pod for _, pod in churn.live_pods(now)}

    saved: list[bytes] = []
    ports = Ports(
        prometheus=lambda src, ns: ChurnHistory(churn),  # type: ignore[arg-type,return-value]
        load_checkpoint=lambda ns, name: saved[-1] if saved else None,
        live_pods=live_pods,
    )
    runtime = None
    held, sizes = [], []
    for h in range(6 * 24):
        now = START + h * HOUR
        if h == 3 * 24:  # a restart: from the last checkpoint on
            runtime = None
        outcome, runtime = reconcile(
            ReconcileInput(policy, 1, {}, [web], [], [], now), runtime, ports
        )
        if h == 3 * 24:
            assert runtime is not None and runtime.restored_from_checkpoint
        if outcome.checkpoint is not None:
            saved.append(outcome.checkpoint)
        assert runtime is not None and outcome.source_error is None
        held.append(len(runtime.registry.instances))
        if outcome.checkpoint is not None:
            sizes.append(len(outcome.checkpoint))
    assert asked and set(asked) == {churn.namespace}
    # one day of history at first contact: a day's pods, then only the live ones and the
    # just-gone ones within the grace
    assert max(held[48:]) <= 4 * 2 + 2
    assert held[-1] <= held[30]
    assert max(sizes[48:]) <= 1.2 * min(sizes[48:])
    assert runtime is not None
    restored = checkpoints.decode(outcome.checkpoint or b"", VpaStrategy())
    assert len(restored.registry.instances) <= 4 + 1
    assert runtime.registry.containers == restored.registry.containers
