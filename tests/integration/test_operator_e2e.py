"""The operator end to end on the sandbox: real kube-apiserver, controller-manager, kwok,
Prometheus holding the example's history; the operator runs as a subprocess."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from rightsizer.cli.main import main
from rightsizer.quantity import quantities
from tests.integration.conftest import (
    CHOSEN_END_OFFSETS_S,
    EXAMPLE,
    load_at_chosen_ends,
    once_per_store,
)
from tests.integration.waiting import free_port, wait_for
from tests.sandbox import Config, HistoryStore, OperatorProcess, Prometheus, Sandbox

pytestmark = [pytest.mark.k8s, pytest.mark.prometheus, pytest.mark.slow]

NS = "shop"
GROUP, VERSION, PLURAL = "rightsizer.dev", "v1alpha1", "rightsizepolicies"
CRDS = Path(__file__).resolve().parents[2] / "crds"


#: The operator as a local process (tests/sandbox/operator.py: the harness the demo and the
#: benchmarks use too): every namespace, a 1 s tick, the given Prometheus allow-list.
Operator = OperatorProcess


def install_crd(kubeconfig: str) -> None:
    """The project's CRDs (RightSizePolicy, RightSizeRecommendation), applied as users
    apply them (kubectl), and established before anything uses them."""
    kubectl = [str(Sandbox().cfg.binary("kubectl")), "--kubeconfig", kubeconfig]
    subprocess.run([*kubectl, "apply", "-f", str(CRDS)], check=True, capture_output=True)
    wait = ["wait", "--for=condition=Established", "--timeout=60s"]
    crds = [f"crd/{p.name.removesuffix('.yaml')}" for p in sorted(CRDS.glob("*.yaml"))]
    subprocess.run([*kubectl, *wait, *crds], check=True, capture_output=True)


def deployment_body(namespace: str = NS) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace, "labels": {"app": "web"}},
        "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                {"name": "app", "image": "registry.example/web:1", "resources": {
                    "requests": {"cpu": "500m", "memory": "512Mi"},
                    "limits": {"cpu": "1", "memory": "512Mi"}}},
                {"name": "istio-proxy", "image": "registry.example/proxy:1", "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"memory": "256Mi"}}},
            ]}},
        },
    }  # fmt: skip


def statefulset_body(namespace: str = NS) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": namespace, "labels": {"app": "db"}},
        "spec": {
            "replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [
                {"name": "postgres", "image": "registry.example/pg:1", "resources": {
                    "requests": {"cpu": "250m", "memory": "1Gi"},
                    "limits": {"memory": "1Gi"}}},
            ]}},
        },
    }  # fmt: skip


def policy_body(
    name: str,
    prometheus_url: str,
    namespace: str = NS,
    history: str = "3d",
    step: str = "5m",
    source: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A policy reading ``prometheus_url`` only (``source``: more of its fields), every 2 s."""
    prometheus = {"url": prometheus_url, "history": history, "step": step, **(source or {})}
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "RightSizePolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"source": {"prometheus": prometheus, "metricsServer": {"enabled": False}},
                 "reconcileInterval": "2s", **spec},
    }  # fmt: skip


@pytest.fixture(scope="module")
def cluster(k8s_api: ApiClient, kubeconfig: str, example_history: float) -> Iterator[ApiClient]:
    install_crd(kubeconfig)
    core = client.CoreV1Api(k8s_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    apps = client.AppsV1Api(k8s_api)
    apps.create_namespaced_deployment(NS, deployment_body())
    apps.create_namespaced_stateful_set(NS, statefulset_body())
    yield k8s_api
    core.delete_namespace(NS, propagation_policy="Background")


@pytest.fixture(scope="module")
def flaky_prometheus_port() -> int:
    """The port of the Prometheus of ``test_prometheus_down_then_back``, chosen before the
    operator starts so that its allow-list can name it."""
    return free_port()


@pytest.fixture(scope="module")
def allowed_prometheus(prometheus: Prometheus, flaky_prometheus_port: int) -> list[str]:
    """The session's Prometheus, the flaky one, and the other history stores' URLs (started
    only by the tests that use them)."""
    other_stores = [Config().url("prometheus3"), Config().url("victoriametrics")]
    return [prometheus.url, f"http://127.0.0.1:{flaky_prometheus_port}", *other_stores]


@pytest.fixture(scope="module")
def operator(
    cluster: ApiClient, kubeconfig: str, tmp_path_factory: pytest.TempPathFactory,
    allowed_prometheus: list[str],
) -> Iterator[Operator]:  # fmt: skip
    op = Operator(
        kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log", allowed_prometheus
    )
    yield op
    stop_after_deleting_policies(op, cluster, NS)


def stop_after_deleting_policies(op: OperatorProcess, api: ApiClient, namespace: str) -> None:
    """Uninstall order: the policies go while the operator can release their finalizers,
    so the namespace does not linger Terminating into other tests' operators."""
    custom = client.CustomObjectsApi(api)
    for item in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]:
        custom.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, item["metadata"]["name"]
        )
    wait_for(
        "the policies gone",
        lambda: (
            not custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
        ),
        60,
        hint=lambda: "\n" + op.log()[-4000:],
    )
    op.stop()


def get_policy(api: ApiClient, name: str, namespace: str = NS) -> dict[str, Any]:
    obj: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return obj


def condition(policy: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(
        (c for c in policy.get("status", {}).get("conditions", []) if c["type"] == type_), {}
    )


RSR = "rightsizerecommendations"


def recommendation_objects(
    api: ApiClient, namespace: str = NS, policy: str = "shop"
) -> dict[str, dict[str, Any]]:
    """The policy's RightSizeRecommendations by name."""
    items = client.CustomObjectsApi(api).list_namespaced_custom_object(
        GROUP, VERSION, namespace, RSR, label_selector=f"rightsizer.dev/policy={policy}"
    )["items"]
    return {o["metadata"]["name"]: o for o in items}


def targets(
    api: ApiClient, namespace: str = NS, policy: str = "shop"
) -> dict[tuple[str, str], dict[str, Any]]:
    """(workload, container) → requests and each estimate as ``rightsizer recommend``
    writes them (VPA's canonical quantities), from the objects' exact values."""
    out = {}
    for obj in recommendation_objects(api, namespace, policy).values():
        status = obj.get("status") or {}
        for c in status.get("containers") or []:
            exact = c.get("exact") or {}
            out[(status["workload"], c["name"])] = {
                field: quantities(v.get("cpuMillicores"), v.get("memoryBytes"))
                for field, v in exact.items()
            }
    return out


def reconciles(op: OperatorProcess, namespace: str, policy: str) -> float:
    """``rightsizer_reconciles_total`` of one policy, from the operator's metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{op.metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    wanted = f'rightsizer_reconciles_total{{namespace="{namespace}",policy="{policy}"}}'
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith(wanted))


def wait_reconciles(
    op: OperatorProcess, namespace: str, policy: str, count: int, timeout_s: float = 60
) -> None:
    """Wait until the policy has reconciled ``count`` more times (the status's
    ``lastReconcileTime`` is only a coarse heartbeat)."""
    first = reconciles(op, namespace, policy)
    wait_for(
        f"{count} more reconciles of {namespace}/{policy}",
        lambda: reconciles(op, namespace, policy) >= first + count,
        timeout_s,
    )


def offline_recommendations(capsys: pytest.CaptureFixture[str]) -> dict[tuple[str, str], Any]:
    capsys.readouterr()
    assert main(["recommend", "--samples", str(EXAMPLE), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    return {
        (r["workload"], r["container"]): r for r in doc["recommendations"] if r["namespace"] == NS
    }


def wait_ready_with_three_containers(cluster: ApiClient, namespace: str) -> dict[str, Any]:
    """Policy ``shop`` in ``namespace`` once it is Ready with its three containers."""
    policy: dict[str, Any] = wait_for(
        "a Ready status with 3 containers",
        lambda: (
            (p := get_policy(cluster, "shop", namespace))
            and condition(p, "Ready").get("status") == "True"
            and (p["status"].get("summary") or {}).get("containers") == 3
            and p
        ),
    )
    return policy


def assert_status_matches_the_engine(
    api: ApiClient, namespace: str, capsys: pytest.CaptureFixture[str]
) -> dict[tuple[str, str], Any]:
    """Every container's target and bounds (its recommendation object's) equal
    `recommend` on the samples file; returns the file's recommendations."""
    expected = offline_recommendations(capsys)
    got = targets(api, namespace)
    assert got.keys() == expected.keys()
    for key, rec in got.items():
        for field in ("target", "lowerBound", "upperBound", "uncappedTarget"):
            assert rec[field] == expected[key][field], (key, field)
    return expected


@pytest.fixture
def shop(operator: Operator, cluster: ApiClient, prometheus: Prometheus) -> dict[str, Any]:
    """Policy ``shop`` over the module's two workloads, Ready with their three containers:
    created by whichever test needs it first, so that each test also runs alone
    (``-k``) or in another order."""
    api = client.CustomObjectsApi(cluster)
    try:
        api.create_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, policy_body("shop", prometheus.url)
        )
    except ApiException as err:
        if err.status != 409:  # 409: an earlier test made it
            raise
    apps = client.AppsV1Api(cluster)
    if not apps.list_namespaced_stateful_set(NS, field_selector="metadata.name=db").items:
        apps.create_namespaced_stateful_set(NS, statefulset_body())
    return wait_ready_with_three_containers(cluster, NS)


def test_recommend_mode_status_matches_the_engine(
    shop: dict[str, Any], cluster: ApiClient, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = shop
    assert policy["status"]["observedGeneration"] == policy["metadata"]["generation"]
    assert policy["status"]["summary"]["workloads"] == 2
    assert policy["status"]["recommendations"]["command"] == (
        "kubectl get rsr -n shop -l rightsizer.dev/policy=shop"
    )
    assert "workloads" not in policy["status"]
    expected = assert_status_matches_the_engine(cluster, NS, capsys)
    for key, rec in targets(cluster).items():
        assert rec["requests"] == expected[key]["current"]["requests"], key
    assert condition(policy, "SourceUnavailable")["status"] == "False"
    assert policy["status"]["history"]["bootstrapped"] is True


def matches_the_engine_in_a_namespace_of_its_own(
    cluster: ApiClient, namespace: str, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The example's workloads in ``namespace`` under a policy reading ``url`` (7 days):
    the objects hold exactly the samples file's recommendations. The namespace is removed
    afterwards."""
    core, apps = client.CoreV1Api(cluster), client.AppsV1Api(cluster)

    def created() -> bool:  # a namespace of an earlier run may still be terminating
        try:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        except ApiException as err:
            if err.status == 409:
                return False
            raise
        return True

    wait_for(f"namespace {namespace} created", created, 120)
    try:
        apps.create_namespaced_deployment(namespace, deployment_body(namespace))
        apps.create_namespaced_stateful_set(namespace, statefulset_body(namespace))
        client.CustomObjectsApi(cluster).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, policy_body("shop", url, namespace, history="7d")
        )
        wait_ready_with_three_containers(cluster, namespace)
        assert_status_matches_the_engine(cluster, namespace, capsys)
    finally:
        client.CustomObjectsApi(cluster).delete_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "shop"
        )
        core.delete_namespace(namespace, propagation_policy="Background")


@pytest.mark.parametrize("label", CHOSEN_END_OFFSETS_S)
def test_recommend_mode_matches_the_engine_whenever_history_ends(
    operator: Operator, cluster: ApiClient, prometheus: Prometheus,
    example_at_chosen_ends: dict[str, float], capsys: pytest.CaptureFixture[str], label: str,
) -> None:  # fmt: skip
    """The example's history ending just before, at and after midnight UTC and at noon (in
    namespace ``shop-<label>``): the recommendation objects hold exactly the recommendations of
    the samples file as it is, which ends at 00:00 UTC."""
    matches_the_engine_in_a_namespace_of_its_own(cluster, f"{NS}-{label}", prometheus.url, capsys)


@pytest.mark.parametrize("component", ["prometheus3", "victoriametrics"])
def test_recommend_mode_matches_the_engine_on_the_other_stores(
    operator: Operator, cluster: ApiClient, other_store: Callable[[str], HistoryStore],
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str],
    component: str,
) -> None:  # fmt: skip
    """The operator reading Prometheus 3 and VictoriaMetrics (the example ending at noon UTC,
    namespace ``shop-noon``): exactly the samples file's recommendations, as from 2.42."""
    history_store = other_store(component)
    once_per_store(
        "chosen-ends", history_store, lambda: load_at_chosen_ends(history_store, tmp_path_factory)
    )
    matches_the_engine_in_a_namespace_of_its_own(cluster, f"{NS}-noon", history_store.url, capsys)


def test_annotate_mode_writes_metadata_only_and_no_storm(
    operator: Operator, cluster: ApiClient, shop: dict[str, Any]
) -> None:
    """Annotate mode writes the annotations once; the recommendation object shows the
    action at once (not at the next reconcile) and keeps it."""
    apps = client.AppsV1Api(cluster)
    before = apps.read_namespaced_deployment("web", NS)
    replica_sets_before = wait_for(
        "the Deployment's ReplicaSet",
        lambda: apps.list_namespaced_replica_set(NS, label_selector="app=web").items,
    )
    client.CustomObjectsApi(cluster).patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, "shop", {"spec": {"update": {"mode": "Annotate"}}}
    )
    web = wait_for(
        "the recommendation annotation",
        lambda: (
            (d := apps.read_namespaced_deployment("web", NS)).metadata.annotations
            and "rightsizer.dev/recommendation" in d.metadata.annotations
            and d
        ),
    )
    rec = json.loads(web.metadata.annotations["rightsizer.dev/recommendation"])
    assert set(rec["containers"]) == {"app", "istio-proxy"}
    assert "app: cpu 500m→" in web.metadata.annotations["rightsizer.dev/summary"]
    # Metadata only: the pod template is untouched, so nothing rolls. (The apiserver bumps a
    # Deployment's generation on annotation changes, as it copies them to ReplicaSets; once
    # the controller has seen that generation, the ReplicaSets must be the same ones.)
    assert web.spec.template == before.spec.template
    wait_for(
        "the controller to observe the new generation",
        lambda: (
            (d := apps.read_namespaced_deployment("web", NS)).status.observed_generation
            == d.metadata.generation
        ),
    )
    sets = apps.list_namespaced_replica_set(NS, label_selector="app=web").items
    assert [rs.metadata.name for rs in sets] == [rs.metadata.name for rs in replica_sets_before]
    # Kopf posts Events from a queue of its own, shortly after the write: wait for it.
    wait_for(
        "the RecommendationAnnotated Event on Deployment/web",
        lambda: (
            client.CoreV1Api(cluster)
            .list_namespaced_event(
                NS, field_selector="reason=RecommendationAnnotated,involvedObject.name=web"
            )
            .items
        ),
    )
    # Further reconciles with the same recommendation write nothing (the version is taken
    # after the controller has recorded the new generation in the Deployment's status).
    version = apps.read_namespaced_deployment("web", NS).metadata.resource_version
    wait_reconciles(operator, NS, "shop", 2)
    assert apps.read_namespaced_deployment("web", NS).metadata.resource_version == version
    web_rsr = recommendation_objects(cluster)["deployment-web"]["status"]
    assert web_rsr["lastAction"]["type"] == "Annotated" and web_rsr["state"] == "Annotated"
    states = get_policy(cluster, "shop")["status"]["summary"]["states"]
    assert states["Annotated"] >= 1


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"update": {"mode": "Auto"}}, 'Unsupported value: "Auto"'),
        ({"strategy": {"cpuPercentile": 150}}, "cpuPercentile must be within 1–100"),
        ({"strategy": {"profile": "Aggressive"}}, 'Unsupported value: "Aggressive"'),
        ({"strategy": {"name": "vpa", "profile": "Economical"}},
         "strategy.profile Conservative and Economical are settings of the headroom strategy"),
        ({"resources": {"memory": {"minAllowed": "2Gi", "maxAllowed": "1Gi"}}},
         "minAllowed must not exceed maxAllowed"),
        ({"reconcileInterval": "0s"}, "positive duration"),
        ({"update": {"hpaResources": "Sometimes"}}, 'Unsupported value: "Sometimes"'),
        ({"update": {"hpaUtilizationBounds": {"minPercent": 150, "maxPercent": 150}}},
         "hpaUtilizationBounds.minPercent must be below maxPercent"),
        ({"update": {"hpaUtilizationBounds": {"minPercent": 300}}},
         "hpaUtilizationBounds.minPercent must be below maxPercent"),
        ({"source": {"prometheus": {"url": "prometheus:9090"}}}, "must start with http://"),
        # the attacks and their relatives: nothing but scheme, host, port and path
        ({"source": {"prometheus": {"url": "http://127.0.0.1:15911/internal/admin#"}}},
         "source.prometheus.url must not contain a fragment (#)"),
        ({"source": {"prometheus": {"url": "http://prometheus:9090@evil.example"}}},
         "source.prometheus.url must not contain user information (user@host)"),
        ({"source": {"prometheus": {"url": "http://u:p@prometheus:9090"}}},
         "must not contain user information"),
        ({"source": {"prometheus": {"url": "http://prometheus:9090/api/v1/query?query=up"}}},
         "source.prometheus.url must not contain a query (?)"),
        ({"source": {"prometheus": {"url": "http://prometheus:9090/prom/../admin"}}},
         "must not contain empty, '.' or '..' segments"),
        ({"source": {"prometheus": {"url": "http://prometheus:9090/prom/./x"}}},
         "must not contain empty, '.' or '..' segments"),
        ({"source": {"prometheus": {"url": "http://prometheus:9090//admin"}}},
         "must not contain empty, '.' or '..' segments"),
        ({"source": {"prometheus": {"url": "http://prometheus:9090/%2e%2e/admin"}}},
         "source.prometheus.url must not contain percent-encoding (%)"),
        ({"source": {"prometheus": {"url": "http://prometheus:9090/a b"}}},
         "must not contain whitespace, backslashes, control or non-ASCII characters"),
        ({"source": {"prometheus": {"url": "http://prometheus:9090\\@evil"}}},
         "must not contain whitespace, backslashes"),
    ],
)  # fmt: skip
def test_invalid_policies_are_rejected_with_readable_messages(
    cluster: ApiClient, spec: dict[str, Any], message: str
) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "RightSizePolicy",
            "metadata": {"name": "bad", "namespace": NS}, "spec": spec}  # fmt: skip
    with pytest.raises(ApiException) as err:
        client.CustomObjectsApi(cluster).create_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, body
        )
    assert err.value.status == 422
    assert message in json.loads(err.value.body)["message"]


@pytest.mark.parametrize(
    "url",
    [
        "http://prometheus.monitoring:9090",
        "https://thanos.example.com/api/prom/",
        "http://[::1]:9090/select/0/prometheus",
        "http://prometheus:9090/.well-known-ish/a.b",
    ],
)
def test_plain_prometheus_urls_are_admitted(cluster: ApiClient, url: str) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "RightSizePolicy",
            "metadata": {"name": "plain-url", "namespace": NS},
            "spec": {"source": {"prometheus": {"url": url}}}}  # fmt: skip
    client.CustomObjectsApi(cluster).create_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, body, dry_run="All"
    )


def test_a_newer_policy_selecting_the_same_workloads_reports_conflict(
    operator: Operator, cluster: ApiClient, prometheus: Prometheus, shop: dict[str, Any]
) -> None:
    api = client.CustomObjectsApi(cluster)
    api.create_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, policy_body("shop-b", prometheus.url)
    )
    newer = wait_for("Conflict on the newer policy", lambda: (p := get_policy(cluster, "shop-b"))
                     and condition(p, "Conflict").get("status") == "True" and p)  # fmt: skip
    assert (
        "Deployment/web belongs to policy shop (RightSizeRecommendation shop/deployment-web)"
        in condition(newer, "Conflict")["message"]
    )
    assert newer["status"]["summary"]["workloads"] == 0
    wait_reconciles(operator, NS, "shop-b", 2)
    again = get_policy(cluster, "shop-b")
    assert condition(again, "Conflict")["status"] == "True"  # no flapping
    assert (
        condition(again, "Conflict")["lastTransitionTime"]
        == condition(newer, "Conflict")["lastTransitionTime"]
    )
    assert condition(get_policy(cluster, "shop"), "Conflict")["status"] == "False"
    api.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "shop-b")


def test_restart_keeps_history_without_a_full_reread(
    operator: Operator, cluster: ApiClient, kubeconfig: str, tmp_path: Path,
    allowed_prometheus: list[str], shop: dict[str, Any],
) -> None:  # fmt: skip
    before = targets(cluster)
    operator.stop()
    restarted = Operator(kubeconfig, tmp_path / "restarted.log", allowed_prometheus)
    try:
        line = wait_for(
            "a reconcile of shop/shop after the restart",
            lambda: next((ln for ln in restarted.log().splitlines()
                          if "[shop/shop] reconciled:" in ln), None),
        )  # fmt: skip
        seconds = float(re.search(r"read (\d+) s of history", line).group(1))  # type: ignore[union-attr]
        assert seconds < 3600, line  # from the checkpoint on, not 3 days again
        after = targets(cluster)
        for key in before:
            assert after[key]["target"] == before[key]["target"], key
    finally:
        restarted.stop()
    operator.proc = Operator(kubeconfig, operator.log_path, allowed_prometheus).proc


def test_deleted_workload_leaves_the_status(
    operator: Operator, cluster: ApiClient, shop: dict[str, Any]
) -> None:
    client.AppsV1Api(cluster).delete_namespaced_stateful_set("db", NS)
    wait_for(
        "db's recommendation object gone",
        lambda: set(recommendation_objects(cluster)) == {"deployment-web"},
    )
    wait_for(
        "db out of the policy's totals",
        lambda: get_policy(cluster, "shop")["status"]["summary"]["workloads"] == 1,
    )


FLAKY = "shop-flaky"


def test_prometheus_down_then_back(
    operator: Operator, cluster: ApiClient, tmp_path: Path, example_history: float,
    flaky_prometheus_port: int,
) -> None:  # fmt: skip
    """A policy on a Prometheus of its own (so stopping it disturbs no other test)."""
    core = client.CoreV1Api(cluster)
    own = Sandbox(
        Config(
            state=tmp_path / "own",
            ports={**Config().ports, "prometheus": flaky_prometheus_port},
        )
    )
    own.up(["prometheus"])
    try:
        own_prom = Prometheus(own)
        out = tmp_path / "om"
        assert main(["dev", "openmetrics", "--samples", str(EXAMPLE), "--end",
                     str(example_history), "--output", str(out)]) == 0  # fmt: skip
        own_prom.load_openmetrics(sorted(out.glob("*.om")))
        api = client.CustomObjectsApi(cluster)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=FLAKY)))
        cache = deployment_body()
        cache["metadata"].update(name="cache", namespace=FLAKY)
        client.AppsV1Api(cluster).create_namespaced_deployment(FLAKY, cache)
        body = policy_body("flaky", own_prom.url)
        body["metadata"]["namespace"] = FLAKY
        api.create_namespaced_custom_object(GROUP, VERSION, FLAKY, PLURAL, body)
        wait_for(
            "flaky Ready",
            lambda: condition(get_policy(cluster, "flaky", FLAKY), "Ready").get("status") == "True",
        )
        own.down(["prometheus"])
        down = wait_for(
            "SourceUnavailable=True",
            lambda: (
                (p := get_policy(cluster, "flaky", FLAKY))
                and condition(p, "SourceUnavailable").get("status") == "True"
                and p
            ),
            60,
        )
        assert "Prometheus" in condition(down, "SourceUnavailable")["message"]
        assert condition(down, "Ready")["status"] == "False"
        # the recommendations made before stay (objects and totals)
        assert down["status"]["summary"]["workloads"] == 1
        assert set(recommendation_objects(cluster, FLAKY, "flaky")) == {"deployment-cache"}
        own.up(["prometheus"], keep_data=True)
        wait_for(
            "recovery",
            lambda: (
                condition(get_policy(cluster, "flaky", FLAKY), "SourceUnavailable").get("status")
                == "False"
            ),
            90,
        )
        wait_for(  # Events are posted asynchronously by Kopf
            "a SourceUnavailable Event on the policy",
            lambda: (
                client.CoreV1Api(cluster)
                .list_namespaced_event(
                    FLAKY, field_selector="reason=SourceUnavailable,involvedObject.name=flaky"
                )
                .items
            ),
            30,
        )
        api.delete_namespaced_custom_object(GROUP, VERSION, FLAKY, PLURAL, "flaky")
    finally:
        own.down(["prometheus"])
        core.delete_namespace(FLAKY, propagation_policy="Background")
