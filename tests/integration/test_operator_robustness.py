"""Issue 12: one bad policy or server must never break the operator. Against the real
kube-apiserver and the operator (a subprocess), with misbehaving Prometheus servers of the
test's own on 127.0.0.1 (``tests/bad_servers.py``): servers that drip bytes or send
gigabytes, answers of the wrong shape, policies the API server accepts but the operator
cannot use. Every failure must end in ``Ready=False`` with a reason and an Event; other
policies must keep reconciling; ``/healthz`` must keep answering."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from tests.bad_servers import BadPrometheus
from tests.integration.test_operator_e2e import (
    GROUP,
    PLURAL,
    VERSION,
    Operator,
    condition,
    get_policy,
    install_crd,
    policy_body,
)
from tests.integration.waiting import wait_for
from tests.sandbox import Prometheus

pytestmark = [pytest.mark.k8s, pytest.mark.prometheus, pytest.mark.slow]

GOOD, BAD = "rs-good", "rs-bad"


@pytest.fixture(scope="module")
def bad() -> Iterator[BadPrometheus]:
    server = BadPrometheus()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def namespaces(k8s_api: ApiClient, kubeconfig: str) -> Iterator[ApiClient]:
    install_crd(kubeconfig)
    core = client.CoreV1Api(k8s_api)
    for ns in (GOOD, BAD):
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    yield k8s_api
    custom = client.CustomObjectsApi(k8s_api)
    for ns in (GOOD, BAD):
        for item in custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]:
            custom.patch_namespaced_custom_object(  # the operator is gone: drop finalizers
                GROUP, VERSION, ns, PLURAL, item["metadata"]["name"],
                {"metadata": {"finalizers": None}},
            )  # fmt: skip
        core.delete_namespace(ns, propagation_policy="Background")


@pytest.fixture(scope="module")
def operator(
    namespaces: ApiClient, kubeconfig: str, tmp_path_factory: pytest.TempPathFactory,
    prometheus: Prometheus, bad: BadPrometheus,
) -> Iterator[Operator]:  # fmt: skip
    # Limits well below the defaults, so that the test's servers meet them soon; the
    # workers as in production (8 for the well-behaved, 2 for the quarantine).
    op = Operator(
        kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log",
        [prometheus.url, bad.url],
        env={"RIGHTSIZER_QUERY_TIMEOUT_SECONDS": "10", "RIGHTSIZER_MAX_RESPONSE_MIB": "8",
             "RIGHTSIZER_RECONCILE_DEADLINE_SECONDS": "40"},
    )  # fmt: skip
    yield op
    op.stop()


def create(api: ApiClient, ns: str, name: str, url: str, **prometheus: Any) -> None:
    body = policy_body(name, url, ns, history="1h", step="1m", source=prometheus)
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)


def ready(api: ApiClient, ns: str, name: str) -> dict[str, Any]:
    try:
        return condition(get_policy(api, name, ns), "Ready")
    except ApiException:
        return {}


def event_reasons(api: ApiClient, ns: str, name: str) -> set[str]:
    events = client.CoreV1Api(api).list_namespaced_event(
        ns, field_selector=f"involvedObject.name={name}"
    )
    return {str(e.reason) for e in events.items}


def test_slow_and_huge_servers_never_hold_up_other_policies(
    operator: Operator, namespaces: ApiClient, prometheus: Prometheus, bad: BadPrometheus
) -> None:
    """Eight policies whose Prometheus drips (as many as the reconcile workers) and two
    whose Prometheus sends 2 GiB: the policies of another namespace, and one created
    afterwards, still get Ready, and ``/healthz`` answers."""
    for i in range(6):
        create(namespaces, BAD, f"drip-{i}", f"{bad.url}/drip")
    for i in range(2):
        create(namespaces, BAD, f"drip-headers-{i}", f"{bad.url}/drip-headers")
    for i in range(2):
        create(namespaces, BAD, f"huge-{i}", f"{bad.url}/huge")
    wait_for("the bad servers busy", lambda: bad.requests["drip"] >= 6)
    for i in range(5):
        create(namespaces, GOOD, f"good-{i}", prometheus.url)
    for i in range(5):
        wait_for(
            f"good-{i} Ready",
            lambda i=i: ready(namespaces, GOOD, f"good-{i}").get("status") == "True",
        )
    assert operator.healthz() == 200
    create(namespaces, GOOD, "newcomer", prometheus.url)
    wait_for(
        "the newcomer Ready", lambda: ready(namespaces, GOOD, "newcomer").get("status") == "True"
    )
    # The bad ones end with the limit they met, named.
    # (each as soon as its own first read has met its limit: on a busy machine the
    # dripping-headers ones may still be waiting for a quarantine worker)
    bad_ones = ("drip-0", "huge-0", "drip-headers-0")
    for name, reason in ((n, "SourceUnavailable") for n in bad_ones):
        cond = wait_for(
            f"{name} not Ready",
            lambda name=name: (c := ready(namespaces, BAD, name)).get("status") == "False" and c,
            180,  # ten bad policies, 40 s reads, eight workers then two in quarantine
        )
        assert cond["reason"] == reason
    assert "deadline" in ready(namespaces, BAD, "drip-0")["message"]
    assert "size cap" in ready(namespaces, BAD, "huge-0")["message"]
    assert "deadline" in ready(namespaces, BAD, "drip-headers-0")["message"]


@pytest.mark.parametrize(
    ("name", "path", "reason", "words"),
    [
        ("zzz", "/zzz", "SourceUnavailable", "malformed"),
        ("reshape", "/reshape", "SourceUnavailable", "malformed"),
        ("no-labels", "/no-labels", "SourceUnavailable", "malformed"),
    ],
)
def test_malformed_answers_end_in_not_ready_and_an_event(
    operator: Operator, namespaces: ApiClient, bad: BadPrometheus, name: str, path: str,
    reason: str, words: str,
) -> None:  # fmt: skip
    create(namespaces, BAD, name, f"{bad.url}{path}")
    cond = wait_for(
        f"{name} not Ready",
        lambda: (c := ready(namespaces, BAD, name)).get("status") == "False" and c,
    )
    assert cond["reason"] == reason and words in cond["message"]
    wait_for(f"{name}'s Event", lambda: reason in event_reasons(namespaces, BAD, name))


def test_an_unparsable_url_ends_in_not_ready_and_an_event(
    operator: Operator, namespaces: ApiClient
) -> None:
    create(namespaces, BAD, "bad-url", "http://[::1")
    cond = wait_for(
        "bad-url not Ready",
        lambda: (c := ready(namespaces, BAD, "bad-url")).get("status") == "False" and c,
    )
    assert cond["reason"] == "SourceRefused"
    wait_for(
        "bad-url's Event", lambda: "SourceRefused" in event_reasons(namespaces, BAD, "bad-url")
    )


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("older-step", {"step": "5m", "bootstrap": {"olderStep": "7m"}}),
        ("long-history", {"history": "2200h1m"}),
    ],
)
def test_invalid_policies_get_a_status_and_leave_healthz_answering(
    operator: Operator, namespaces: ApiClient, prometheus: Prometheus, name: str,
    source: dict[str, Any],
) -> None:  # fmt: skip
    create(namespaces, BAD, name, prometheus.url, **source)
    cond = wait_for(
        f"{name} not Ready",
        lambda: (c := ready(namespaces, BAD, name)).get("status") == "False" and c,
    )
    assert cond["reason"] == "InvalidSpec"
    wait_for(f"{name}'s Event", lambda: "InvalidSpec" in event_reasons(namespaces, BAD, name))
    assert operator.healthz() == 200


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"labelMatchers": 'x="1"}) or vector(1) #'}, "labelMatchers must be comma-separated"),
        ({"labelMatchers": "cluster=prod"}, "labelMatchers must be comma-separated"),
        ({"labelMatchers": '""="x"'}, "labelMatchers must be comma-separated"),
        ({"history": "9999d"}, "history must be at most 90d"),
        ({"history": "13w"}, "history must be at most 90d"),
        ({"history": "99999999999h"}, "history must be at most 90d"),
    ],
)
def test_the_crd_rejects_bad_matchers_and_too_long_histories(
    namespaces: ApiClient, source: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiException) as caught:
        create(namespaces, BAD, "rejected", "http://prometheus:9090", **source)
    assert caught.value.status == 422
    assert message in str(caught.value.body)


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("matchers", {"labelMatchers": 'cluster="prod", team=~"a|b",'}),
        ("utf8-matchers", {"labelMatchers": '"k8s.cluster.name"="prod", team="a"'}),
        ("ninety-days", {"history": "90d"}),
        ("twelve-weeks", {"history": "12w"}),
    ],
)
def test_the_crd_admits_good_matchers_and_histories(
    namespaces: ApiClient, name: str, source: dict[str, Any]
) -> None:
    custom = client.CustomObjectsApi(namespaces)
    create(namespaces, GOOD, name, "http://prometheus:9090", **source)
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, GOOD, PLURAL, name, {"metadata": {"finalizers": None}}
    )
    custom.delete_namespaced_custom_object(GROUP, VERSION, GOOD, PLURAL, name)


def test_a_policy_deleted_mid_reconcile_is_released_soon_after(
    operator: Operator, namespaces: ApiClient, bad: BadPrometheus
) -> None:
    """Deleting a policy while its reconcile waits on a dripping server (or waits for a
    worker behind the other dripping policies): the finalizer goes at once, not when that
    read meets its 40 s deadline, nor a minute later at Kopf's next look at a running
    timer — a namespace's deletion or an uninstall would wait that long."""
    custom = client.CustomObjectsApi(namespaces)
    create(namespaces, BAD, "deleted-mid-read", f"{bad.url}/drip")
    wait_for(  # the first reconcile has written its status
        "deleted-mid-read not Ready",
        lambda: ready(namespaces, BAD, "deleted-mid-read").get("status") == "False",
    )
    # The next reconcile reads again and will find nothing new to write (so no watch
    # event of its own wakes Kopf up when it ends).
    before = bad.requests["drip"]
    wait_for("its next reconcile reading", lambda: bad.requests["drip"] > before)
    custom.delete_namespaced_custom_object(GROUP, VERSION, BAD, PLURAL, "deleted-mid-read")
    wait_for(
        "the policy gone",
        lambda: (
            "deleted-mid-read"
            not in {
                p["metadata"]["name"]
                for p in custom.list_namespaced_custom_object(GROUP, VERSION, BAD, PLURAL)["items"]
            }
        ),
        30,
        hint=lambda: "\n" + operator.log()[-3000:],
    )
