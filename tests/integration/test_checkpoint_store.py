"""Checkpoint ConfigMaps against the real kube-apiserver: the operator creates only what
is absent, updates only its own (owner uid) at the resourceVersion it read, leaves a
ConfigMap it did not create untouched, and splits a checkpoint the API server would
refuse as one ConfigMap."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from rightsizer.controller.reconcile import checkpoint_name
from rightsizer.history import parts, store
from tests.integration.test_operator_e2e import GROUP, PLURAL, VERSION, Operator, install_crd
from tests.integration.waiting import wait_for
from tests.sandbox import Prometheus

pytestmark = pytest.mark.k8s
VICTIM = {"settings.yaml": "important: true\n"}


@pytest.fixture(scope="module")
def crd(k8s_api: ApiClient, kubeconfig: str) -> None:
    install_crd(kubeconfig)


def create_policy(api: ApiClient, namespace: str, name: str, url: str) -> str:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "RightSizePolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"source": {"prometheus": {"url": url, "history": "1h", "step": "5m"},
                            "metricsServer": {"enabled": False}},
                 "reconcileInterval": "2s"},
    }  # fmt: skip
    obj = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )
    return str(obj["metadata"]["uid"])


@pytest.fixture
def policy(crd: None, k8s_api: ApiClient, namespace: str) -> Iterator[tuple[str, str]]:
    """A real policy (its uid must exist, or the garbage collector removes what it owns)."""
    uid = create_policy(k8s_api, namespace, "p", "http://127.0.0.1:9")
    yield "p", uid
    client.CustomObjectsApi(k8s_api).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "p"
    )


def victim(api: ApiClient, namespace: str, name: str) -> client.V1ConfigMap:
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data=VICTIM)
    return client.CoreV1Api(api).create_namespaced_config_map(namespace, body)


def assert_untouched(api: ApiClient, namespace: str, before: client.V1ConfigMap) -> None:
    now = client.CoreV1Api(api).read_namespaced_config_map(before.metadata.name, namespace)
    assert now.metadata.resource_version == before.metadata.resource_version
    assert now.data == VICTIM and not now.binary_data
    assert not now.metadata.owner_references


def test_a_configmap_the_operator_did_not_create_is_left_untouched(
    k8s_api: ApiClient, namespace: str, policy: tuple[str, str]
) -> None:
    name, uid = policy
    before = victim(k8s_api, namespace, checkpoint_name(name))
    result = store.save(k8s_api, namespace, checkpoint_name(name), b"ours", name, uid)
    assert result is store.SaveResult.NOT_OWNED
    assert_untouched(k8s_api, namespace, before)
    # nor is a foreign ConfigMap ever read as a checkpoint
    assert store.load(k8s_api, namespace, checkpoint_name(name), uid) is None
    problem = result.problem(checkpoint_name(name), 4)
    assert problem is not None and "left untouched" in problem


def test_created_when_absent_then_updated_at_the_version_read(
    k8s_api: ApiClient, namespace: str, policy: tuple[str, str]
) -> None:
    name, uid = policy
    cm = checkpoint_name(name)
    assert store.save(k8s_api, namespace, cm, b"first", name, uid) is store.SaveResult.SAVED
    core = client.CoreV1Api(k8s_api)
    first = core.read_namespaced_config_map(cm, namespace)
    assert [r.uid for r in first.metadata.owner_references] == [uid]
    assert store.save(k8s_api, namespace, cm, b"second", name, uid) is store.SaveResult.SAVED
    assert store.load(k8s_api, namespace, cm, uid) == b"second"
    # another policy (other uid) neither reads nor overwrites it
    assert store.load(k8s_api, namespace, cm, "other-uid") is None
    assert store.save(k8s_api, namespace, cm, b"x", name, "other-uid") is (
        store.SaveResult.NOT_OWNED
    )
    assert store.load(k8s_api, namespace, cm, uid) == b"second"


def test_an_update_from_a_stale_read_is_refused_not_forced(
    k8s_api: ApiClient, namespace: str, policy: tuple[str, str]
) -> None:
    name, uid = policy
    cm = checkpoint_name(name)
    store.save(k8s_api, namespace, cm, b"first", name, uid)
    core = client.CoreV1Api(k8s_api)
    stale = core.read_namespaced_config_map(cm, namespace)
    core.patch_namespaced_config_map(cm, namespace, {"metadata": {"labels": {"edited": "yes"}}})
    maps = store._PolicyConfigMaps(core, namespace, name, uid)
    result = maps.write(stale, cm, b"late", {})
    assert result is store.SaveResult.CONFLICT
    now = core.read_namespaced_config_map(cm, namespace)
    assert now.metadata.labels["edited"] == "yes"
    assert base64.b64decode(now.binary_data[store.KEY]) == b"first"


def test_a_checkpoint_over_the_configmap_limit_is_split_and_read_back(
    k8s_api: ApiClient, namespace: str, policy: tuple[str, str]
) -> None:
    name, uid = policy
    cm = checkpoint_name(name)
    big = os.urandom(2 * 2**20 + 12_345)  # incompressible, as a gzip checkpoint is
    core = client.CoreV1Api(k8s_api)
    # the limit is real: the API server refuses it as one ConfigMap
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_config_map(
            namespace,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name="too-big"),
                binary_data={"b": base64.b64encode(big).decode()},
            ),
        )
    assert refused.value.status in (413, 422)
    assert store.save(k8s_api, namespace, cm, big, name, uid) is store.SaveResult.SAVED
    names = {c.metadata.name for c in core.list_namespaced_config_map(namespace).items}
    assert {cm, *(parts.part_name(cm, i) for i in (1, 2))} <= names
    assert store.load(k8s_api, namespace, cm, uid) == big
    # smaller again: the extra parts are emptied (the operator may not delete)
    assert store.save(k8s_api, namespace, cm, b"small", name, uid) is store.SaveResult.SAVED
    assert store.load(k8s_api, namespace, cm, uid) == b"small"
    left = core.read_namespaced_config_map(parts.part_name(cm, 2), namespace)
    assert base64.b64decode(left.binary_data[store.KEY]) == b""


def test_a_foreign_configmap_with_a_part_name_stops_the_save(
    k8s_api: ApiClient, namespace: str, policy: tuple[str, str]
) -> None:
    name, uid = policy
    cm = checkpoint_name(name)
    before = victim(k8s_api, namespace, parts.part_name(cm, 1))
    big = os.urandom(parts.PART_BYTES + 10)
    assert store.save(k8s_api, namespace, cm, big, name, uid) is store.SaveResult.NOT_OWNED
    assert_untouched(k8s_api, namespace, before)
    assert store.load(k8s_api, namespace, cm, uid) is None


def events(api: ApiClient, namespace: str, reason: str) -> list[Any]:
    items = client.CoreV1Api(api).list_namespaced_event(namespace).items
    return [e for e in items if e.reason == reason]


def test_the_operator_leaves_a_pre_existing_checkpoint_name_alone_and_says_so(
    crd: None, k8s_api: ApiClient, kubeconfig: str, namespace: str, prometheus: Prometheus,
    tmp_path: Path,
) -> None:  # fmt: skip
    before = victim(k8s_api, namespace, checkpoint_name("shop"))
    op = Operator(kubeconfig, tmp_path / "operator.log", [prometheus.url])
    try:
        create_policy(k8s_api, namespace, "shop", prometheus.url)
        found = wait_for(
            "the CheckpointNotSaved Event",
            lambda: events(k8s_api, namespace, "CheckpointNotSaved"),
            90,
        )
        assert "left untouched" in found[0].message
        assert "Exception" not in found[0].message and "Traceback" not in op.log()
        assert_untouched(k8s_api, namespace, before)
        client.CustomObjectsApi(k8s_api).delete_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "shop"
        )
        wait_for(
            "the policy gone",
            lambda: (
                not client.CustomObjectsApi(k8s_api).list_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL
                )["items"]
            ),
            60,
        )
    finally:
        op.stop()
    assert_untouched(k8s_api, namespace, before)
