"""Tenants of one namespace may not use the operator to do what they may not do themselves
(issue 11): the admission policy of ``manifests/admission.yaml`` on a real kube-apiserver.

Users reach the API server as themselves, through impersonation (``Impersonate-User``,
what ``kubectl --as`` sends): the admission policy's ``authorizer`` checks the
impersonated user with the cluster's RBAC, as it would for a user with a certificate or an
OIDC token. In the test's namespace ("team-a"):

- alice may create and edit RightSizePolicies, read workloads, nothing more — not get
  Secrets, not patch workloads;
- bob may also get Secrets and patch Deployments, StatefulSets and DaemonSets;
- carol may create policies and patch Deployments only.

The operator itself runs on its ServiceAccount's token only (as in
``test_deploy_manifests``): its finalizer, annotation and status patches must pass the
admission policy untouched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from tests.integration.test_deploy_manifests import (
    CRDS,
    GROUP,
    MANIFESTS,
    PLURAL,
    VERSION,
    Operator,
    kubectl,
    manifest_objects,
    service_account_kubeconfig,
    wait_until_operator_namespace_is_usable,
)
from tests.integration.waiting import wait_for
from tests.sandbox import KubeAccess, Sandbox

ALICE, BOB, CAROL = "alice", "bob", "carol"
VAP = "rightsizer-policy-author-rights"
SECRET = "prometheus-credentials"
#: A ServiceAccount token Secret of an edit-bound account: reading it means edit rights.
EDITOR_TOKEN = "deployer-token"


# ------------------------------------------------------------------ pure
def test_admission_policy_is_bound_fails_closed_and_checks_only_spec_changes() -> None:
    [policy] = [o for o in manifest_objects() if o["kind"] == "ValidatingAdmissionPolicy"]
    [binding] = [o for o in manifest_objects() if o["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert policy["apiVersion"] == binding["apiVersion"] == "admissionregistration.k8s.io/v1"
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    assert spec["matchConstraints"]["resourceRules"] == [
        {
            "apiGroups": [GROUP],
            "apiVersions": ["*"],
            "operations": ["CREATE", "UPDATE"],
            "resources": [PLURAL],
        }
    ]
    assert [c["expression"] for c in spec["matchConditions"]] == [
        "request.operation == 'CREATE' || oldObject.spec != object.spec"
    ]
    assert all(v["reason"] == "Forbidden" and v["messageExpression"] for v in spec["validations"])
    # Every namespace, denying (not just warning or auditing).
    assert binding["spec"] == {
        "policyName": policy["metadata"]["name"],
        "validationActions": ["Deny"],
    }


# ------------------------------------------------------------------ the cluster
@pytest.fixture(scope="module")
def installed(sandbox: Sandbox, kube: KubeAccess, k8s_api: ApiClient) -> Iterator[None]:
    """crds/ and manifests/ applied, the admission policy among them."""
    wait_until_operator_namespace_is_usable(k8s_api)
    kubectl(sandbox, kube.kubeconfig, "apply", "-f", str(CRDS))
    kubectl(sandbox, kube.kubeconfig, "apply", "-k", str(MANIFESTS))
    kubectl(sandbox, kube.kubeconfig, "wait", "--for=condition=Established", "--timeout=60s",
            f"crd/{PLURAL}.{GROUP}")  # fmt: skip
    yield
    kubectl(sandbox, kube.kubeconfig, "delete", "-k", str(MANIFESTS), "--ignore-not-found",
            "--wait=false", check=False)  # fmt: skip


def as_user(kube: KubeAccess, user: str) -> ApiClient:
    """A client that acts as ``user`` (the sandbox admin impersonating them)."""
    api: ApiClient = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kube.kubeconfig)
    )
    api.set_default_header("Impersonate-User", user)  # type: ignore[no-untyped-call]
    return api


def role(
    namespace: str, name: str, rules: list[dict[str, Any]], users: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Role and the RoleBinding that gives it to ``users``."""
    meta = {"name": name, "namespace": namespace}
    return (
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
         "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u}
                      for u in users]},
    )  # fmt: skip


def can(k8s_api: ApiClient, user: str, verb: str, group: str, resource: str, ns: str,
        name: str = "") -> bool:  # fmt: skip
    """What the authorizer says about ``user`` (a SubjectAccessReview, as the admission
    policy's ``authorizer`` asks)."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": ["system:authenticated"],
            "resourceAttributes": {"verb": verb, "group": group, "resource": resource,
                                   "namespace": ns, "name": name},
        },
    }  # fmt: skip
    authz: Any = client.AuthorizationV1Api(k8s_api)
    return bool(authz.create_subject_access_review(review).status.allowed)


class TeamA:
    """The test's namespace with its three tenants."""

    def __init__(self, kube: KubeAccess, k8s_api: ApiClient, namespace: str) -> None:
        self.ns = namespace
        self.admin = k8s_api
        self.clients = {user: as_user(kube, user) for user in (ALICE, BOB, CAROL)}

    def policies(self, user: str) -> Any:
        return client.CustomObjectsApi(self.clients[user])

    def create(self, user: str, body: dict[str, Any], *, dry_run: bool = False) -> Any:
        return self.policies(user).create_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, body, dry_run="All" if dry_run else None
        )

    def refusal(self, user: str, body: dict[str, Any]) -> str:
        """Create ``body`` as ``user``, expecting admission to refuse it; its message."""
        with pytest.raises(ApiException) as err:
            self.create(user, body)
        return message(err.value)

    def patch(self, user: str, name: str, patch: dict[str, Any]) -> Any:
        return self.policies(user).patch_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, name, patch
        )

    def get(self, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = client.CustomObjectsApi(self.admin).get_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, name
        )
        return obj

    def names(self) -> list[str]:
        listed = client.CustomObjectsApi(self.admin).list_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL
        )
        return sorted(str(i["metadata"]["name"]) for i in listed["items"])

    def close(self) -> None:
        for api in self.clients.values():
            api.close()  # type: ignore[no-untyped-call]


def message(exc: ApiException) -> str:
    assert exc.status == 403, f"expected admission's 403, got {exc.status}: {exc.body}"
    text = str(json.loads(exc.body or "{}").get("message", ""))
    assert f"ValidatingAdmissionPolicy '{VAP}'" in text, text
    return text


def policy(name: str, namespace: str, *, mode: str = "Recommend", secret: str = "",
           kinds: list[str] | None = None, **spec: Any) -> dict[str, Any]:  # fmt: skip
    source: dict[str, Any] = {"metricsServer": {"enabled": False}}
    if secret:
        source["prometheus"] = {"url": "http://prometheus.monitoring:9090",
                                "authSecretRef": {"name": secret}}  # fmt: skip
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RightSizePolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"source": source, "update": {"mode": mode}, "reconcileInterval": "10s", **spec},
    }
    if kinds is not None:
        body["spec"]["targets"] = {"kinds": kinds}
    return body


@pytest.fixture
def team_a(
    installed: None, kube: KubeAccess, k8s_api: ApiClient, namespace: str
) -> Iterator[TeamA]:
    ns = namespace
    core: Any = client.CoreV1Api(k8s_api)
    rbac: Any = client.RbacAuthorizationV1Api(k8s_api)
    roles = [
        role(ns, "policy-author",
         [{"apiGroups": [GROUP], "resources": [PLURAL],
           "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
          {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"],
           "verbs": ["get", "list", "watch"]}],
         [ALICE, BOB, CAROL]),
        role(ns, "workload-editor",
         [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
          {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"],
           "verbs": ["patch"]}],
         [BOB]),
        role(ns, "deployment-patcher",
         [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]}],
         [CAROL]),
    ]  # fmt: skip
    for r, binding in roles:
        rbac.create_namespaced_role(ns, r)
        rbac.create_namespaced_role_binding(ns, binding)
    # The Secrets the attacks name: Prometheus credentials, and the token of an account
    # that may edit everything in the namespace.
    core.create_namespaced_secret(ns, {"metadata": {"name": SECRET},
                                       "stringData": {"token": "s3cr3t"}})  # fmt: skip
    core.create_namespaced_service_account(ns, {"metadata": {"name": "deployer"}})
    rbac.create_namespaced_role_binding(ns, {
        "metadata": {"name": "deployer-edit"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "edit"},
        "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": ns}],
    })  # fmt: skip
    core.create_namespaced_secret(ns, {
        "metadata": {"name": EDITOR_TOKEN,
                     "annotations": {"kubernetes.io/service-account.name": "deployer"}},
        "type": "kubernetes.io/service-account-token",
    })  # fmt: skip

    # RBAC takes effect once the authorizer's caches have the bindings.
    wait_for("the tenants' roles in force", lambda: (
        can(k8s_api, ALICE, "create", GROUP, PLURAL, ns)
        and can(k8s_api, BOB, "get", "", "secrets", ns, SECRET)
        and can(k8s_api, BOB, "patch", "apps", "daemonsets", ns)
        and can(k8s_api, CAROL, "patch", "apps", "deployments", ns)
    ), 60)  # fmt: skip
    # The setting the attacks rely on: alice may do none of it herself.
    assert not can(k8s_api, ALICE, "get", "", "secrets", ns, SECRET)
    assert not can(k8s_api, ALICE, "get", "", "secrets", ns, EDITOR_TOKEN)
    for resource in ("deployments", "statefulsets", "daemonsets"):
        assert not can(k8s_api, ALICE, "patch", "apps", resource, ns)

    team = TeamA(kube, k8s_api, ns)

    def policy_in_force() -> bool:
        # Dry-run: admission runs, nothing is stored.
        try:
            team.create(ALICE, policy("probe", ns, secret=SECRET), dry_run=True)
        except ApiException as exc:
            return exc.status == 403 and VAP in (exc.body or "")
        return False

    wait_for(f"ValidatingAdmissionPolicy {VAP} in force", policy_in_force, 60)
    yield team
    team.close()


# ------------------------------------------------------------------ the attacks
@pytest.mark.k8s
def test_admission_policy_type_checks_against_the_crd(team_a: TeamA) -> None:
    admission: Any = client.AdmissionregistrationV1Api(team_a.admin)

    def checked() -> Any:
        vap = admission.read_validating_admission_policy(VAP)
        status = vap.status
        done = status is not None and status.observed_generation == vap.metadata.generation
        return status if done else None

    # The API server type-checks each expression against the CRD's schema, in the
    # background; its findings land in the status.
    status = wait_for("the admission policy's type check", checked, 60)
    warnings = (status.type_checking.expression_warnings or []) if status.type_checking else []
    assert not warnings, [w.warning for w in warnings]


@pytest.mark.k8s
def test_a_policy_may_not_name_a_secret_its_author_cannot_read(team_a: TeamA) -> None:
    ns = team_a.ns
    text = team_a.refusal(ALICE, policy("steal", ns, secret=SECRET))
    assert (
        f"spec.source.prometheus.authSecretRef: {ALICE} may not get Secret {ns}/{SECRET}" in text
    ), text
    # The edit-bound account's token: the escalation from "create policies" to "edit".
    text = team_a.refusal(ALICE, policy("escalate", ns, secret=EDITOR_TOKEN))
    assert f"may not get Secret {ns}/{EDITOR_TOKEN}" in text, text
    assert team_a.names() == []
    # bob may read the Secret, so his policy may name it.
    team_a.create(BOB, policy("bobs", ns, secret=SECRET))
    team_a.create(BOB, policy("bobs-editor", ns, secret=EDITOR_TOKEN))
    assert team_a.names() == ["bobs", "bobs-editor"]


@pytest.mark.k8s
def test_a_policy_may_not_write_to_workloads_its_author_may_not_patch(team_a: TeamA) -> None:
    ns = team_a.ns
    # Annotate: the default kinds are all three; the first one alice lacks is named.
    text = team_a.refusal(ALICE, policy("annotate", ns, mode="Annotate"))
    assert (
        f"spec.update.mode Annotate: {ALICE} may not patch deployments.apps in namespace {ns}"
        in text
    ), text
    # Apply with a floor of 100 cores: the operator would set every Deployment to 100.
    huge = policy("huge", ns, mode="Apply", kinds=["Deployment"],
                  resources={"cpu": {"minAllowed": "100"}})  # fmt: skip
    text = team_a.refusal(ALICE, huge)
    assert f"spec.update.mode Apply: {ALICE} may not patch deployments.apps in namespace" in text
    assert "spec.targets.kinds has Deployment" in text, text
    # carol may patch Deployments only: each kind is checked on its own.
    text = team_a.refusal(CAROL, policy("annotate", ns, mode="Annotate"))
    assert f"{CAROL} may not patch statefulsets.apps in namespace" in text, text
    text = team_a.refusal(
        CAROL, policy("annotate", ns, mode="Annotate", kinds=["Deployment", "DaemonSet"])
    )
    assert f"{CAROL} may not patch daemonsets.apps in namespace" in text, text
    team_a.create(CAROL, policy("carols", ns, mode="Annotate", kinds=["Deployment"]))
    assert team_a.names() == ["carols"]
    # bob may patch them all.
    team_a.create(BOB, policy("annotate", ns, mode="Annotate"))
    team_a.create(BOB, huge)
    assert team_a.names() == ["annotate", "carols", "huge"]


@pytest.mark.k8s
def test_a_recommend_policy_without_a_secret_needs_no_more_than_create(team_a: TeamA) -> None:
    ns = team_a.ns
    team_a.create(ALICE, policy("alices", ns))
    team_a.create(BOB, policy("bobs", ns))
    assert team_a.names() == ["alices", "bobs"]


@pytest.mark.k8s
def test_spec_changes_are_checked_metadata_changes_are_not(team_a: TeamA) -> None:
    ns = team_a.ns
    team_a.create(ALICE, policy("alices", ns))
    team_a.create(BOB, policy("bobs", ns, mode="Apply", secret=SECRET))

    # alice may not turn her policy into a writer, nor point it at a Secret, later on.
    with pytest.raises(ApiException) as err:
        team_a.patch(ALICE, "alices", {"spec": {"update": {"mode": "Annotate"}}})
    assert f"spec.update.mode Annotate: {ALICE} may not patch" in message(err.value)
    with pytest.raises(ApiException) as err:
        team_a.patch(ALICE, "alices", {"spec": policy("x", ns, secret=SECRET)["spec"]})
    assert f"{ALICE} may not get Secret {ns}/{SECRET}" in message(err.value)
    assert team_a.get("alices")["spec"]["update"]["mode"] == "Recommend"

    # Whoever changes a spec answers for the whole of it: alice may not edit bob's
    # Apply policy, not even its interval…
    with pytest.raises(ApiException) as err:
        team_a.patch(ALICE, "bobs", {"spec": {"reconcileInterval": "1m"}})
    text = message(err.value)
    assert f"{ALICE} may not get Secret {ns}/{SECRET}" in text or "may not patch" in text, text
    assert team_a.get("bobs")["spec"]["reconcileInterval"] == "10s"
    # …but labels (metadata, like the operator's finalizer and annotations) pass.
    team_a.patch(ALICE, "bobs", {"metadata": {"labels": {"owner": "team-a"}}})
    assert team_a.get("bobs")["metadata"]["labels"] == {"owner": "team-a"}
    # bob keeps full control of his own.
    team_a.patch(BOB, "bobs", {"spec": {"reconcileInterval": "1m"}})
    assert team_a.get("bobs")["spec"]["reconcileInterval"] == "1m"


# ------------------------------------------------------------------ the operator's writes
@pytest.mark.k8s
@pytest.mark.slow
def test_the_operator_still_reconciles_policies_under_the_admission_policy(
    team_a: TeamA, sandbox: Sandbox, kube: KubeAccess, tmp_path: Path
) -> None:
    ns = team_a.ns
    team_a.create(ALICE, policy("alices", ns))
    team_a.create(BOB, policy("bobs", ns, mode="Annotate"))
    kubeconfig = service_account_kubeconfig(sandbox, kube, tmp_path / "operator.kubeconfig")
    operator = Operator(kubeconfig, tmp_path / "operator.log", "http://prometheus.monitoring:9090")
    try:

        def ready(name: str) -> Callable[[], Any]:
            def check() -> Any:
                obj = team_a.get(name)
                status = obj.get("status") or {}
                conditions = {c["type"]: c for c in status.get("conditions", [])}
                done = (
                    status.get("observedGeneration") == obj["metadata"]["generation"]
                    and conditions.get("Ready", {}).get("status") == "True"
                )
                return obj if done else None

            return check

        for name in ("alices", "bobs"):
            obj = wait_for(f"policy {name} Ready", ready(name), 120, hint=operator.hint)
            # Kopf's finalizer went through admission as an UPDATE of the policy.
            assert "rightsizer.dev/finalizer" in obj["metadata"]["finalizers"]
        # Deleting: the operator's finalizer release is an UPDATE too.
        for name in ("alices", "bobs"):
            team_a.policies(ALICE).delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
        wait_for("the policies gone", lambda: team_a.names() == [], 60, hint=operator.hint)
    finally:
        operator.stop()
        for name in team_a.names():  # after a failure: unblock the namespace
            client.CustomObjectsApi(team_a.admin).patch_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, name, {"metadata": {"finalizers": None}}
            )
    # Refusals of authorization or admission; not Events posted into other tests'
    # namespaces while those are being deleted (also a 403).
    denied = [line for line in operator.log().splitlines()
              if re.search(r"\b403\b|forbidden|not enough permissions", line, re.I)
              and "NamespaceTerminating" not in line]  # fmt: skip
    assert not denied, "the operator was refused something:\n" + "\n".join(denied[:20])
