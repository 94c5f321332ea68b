"""Session-wide pytest fixtures for the local sandbox (see docs/sandbox.md).

Fixtures start only what a test asks for, the first time it is asked for,
and share it with the rest of the run:

- ``sandbox``: the :class:`tests.sandbox.Sandbox` (nothing started by itself).
- ``prometheus``: a running Prometheus; yields :class:`tests.sandbox.Prometheus`
  (``.url``, ``.query()``, ``.value()``, ``.load_openmetrics()``).
- ``history_store``: parametrised over the history stores (Prometheus 2.42, Prometheus 3,
  VictoriaMetrics; ``RIGHTSIZER_HISTORY_STORES`` narrows the list); yields a
  :class:`tests.sandbox.HistoryStore` with the same methods (docs/backends.md).
- ``kube``: etcd + kube-apiserver + controller-manager + scheduler + kwok with a
  Ready fake node; yields :class:`tests.sandbox.KubeAccess` (``.kubeconfig``,
  ``.server``, ``.token``, ``.ca_file``, ``.node_name``).
- ``scrape_prometheus``: ``kube`` plus the real kube-state-metrics and a second
  Prometheus that scrapes it and kwok's kubelet ``/metrics/resource`` (kube-prometheus-
  stack's job shapes); yields :class:`tests.sandbox.Prometheus` for that instance.
- ``kubeconfig``: ``str`` path of the sandbox kubeconfig (implies ``kube``).
- ``metrics_server``: ``kube`` plus metrics-server registered as the
  ``v1beta1.metrics.k8s.io`` APIService (Available); yields ``KubeAccess``.
- ``k8s_api``: a ``kubernetes.client.ApiClient`` for the sandbox.
- ``namespace``: a fresh namespace per test, deleted afterwards.

Components that were already running (``scripts/sandbox up``) are reused and
left running; those the fixtures started are stopped by PID at the end of
the session (set ``RIGHTSIZER_SANDBOX_KEEP=1`` to leave them running). Logs
stay in ``$RIGHTSIZER_SANDBOX_DIR/logs``; when the run fails, their tails are
printed in the summary. Missing binaries make the tests fail, never skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client import ApiClient

from tests.sandbox import (
    HISTORY_STORES,
    HistoryStore,
    KubeAccess,
    MissingBinaryError,
    NotReadyError,
    Prometheus,
    Sandbox,
    store,
)

_USED: dict[str, Sandbox] = {}

# Property tests are specifications, not benchmarks: no per-example deadline (Hypothesis's
# default 200 ms failed on a loaded machine), and the same examples on every run.
hypothesis_settings.register_profile("rightsizer", deadline=None, derandomize=True)
hypothesis_settings.load_profile("rightsizer")


def pytest_configure(config: pytest.Config) -> None:
    # Also declared in pyproject.toml; repeated here so that this conftest
    # works on its own (duplicates are harmless).
    for line in (
        "prometheus: needs the sandbox Prometheus",
        "k8s: needs the sandbox Kubernetes control plane",
        "slow: takes more than a few seconds",
    ):
        config.addinivalue_line("markers", line)


def up(sandbox: Sandbox, *components: str) -> None:
    """Start ``components`` (reusing running ones); a failure fails the test, never skips."""
    problem = ""
    try:
        sandbox.up(components)
    except MissingBinaryError as err:
        problem = f"{err}\n(the sandbox never skips: build the components first)"
    except NotReadyError as err:
        problem = f"sandbox did not start: {err}\nlogs: {sandbox.cfg.logs}"
    if problem:
        pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox()
    _USED["sandbox"] = sb
    sb.attach()
    yield sb
    # Stops what test runs started, once no other test run uses the sandbox.
    sb.detach(stop=os.environ.get("RIGHTSIZER_SANDBOX_KEEP") != "1")


@pytest.fixture(scope="session")
def prometheus(sandbox: Sandbox) -> Prometheus:
    up(sandbox, "prometheus")
    return Prometheus(sandbox)


def _history_stores() -> list[str]:
    """The stores the history tests run against: all, unless ``RIGHTSIZER_HISTORY_STORES``
    (comma-separated) names fewer, e.g. for a quick local run."""
    raw = os.environ.get("RIGHTSIZER_HISTORY_STORES", "")
    wanted = [s for s in raw.split(",") if s] or list(HISTORY_STORES)
    unknown = set(wanted) - set(HISTORY_STORES)
    if unknown:
        raise pytest.UsageError(f"RIGHTSIZER_HISTORY_STORES: unknown {sorted(unknown)}")
    return wanted


@pytest.fixture(scope="session", params=_history_stores())
def history_store(request: pytest.FixtureRequest, sandbox: Sandbox) -> HistoryStore:
    """One of the history stores, running (the tests that use it run once per store)."""
    if request.param == "prometheus":
        same: Prometheus = request.getfixturevalue("prometheus")
        return same
    up(sandbox, request.param)
    return store(sandbox, request.param)


@pytest.fixture(scope="session")
def scrape_prometheus(sandbox: Sandbox, kube: KubeAccess) -> Prometheus:
    """The live set: kube-state-metrics and a Prometheus scraping it and kwok's kubelet
    endpoints every few seconds (tests/sandbox/cluster.py ``scrape_config``)."""
    up(sandbox, "scrape")
    return Prometheus(sandbox, "prometheus-scrape")


@pytest.fixture(scope="session")
def kube(sandbox: Sandbox) -> KubeAccess:
    up(sandbox, "kube")
    return sandbox.kube_access()


@pytest.fixture(scope="session")
def kubeconfig(kube: KubeAccess) -> str:
    return str(kube.kubeconfig)


@pytest.fixture(scope="session")
def metrics_server(sandbox: Sandbox, kube: KubeAccess) -> KubeAccess:
    up(sandbox, "metrics-server")
    return kube


@pytest.fixture(scope="session")
def k8s_api(kube: KubeAccess) -> Iterator[ApiClient]:
    api: ApiClient = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kube.kubeconfig)
    )
    yield api
    api.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def namespace(k8s_api: ApiClient) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(k8s_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name, propagation_policy="Background")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int) -> None:
    sb = _USED.get("sandbox")
    if sb is None or exitstatus == 0:
        return
    terminalreporter.section("sandbox component logs")
    terminalreporter.write_line(f"state dir kept: {sb.cfg.state} (logs in {sb.cfg.logs})")
    if sb.used:
        terminalreporter.write_line(sb.log_tails(sb.used, lines=30))
