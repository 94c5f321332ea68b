"""The install manifests (``manifests/``, ``Dockerfile``): least privilege, hardened, and
enough.

Pure tests read the files: the ClusterRole grants exactly the pinned verbs and no
wildcard; the Deployment has the security settings the issue asks for; the Dockerfile
agrees with it (user, command). The sandbox tests apply ``crds/`` and ``manifests/`` to
a real kube-apiserver (the restricted Pod Security level admits the operator's pod),
then run the operator as a local process with a kubeconfig holding nothing but a token
of its ServiceAccount, drive a policy through Recommend and Annotate, and check that
nothing was forbidden.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from rightsizer.dev.synthetic import MI, ContainerProfile, profile_frame
from tests.integration.waiting import wait_for
from tests.sandbox import KubeAccess, OperatorProcess, Prometheus, Sandbox, free_port

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
CRDS = ROOT / "crds"
OPERATOR_NS = "rightsizer-system"
SERVICE_ACCOUNT = "rightsizer"
SA_USER = f"system:serviceaccount:{OPERATOR_NS}:{SERVICE_ACCOUNT}"
GROUP, VERSION, PLURAL = "rightsizer.dev", "v1alpha1", "rightsizepolicies"
RUN_AS = 65532
AUTO_APPLY_LABEL = "rightsizer.dev/auto-apply"

#: (API group, resource) → verbs: everything the operator does, and nothing else.
EXPECTED_RULES: dict[tuple[str, str], set[str]] = {
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
    ("rightsizer.dev", "rightsizepolicies"): {"list", "watch", "patch"},
    ("rightsizer.dev", "rightsizepolicies/status"): {"patch"},
    ("rightsizer.dev", "rightsizerecommendations"): {"list", "watch", "create", "patch", "delete"},
    ("rightsizer.dev", "rightsizerecommendations/status"): {"patch"},
    ("apps", "deployments"): {"get", "list", "watch", "patch"},
    ("apps", "statefulsets"): {"get", "list", "watch", "patch"},
    ("apps", "daemonsets"): {"get", "list", "watch", "patch"},
    ("apps", "replicasets"): {"list"},
    ("", "pods"): {"list"},
    ("", "pods/resize"): {"patch"},
    ("autoscaling", "horizontalpodautoscalers"): {"get", "list", "watch", "patch"},
    ("", "namespaces"): {"list", "watch"},
    ("", "limitranges"): {"list", "watch"},
    ("", "resourcequotas"): {"list", "watch"},
    ("", "configmaps"): {"get", "create", "update"},
    ("", "secrets"): {"get"},
    ("", "events"): {"create", "list"},
    ("metrics.k8s.io", "pods"): {"list"},
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"): {"get", "patch"},
}
#: The rules limited to named objects (``resourceNames``), and those names.
NAMED_RULES: dict[tuple[str, str], list[str]] = {
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"): ["rightsizer"],
}

#: Things the operator must NOT be able to do: (verb, API group, resource).
FORBIDDEN = (
    ("list", "", "secrets"),
    ("watch", "", "secrets"),
    ("create", "", "secrets"),
    ("delete", "apps", "deployments"),
    ("update", "apps", "deployments"),
    ("create", "", "pods"),
    ("get", "", "pods"),
    ("watch", "", "pods"),
    ("patch", "", "pods"),
    ("delete", "", "pods"),
    ("create", "", "pods/eviction"),
    ("create", "rightsizer.dev", "rightsizepolicies"),
    ("delete", "rightsizer.dev", "rightsizepolicies"),
    ("update", "rightsizer.dev", "rightsizepolicies"),
    ("update", "rightsizer.dev", "rightsizepolicies/status"),
    ("get", "rightsizer.dev", "rightsizerecommendations"),
    ("update", "rightsizer.dev", "rightsizerecommendations"),
    ("deletecollection", "rightsizer.dev", "rightsizerecommendations"),
    ("update", "rightsizer.dev", "rightsizerecommendations/status"),
    ("list", "", "configmaps"),
    ("watch", "", "configmaps"),
    ("patch", "", "configmaps"),
    ("delete", "", "configmaps"),
    ("patch", "", "events"),
    ("patch", "", "nodes"),
    ("patch", "", "namespaces"),
    ("escalate", "rbac.authorization.k8s.io", "clusterroles"),
    ("impersonate", "", "serviceaccounts"),
    ("create", "", "serviceaccounts/token"),
    ("patch", "admissionregistration.k8s.io", "validatingadmissionpolicies"),
    ("delete", "admissionregistration.k8s.io", "validatingadmissionpolicybindings"),
    # Its own webhook configuration by name only (NAMED_RULES), never another's.
    ("patch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
    ("get", "admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
    ("create", "admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
    ("list", "admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
    ("delete", "admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
    ("patch", "admissionregistration.k8s.io", "validatingwebhookconfigurations"),
)


# ------------------------------------------------------------------ reading the files
def manifest_objects() -> list[dict[str, Any]]:
    """Every object the kustomization lists, as written in its files."""
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    objects: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        objects.extend(doc for doc in yaml.safe_load_all((MANIFESTS / resource).read_text()) if doc)
    return objects


def one(kind: str) -> dict[str, Any]:
    found = [o for o in manifest_objects() if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} in manifests/, found {len(found)}"
    return found[0]


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def granted(rules: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                out.setdefault((group, resource), set()).update(rule.get("verbs", []))
    return out


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


# ------------------------------------------------------------------ pure tests
def test_cluster_role_has_no_wildcard_and_exactly_the_needed_verbs() -> None:
    roles = [o for o in manifest_objects() if o["kind"] in ("ClusterRole", "Role")]
    assert [r["metadata"]["name"] for r in roles] == ["rightsizer"]
    role = roles[0]
    assert role["kind"] == "ClusterRole"
    assert "aggregationRule" not in role
    wildcards = [s for s in strings(role) if "*" in s]
    assert not wildcards, f"wildcards in the ClusterRole: {wildcards}"
    for rule in role["rules"]:
        named = {(g, r) for g in rule["apiGroups"] for r in rule["resources"]} & set(NAMED_RULES)
        keys = {"apiGroups", "resources", "verbs"} | ({"resourceNames"} if named else set())
        assert set(rule) == keys, (
            f"only apiGroups/resources/verbs expected (resourceNames where pinned, no "
            f"nonResourceURLs): {rule}"
        )
        for pinned in named:
            assert rule["resourceNames"] == NAMED_RULES[pinned], rule
        assert len(rule["verbs"]) == len(set(rule["verbs"])), rule
    assert granted(role["rules"]) == EXPECTED_RULES


def test_only_the_operator_service_account_is_bound() -> None:
    bindings = [o for o in manifest_objects() if o["kind"] in ("ClusterRoleBinding", "RoleBinding")]
    assert len(bindings) == 1
    binding = bindings[0]
    assert binding["kind"] == "ClusterRoleBinding"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "rightsizer",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": OPERATOR_NS}
    ]
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    assert kustomization["namespace"] == OPERATOR_NS
    assert one("ServiceAccount")["metadata"]["name"] == SERVICE_ACCOUNT


def test_operator_deployment_is_hardened() -> None:
    deployment = one("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == SERVICE_ACCOUNT
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    pod_sc = pod["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc["runAsUser"] == RUN_AS
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = pod["containers"]
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert isinstance(sc["runAsUser"], int) and sc["runAsUser"] > 0
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}, kind
    assert container["command"] == [
        "kopf",
        "run",
        "-m",
        "rightsizer.handlers.main",
        "--standalone",
        "--all-namespaces",
        "--liveness=http://0.0.0.0:8081/healthz",
        "--log-format=json",
    ]
    probe = container["livenessProbe"]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert probe["path"] == "/healthz"
    assert ports[probe["port"]] == 8081
    assert ports["metrics"] == 8080
    assert ports["webhook"] == 9443
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RIGHTSIZER_METRICS_PORT"] == "8080"
    # The webhook serves on its port and fills in the caBundle of the configuration
    # the manifests ship (and the ClusterRole names).
    assert env["RIGHTSIZER_WEBHOOK_PORT"] == "9443"
    assert env["RIGHTSIZER_WEBHOOK_ADDRESS"] == "0.0.0.0"
    [webhook_configuration] = NAMED_RULES[
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations")
    ]
    assert env["RIGHTSIZER_WEBHOOK_CONFIGURATION"] == webhook_configuration
    # Policies may name only the Prometheus configured at install.
    assert env["RIGHTSIZER_PROMETHEUS_ALLOWED_URLS"] == "http://prometheus.monitoring:9090"
    # 0.0.0.0 (the operator's default is loopback) is the pod's own network namespace
    # only while the pod is not on the node's network.
    assert env["RIGHTSIZER_METRICS_ADDRESS"] == "0.0.0.0"
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    # A read-only root needs somewhere to write temporary files.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]

    services = {o["metadata"]["name"]: o for o in manifest_objects() if o["kind"] == "Service"}
    assert set(services) == {"rightsizer-metrics", "rightsizer-webhook"}
    for service in services.values():
        assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    ports_of = {n: [(p["port"], p["targetPort"]) for p in s["spec"]["ports"]]
                for n, s in services.items()}  # fmt: skip
    assert ports_of == {"rightsizer-metrics": [(8080, "metrics")],
                        "rightsizer-webhook": [(443, "webhook")]}  # fmt: skip


def test_webhook_configuration_never_blocks_a_pod_and_calls_the_service_over_tls() -> None:
    configuration = one("MutatingWebhookConfiguration")
    [hook] = configuration["webhooks"]
    assert hook["failurePolicy"] == "Ignore"
    assert hook["timeoutSeconds"] <= 5
    assert hook["sideEffects"] == "None"
    assert hook["reinvocationPolicy"] == "Never"
    assert hook["namespaceSelector"] == {"matchLabels": {AUTO_APPLY_LABEL: "enabled"}}
    assert hook["rules"] == [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                              "resources": ["pods"], "scope": "Namespaced"}]  # fmt: skip
    # The Service, never a URL; the caBundle is the operator's to fill in.
    config = hook["clientConfig"]
    assert set(config) == {"service"}, config
    assert config["service"]["name"] == "rightsizer-webhook"
    assert config["service"]["port"] == 443
    assert config["service"]["path"] == "/size-pods"
    assert "insecureSkipTLSVerify" not in json.dumps(configuration)


def test_network_policy_admits_only_scraping_and_lets_out_only_api_prometheus_dns() -> None:
    policy = one("NetworkPolicy")
    spec = policy["spec"]
    deployment = one("Deployment")["spec"]
    assert spec["podSelector"]["matchLabels"] == deployment["selector"]["matchLabels"]
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    container = deployment["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}

    # Ingress: the metrics port only, from a named namespace (probes come from the node,
    # which NetworkPolicy always lets through).
    ingress, webhook = spec["ingress"]
    assert [p["port"] for p in ingress["ports"]] == ["metrics"]
    assert "metrics" in ports
    assert all("namespaceSelector" in peer for peer in ingress["from"]), ingress
    # The API server (any address: it is the cluster's own) to the webhook port only.
    assert [p["port"] for p in webhook["ports"]] == ["webhook"]
    assert "webhook" in ports

    # Egress: every rule names its ports; together only HTTPS (API server), Prometheus
    # and DNS.
    allowed: set[tuple[str, int]] = set()
    for rule in spec["egress"]:
        assert rule.get("ports"), f"an egress rule without ports allows everything: {rule}"
        assert rule.get("to"), f"an egress rule without peers allows every peer: {rule}"
        allowed |= {(p["protocol"], p["port"]) for p in rule["ports"]}
    assert allowed == {("TCP", 443), ("TCP", 6443), ("TCP", 9090), ("UDP", 53), ("TCP", 53)}
    [dns] = [r for r in spec["egress"] if ("UDP", 53) in {(p["protocol"], p["port"])
                                                         for p in r["ports"]}]  # fmt: skip
    assert dns["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    # The one wide peer (the API server's address is the cluster's own) is limited to
    # the API server's ports.
    for rule in spec["egress"]:
        for peer in rule["to"]:
            if peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0":
                assert {p["port"] for p in rule["ports"]} == {443, 6443}, rule


def test_dockerfile_agrees_with_the_deployment() -> None:
    instructions = dockerfile_instructions()
    args = dict(i[1].split("=", 1) for i in instructions if i[0] == "ARG" and "=" in i[1])
    froms = [rest for word, rest in instructions if word == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    bases = {re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], f.split()[0]) for f in froms}
    assert len(bases) == 1, f"builder and final stage must share one base: {bases}"
    [base] = bases
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", base), base
    # Everything after the last FROM is the final image.
    last = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    final = instructions[last:]
    assert any(w == "COPY" and r.startswith("--from=builder") for w, r in final)
    users = [r for w, r in final if w == "USER"]
    assert users and users[-1].split(":")[0] == str(RUN_AS)
    run_lines = " ".join(r for w, r in final if w == "RUN")
    for tool in ("apt-get install", "gcc", "build-essential", "pip install"):
        assert tool not in run_lines, f"{tool!r} in the final stage"
    [entrypoint] = [r for w, r in final if w == "ENTRYPOINT"]
    container = one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert json.loads(entrypoint) == container["command"]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ignored[ignored.index("*") :][:1] == ["*"], ".dockerignore should allow-list"


# ------------------------------------------------------------------ on the sandbox
def kubectl(sandbox: Sandbox, kubeconfig: Path | str, *args: str, check: bool = True) -> str:
    proc = subprocess.run(
        [str(sandbox.cfg.binary("kubectl")), f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout + proc.stderr


def wait_until_operator_namespace_is_usable(k8s_api: ApiClient) -> None:
    """Absent or Active: an earlier module's uninstall (``--wait=false``) may still be
    deleting it, and a Terminating namespace refuses new objects."""
    core: Any = client.CoreV1Api(k8s_api)

    def usable() -> bool:
        try:
            return bool(core.read_namespace(OPERATOR_NS).status.phase == "Active")
        except ApiException as exc:
            return exc.status == 404

    wait_for(f"namespace {OPERATOR_NS} to be absent or active", usable, 120)


@pytest.fixture(scope="module")
def installed(sandbox: Sandbox, kube: KubeAccess, k8s_api: ApiClient) -> Iterator[str]:
    """crds/ and manifests/ applied; yields what `kubectl apply -k manifests/` said."""
    wait_until_operator_namespace_is_usable(k8s_api)
    kubectl(sandbox, kube.kubeconfig, "apply", "-f", str(CRDS))
    out = kubectl(sandbox, kube.kubeconfig, "apply", "-k", str(MANIFESTS))
    kubectl(
        sandbox,
        kube.kubeconfig,
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        f"crd/{PLURAL}.{GROUP}",
    )
    yield out
    # The CRD stays: other tests of the run may use it.
    kubectl(
        sandbox,
        kube.kubeconfig,
        "delete",
        "-k",
        str(MANIFESTS),
        "--ignore-not-found",
        "--wait=false",
        check=False,
    )


@pytest.mark.k8s
def test_manifests_are_accepted_and_the_pod_is_admitted(installed: str, k8s_api: ApiClient) -> None:
    # PodSecurity and deprecation warnings come back as "Warning: …" lines.
    assert "Warning" not in installed, installed
    for obj in (
        "namespace/rightsizer-system",
        "serviceaccount/rightsizer",
        "clusterrole.rbac.authorization.k8s.io/rightsizer",
        "clusterrolebinding.rbac.authorization.k8s.io/rightsizer",
        "service/rightsizer-metrics",
        "service/rightsizer-webhook",
        "mutatingwebhookconfiguration.admissionregistration.k8s.io/rightsizer",
        "deployment.apps/rightsizer",
        "networkpolicy.networking.k8s.io/rightsizer",
        "validatingadmissionpolicy.admissionregistration.k8s.io/rightsizer-policy-author-rights",
        "validatingadmissionpolicybinding.admissionregistration.k8s.io/rightsizer-policy-author-rights",
    ):
        assert obj in installed
    core: Any = client.CoreV1Api(k8s_api)
    labels = "app.kubernetes.io/name=rightsizer,app.kubernetes.io/component=operator"

    # The namespace enforces the restricted Pod Security level: a pod that the
    # ReplicaSet controller manages to create passed admission.
    def pods() -> list[Any]:
        return list(core.list_namespaced_pod(OPERATOR_NS, label_selector=labels).items)

    def failures() -> str:
        events = core.list_namespaced_event(OPERATOR_NS).items
        return "\n".join(e.message or "" for e in events if e.reason == "FailedCreate")

    wait_for(
        "the operator pod to be created", pods, 60, hint=lambda: f"\nFailedCreate: {failures()}"
    )
    assert "violate" not in failures()


def allowed(k8s_api: ApiClient, verb: str, group: str, resource: str, name: str = "") -> bool:
    """Whether the operator's ServiceAccount may do this cluster-wide (to the object
    ``name``, if given; a SubjectAccessReview, what `kubectl auth can-i --as` sends)."""
    base, _, sub = resource.partition("/")
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": SA_USER,
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{OPERATOR_NS}",
                       "system:authenticated"],
            "resourceAttributes": {"verb": verb, "group": group, "resource": base,
                                   "subresource": sub, "name": name},
        },
    }  # fmt: skip
    authz: Any = client.AuthorizationV1Api(k8s_api)
    return bool(authz.create_subject_access_review(review).status.allowed)


@pytest.mark.k8s
def test_service_account_has_the_pinned_rights_and_no_more(
    installed: str, k8s_api: ApiClient
) -> None:
    rbac: Any = client.RbacAuthorizationV1Api(k8s_api)
    role = rbac.read_cluster_role("rightsizer")
    rules = [
        {"apiGroups": r.api_groups or [], "resources": r.resources or [], "verbs": r.verbs}
        for r in role.rules
    ]
    assert granted(rules) == EXPECTED_RULES
    named = {(g, res): list(r.resource_names) for r in role.rules if r.resource_names
             for g in r.api_groups or [] for res in r.resources or []}  # fmt: skip
    assert named == NAMED_RULES
    refused = [
        f"{verb} {group}/{resource}"
        for (group, resource), verbs in EXPECTED_RULES.items()
        for verb in sorted(verbs)
        for name in NAMED_RULES.get((group, resource), [""])
        if not allowed(k8s_api, verb, group, resource, name)
    ]
    assert not refused, f"{SA_USER} lacks: {refused}"
    too_much = [f"{v} {g}/{r}" for v, g, r in FORBIDDEN if allowed(k8s_api, v, g, r)]
    assert not too_much, f"{SA_USER} may also: {too_much}"


# -------------------------------------------------- the operator on its own credentials
def service_account_kubeconfig(
    sandbox: Sandbox,
    kube: KubeAccess,
    path: Path,
    account: str = SERVICE_ACCOUNT,
    namespace: str = OPERATOR_NS,
) -> Path:
    token = kubectl(
        sandbox, kube.kubeconfig, "create", "token", account, "-n", namespace, "--duration=2h"
    ).strip()
    assert token.count(".") == 2, "expected a JWT from the TokenRequest API"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "sandbox",
                "cluster": {"server": kube.server, "certificate-authority": str(kube.ca_file)},
            }
        ],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "sandbox", "user": account}}],
        "current-context": "operator",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def load_history(prometheus: Prometheus, namespace: str, out: Path) -> None:
    """Two days of usage of Deployment/web (2 pods), ending at the current minute, through
    `rightsizer dev openmetrics` as the demo loads its history."""
    end_s = math.floor(time.time() / 60) * 60
    profile = ContainerProfile(namespace, "Deployment/web", 2, "app", 0.12, 0.08, 180 * MI, 0,
                               0.5, 1.0, 512 * MI, 512 * MI)  # fmt: skip
    samples = out / "samples.csv"
    profile_frame((profile,), start_s=end_s - 2 * 86400, days=2, step_s=60).to_csv(
        samples, index=False
    )
    prometheus.load_samples(samples, end_s, out / "openmetrics")


def web_deployment(namespace: str) -> dict[str, Any]:
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "kwok.x-k8s.io/usage-cpu": "120m",
                        "kwok.x-k8s.io/usage-memory": "180Mi",
                    },
                },
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "registry.local/app:1",
                            "resources": {
                                "requests": {"cpu": "500m", "memory": "512Mi"},
                                "limits": {"cpu": "1", "memory": "512Mi"},
                            },
                        }
                    ],
                },
            },
        },
    }


def policy(namespace: str, prometheus_url: str, secret: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RightSizePolicy",
        "metadata": {"name": "rbac-check", "namespace": namespace},
        "spec": {
            "targets": {"kinds": ["Deployment"]},
            "source": {
                # The Secret is read (get by name) even though Prometheus ignores it.
                "prometheus": {
                    "url": prometheus_url,
                    "history": "3d",
                    "step": "1m",
                    "authSecretRef": {"name": secret},
                },
                "metricsServer": {"enabled": True},
            },
            "update": {"mode": "Recommend"},
            "reconcileInterval": "10s",
        },
    }


def policies(custom: Any, namespace: str) -> list[str]:
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    return [str(item["metadata"]["name"]) for item in listed.get("items", [])]


class Operator(OperatorProcess):
    """``kopf run`` as in the Deployment (its own command), but as a local process with the
    given kubeconfig; only the probe listens on a free local port."""

    def __init__(
        self,
        kubeconfig: Path,
        log: Path,
        allowed_prometheus: str | None,
        container: dict[str, Any] | None = None,
        *,
        webhook: bool = True,
    ) -> None:
        """``container``: the Deployment's container to run (its command and environment;
        default: manifests/'s); metrics and the probe listen on free local ports.
        ``allowed_prometheus``: replaces the container's allow-list (None: keep it).
        ``webhook``: False runs it without its admission webhook (whose configuration only
        the manifests' install creates)."""
        container = container or one("Deployment")["spec"]["template"]["spec"]["containers"][0]
        # The container's settings, but for what a local process needs of its own (HOME and
        # TMPDIR are the pod's /tmp; the ports and the tick are the harness's).
        own = {"HOME", "TMPDIR", "KUBECONFIG", "RIGHTSIZER_TICK_SECONDS",
               "RIGHTSIZER_METRICS_PORT", "RIGHTSIZER_METRICS_ADDRESS",
               "RIGHTSIZER_PROMETHEUS_ALLOWED_URLS", "RIGHTSIZER_WEBHOOK_PORT",
               "RIGHTSIZER_WEBHOOK_ADDRESS"}  # fmt: skip
        values = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        if allowed_prometheus is None:
            allowed_prometheus = values.get("RIGHTSIZER_PROMETHEUS_ALLOWED_URLS", "")
        env = {k: v for k, v in values.items() if k not in own}
        if not webhook:
            env["RIGHTSIZER_WEBHOOK_PORT"] = "0"
        elif values.get("RIGHTSIZER_WEBHOOK_PORT", "0") != "0":
            # The webhook on a free local port: it still reads and patches the installed
            # configuration named in the container's environment, with the rights given.
            env["RIGHTSIZER_WEBHOOK_PORT"] = str(free_port())
        command = container["command"]
        argv = [str(Path(sys.executable).parent / command[0]), *command[1:]]
        super().__init__(kubeconfig, log, allowed_prometheus, tick_s=2, argv=argv, env=env)

    def reconciles(self, namespace: str, name: str) -> int:
        """How many reconciles of this policy this process logged (JSON log lines)."""
        count = 0
        for line in self.log().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            obj = record.get("object") or {}
            if (obj.get("namespace"), obj.get("name")) == (namespace, name) and str(
                record.get("message", "")
            ).startswith("reconciled"):
                count += 1
        return count

    def get(self, port: int, path: str) -> tuple[int, str]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return int(resp.status), resp.read().decode()


@pytest.mark.k8s
@pytest.mark.prometheus
@pytest.mark.slow
def test_operator_works_with_only_its_service_account(
    installed: str,
    sandbox: Sandbox,
    kube: KubeAccess,
    metrics_server: KubeAccess,
    prometheus: Prometheus,
    k8s_api: ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    kubeconfig = service_account_kubeconfig(sandbox, kube, tmp_path / "operator.kubeconfig")
    whoami = kubectl(
        sandbox, kubeconfig, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"
    )
    assert whoami.strip() == SA_USER

    load_history(prometheus, namespace, tmp_path)
    # The client's annotations are partial; its calls are this test's edge.
    core: Any = client.CoreV1Api(k8s_api)
    apps: Any = client.AppsV1Api(k8s_api)
    custom: Any = client.CustomObjectsApi(k8s_api)
    core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "prometheus-credentials"},
            "type": "rightsizer.dev/prometheus-auth",  # the only type the operator reads
            "stringData": {"username": "rightsizer", "password": "not-checked-by-the-sandbox"},
        },
    )
    apps.create_namespaced_deployment(namespace, web_deployment(namespace))

    operator = Operator(kubeconfig, tmp_path / "operator.log", prometheus.url)
    started = [operator]
    try:
        # The webhook's CA, put into the installed configuration with the account's rights.
        admission: Any = client.AdmissionregistrationV1Api(k8s_api)
        [hook] = admission.read_mutating_webhook_configuration("rightsizer").webhooks
        assert hook.client_config.ca_bundle, operator.hint()
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            policy(namespace, prometheus.url, "prometheus-credentials"),
        )

        def observed(generation: int) -> Callable[[], Any]:
            def check() -> Any:
                obj = custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, "rbac-check"
                )
                status = obj.get("status") or {}
                done = status.get("observedGeneration") == generation == obj["metadata"][
                    "generation"
                ] and any(c.get("type") == "Ready" for c in status.get("conditions", []))
                return status if done else None

            return check

        status = wait_for("a status for generation 1", observed(1), 120, hint=operator.hint)
        conditions = {c["type"]: c for c in status["conditions"]}
        assert conditions["Ready"]["status"] == "True", (conditions, operator.hint())
        assert conditions["SourceUnavailable"]["status"] == "False", conditions

        # Annotate mode writes to the workload: the `patch` on deployments.
        template_before = apps.read_namespaced_deployment("web", namespace).spec.template.to_dict()
        custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            "rbac-check",
            {"spec": {"update": {"mode": "Annotate"}}},
        )
        wait_for("a status for generation 2", observed(2), 120, hint=operator.hint)
        # The work was done by this process (not by another operator sharing the sandbox).
        wait_for(
            "this operator's second reconcile",
            lambda: operator.reconciles(namespace, "rbac-check") >= 2,
            60,
            hint=operator.hint,
        )

        def annotated() -> Any:
            meta = apps.read_namespaced_deployment("web", namespace).metadata
            return (meta.annotations or {}).get("rightsizer.dev/recommendation")

        wait_for(
            "the recommendation annotation on Deployment/web", annotated, 60, hint=operator.hint
        )
        # Metadata only: no template change, hence no new ReplicaSet (annotations do bump a
        # Deployment's generation, so that is not the measure).
        deployment = apps.read_namespaced_deployment("web", namespace)
        assert deployment.spec.template.to_dict() == template_before
        assert deployment.metadata.annotations["deployment.kubernetes.io/revision"] == "1"

        # Apply mode in an opted-in namespace: the server-side apply (dry-run, then the
        # write) of requests/limits, and the pod list of the rollout watch.
        core.patch_namespace(namespace, {"metadata": {"labels": {AUTO_APPLY_LABEL: "enabled"}}})
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "rbac-check", {"spec": {"update": {"mode": "Apply"}}}
        )

        def applied() -> Any:
            meta = apps.read_namespaced_deployment("web", namespace).metadata
            return (meta.annotations or {}).get("rightsizer.dev/last-applied")

        record = json.loads(wait_for("the apply's record on Deployment/web", applied, 120,
                                     hint=operator.hint))  # fmt: skip
        assert record["state"] == "Applied", record
        requests = apps.read_namespaced_deployment("web", namespace).spec.template.spec
        assert requests.containers[0].resources.requests["cpu"] != "500m"

        health_status, _ = operator.get(operator.health_port, "/healthz")
        assert health_status == 200
        metrics_status, metrics = operator.get(operator.metrics_port, "/metrics")
        assert metrics_status == 200 and "rightsizer_" in metrics

        # A restart: the policy's first Apply pass in the new process lists the namespace's
        # Events of its recent writes (to post those a crash lost: a `list` on Events).
        operator.stop()
        operator = Operator(kubeconfig, tmp_path / "operator-restarted.log", prometheus.url)
        started.append(operator)
        wait_for("a reconcile after the restart",
                 lambda: operator.reconciles(namespace, "rbac-check") >= 2, 120,
                 hint=operator.hint)  # fmt: skip

        # Deleting the policy: the operator releases its finalizer (a patch).
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "rbac-check")
        wait_for(
            "the policy to be gone",
            lambda: not policies(custom, namespace),
            60,
            hint=operator.hint,
        )
    finally:
        operator.stop()
        for name in policies(custom, namespace):  # after a failure: unblock the namespace
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"finalizers": None}}
            )
    log = "\n".join(o.log() for o in started)
    # Not counted: Events posted into other tests' namespaces while those are being deleted.
    denied = [
        line
        for line in log.splitlines()
        # Kopf says "Not enough permissions" when it cannot watch the CRDs.
        if re.search(r"\b403\b|forbidden|not enough permissions", line, re.I)
        and "NamespaceTerminating" not in line
    ]
    assert not denied, "the operator was refused something:\n" + "\n".join(denied[:20])
