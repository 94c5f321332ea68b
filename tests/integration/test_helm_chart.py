"""The Helm chart (``charts/rightsizer``): lint, one source of truth with ``manifests/``,
its values, and a real install, upgrade and uninstall.

Rendering tests need only the helm and kubectl binaries of the component cache
(``scripts/build-components.sh helm k8s``): ``helm lint --strict``; the chart's RBAC,
Deployment, Service, NetworkPolicy and admission policy with the default values equal
those of ``kubectl kustomize manifests/`` (so the two cannot drift); the chart's CRD is the
project's; each value reaches the object it is about. The sandbox tests send
``helm template`` to the real API server (server-side dry-run), then ``helm install`` into
a namespace that enforces the restricted Pod Security level, run the operator as a local
process with the chart's own container command and environment and nothing but a token
of the chart's ServiceAccount, have it reconcile a policy, ``helm upgrade`` and
``helm uninstall``.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from tests.integration.test_deploy_manifests import (
    CRDS,
    EXPECTED_RULES,
    GROUP,
    MANIFESTS,
    PLURAL,
    VERSION,
    Operator,
    granted,
    kubectl,
    load_history,
    policies,
    service_account_kubeconfig,
    web_deployment,
)
from tests.integration.waiting import wait_for
from tests.sandbox import KubeAccess, Prometheus, Sandbox
from tests.sandbox.config import Config

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "rightsizer"
DASHBOARD = ROOT / "dashboards" / "rightsizer.json"
#: A release named like the chart renders the names manifests/ uses.
SAME_NAMES = "rightsizer"
MANIFEST_NS = "rightsizer-system"
#: The installed release: its own names, so that it never meets manifests/'s objects
#: (test_deploy_manifests.py installs those into the same sandbox).
RELEASE, RELEASE_NS = "rs-helm", "rightsizer-helm"
FULLNAME = f"{RELEASE}-rightsizer"
NAMESPACED = {"Deployment", "Service", "ServiceAccount", "NetworkPolicy", "ConfigMap"}


def helm_binary() -> Path:
    return Config().binary("helm")


def run(argv: list[str | Path], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Helm's notes about the symlinks (crds/ and dashboards/ link to the project's own
    files) go to stderr, kept apart from the output."""
    proc = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=300, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def helm(*args: str) -> str:
    return run([helm_binary(), *args]).stdout


def render(*args: str, release: str = SAME_NAMES, namespace: str = MANIFEST_NS) -> list[Any]:
    """``helm template`` with these extra arguments, as objects."""
    out = helm("template", release, str(CHART), "-n", namespace, *args)
    return [d for d in yaml.safe_load_all(out) if d]


def kustomized() -> list[Any]:
    out = run([Config().binary("kubectl"), "kustomize", MANIFESTS]).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def only(objects: list[Any], kind: str) -> Any:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container(objects: list[Any]) -> Any:
    return only(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]


HTTP_403 = re.compile(r"(?<![\w.])403(?![\w.])")


# ------------------------------------------------------------------ rendering
def test_helm_lint_is_clean() -> None:
    out = helm("lint", "--strict", str(CHART))
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    assert "[WARNING]" not in out and "[ERROR]" not in out, out
    values = ["--set", "watchNamespaces={a,b}", "--set", "grafanaDashboard.enabled=true"]
    assert "0 chart(s) failed" in helm("lint", "--strict", str(CHART), *values)


def test_chart_and_manifests_do_not_drift() -> None:
    """With the default values, a release named rightsizer in rightsizer-system is
    manifests/, object by object, but for labels Helm adds."""
    chart, manifests = render(), kustomized()
    kinds = sorted(o["kind"] for o in chart)
    assert kinds == sorted(o["kind"] for o in manifests if o["kind"] != "Namespace"), kinds
    for obj in chart:
        [twin] = [o for o in manifests if (o["kind"], o["metadata"]["name"]) == (obj["kind"],
                  obj["metadata"]["name"])]  # fmt: skip
        assert obj["metadata"]["name"] == twin["metadata"]["name"], obj["kind"]
        if obj["kind"] in NAMESPACED:  # kustomize also stamps cluster-wide kinds it lacks
            assert obj["metadata"]["namespace"] == twin["metadata"]["namespace"], obj["kind"]
        # Helm's labels come on top of manifests/'s, never instead of them.
        assert twin["metadata"]["labels"].items() <= obj["metadata"]["labels"].items()
        body = {k: v for k, v in obj.items() if k not in ("metadata",)}
        twin_body = {k: v for k, v in twin.items() if k not in ("metadata",)}
        if obj["kind"] == "Deployment":
            # The pod template's labels carry Helm's too; everything else is equal.
            for side in (body, twin_body):
                side["spec"]["template"]["metadata"]["labels"] = {
                    k: v
                    for k, v in side["spec"]["template"]["metadata"]["labels"].items()
                    if k in twin["spec"]["template"]["metadata"]["labels"]
                }
        assert body == twin_body, f"{obj['kind']} differs from manifests/"
    assert granted(only(chart, "ClusterRole")["rules"]) == EXPECTED_RULES
    # Without the webhook: no configuration, Service, port or rights for it.
    off = render("--set", "webhook.enabled=false")
    assert not [o for o in off if o["kind"] == "MutatingWebhookConfiguration"]
    assert [o["metadata"]["name"] for o in off if o["kind"] == "Service"] == ["rightsizer-metrics"]
    env = {e["name"]: e["value"] for e in container(off)["env"]}
    assert env["RIGHTSIZER_WEBHOOK_PORT"] == "0"
    assert "mutatingwebhookconfigurations" not in json.dumps(only(off, "ClusterRole"))


def test_chart_ships_the_project_crds_and_dashboard() -> None:
    for crd in CRDS.glob("*.yaml"):
        assert (CHART / "crds" / crd.name).read_bytes() == crd.read_bytes(), crd.name
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == sorted(
        p.name for p in CRDS.glob("*.yaml")
    )
    dashboard = only(render("--set", "grafanaDashboard.enabled=true"), "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["rightsizer.json"]) == json.loads(DASHBOARD.read_text())
    assert not [o for o in render() if o["kind"] in ("ConfigMap", "ServiceMonitor")]


def test_values_reach_their_objects() -> None:
    objects = render(
        "--set", "image.repository=registry.example/rs", "--set", "image.tag=1.2.3",
        "--set", "watchNamespaces={team-a,team-b}", "--set", "logLevel=debug",
        "--set", "prometheus.allowedURLs={http://a.example:9090,https://b.example/prom}",
        "--set", "replicaCount=0", "--set", "resources.requests.cpu=250m",
        "--set", "tickSeconds=10", "--set", "metrics.serviceMonitor.enabled=true",
        "--set", "metrics.serviceMonitor.labels.release=kps",
        "--set", "admissionPolicy.enabled=false", "--set", "networkPolicy.enabled=false",
        "--set", "rolloutWatch.minSeconds=900",
        "--set", "rolloutWatch.deadlineMarginSeconds=60",
    )  # fmt: skip
    c = container(objects)
    assert c["image"] == "registry.example/rs:1.2.3"
    assert "--all-namespaces" not in c["command"]
    assert [a for a in c["command"] if a.startswith("--namespace=")] == [
        "--namespace=team-a",
        "--namespace=team-b",
    ]
    assert c["command"][-1] == "--debug"
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["RIGHTSIZER_PROMETHEUS_ALLOWED_URLS"] == (
        "http://a.example:9090,https://b.example/prom"
    )
    assert env["RIGHTSIZER_TICK_SECONDS"] == "10"
    assert env["RIGHTSIZER_ROLLOUT_WATCH_SECONDS"] == "900"
    assert env["RIGHTSIZER_ROLLOUT_DEADLINE_MARGIN_SECONDS"] == "60"
    assert c["resources"]["requests"]["cpu"] == "250m"
    assert only(objects, "Deployment")["spec"]["replicas"] == 0
    monitor = only(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert (
        monitor["spec"]["selector"]["matchLabels"]
        == next(o for o in objects if o["metadata"]["name"].endswith("-metrics"))["spec"][
            "selector"
        ]
    )
    kinds = {o["kind"] for o in objects}
    assert not kinds & {"ValidatingAdmissionPolicy", "NetworkPolicy"}

    digest = "sha256:" + "ab" * 32
    pinned = container(render("--set", f"image.digest={digest}"))
    assert pinned["image"] == f"ghcr.io/rightsizer/rightsizer@{digest}"


@pytest.mark.parametrize(
    "values",
    [
        ["--set", "replicaCount=2"],  # Kopf --standalone: two operators would both act
        ["--set", "logLevel=loud"],
        ["--set", "prometheus.allowedURLs={http://user:pw@prom:9090}"],
        ["--set", "watchNamespaces={Not_A_Namespace}"],
        ["--set", "image.digest=latest"],
        ["--set", "rolloutWatch.minSeconds=0"],
    ],
)
def test_unsafe_values_are_refused(values: list[str]) -> None:
    proc = run([helm_binary(), "template", "x", CHART, *values], check=False)
    assert proc.returncode != 0
    assert "values don't meet the specifications of the schema" in proc.stderr, proc.stderr


# ------------------------------------------------------------------ on the sandbox
@pytest.mark.k8s
def test_rendered_chart_passes_the_api_servers_dry_run(
    sandbox: Sandbox, kube: KubeAccess, k8s_api: ApiClient
) -> None:
    kubectl(sandbox, kube.kubeconfig, "apply", "--server-side", "-f", str(CRDS))
    ensure_release_namespace(k8s_api)
    manifest = helm("template", RELEASE, str(CHART), "-n", RELEASE_NS,
                    "--set", "grafanaDashboard.enabled=true")  # fmt: skip
    path = Path(sandbox.cfg.state) / "helm-template.yaml"
    path.write_text(manifest)
    out = kubectl(sandbox, kube.kubeconfig, "apply", "--dry-run=server", "-f", str(path))
    assert "Warning" not in out, out
    for obj in (
        f"deployment.apps/{FULLNAME} created (server dry run)",
        f"clusterrole.rbac.authorization.k8s.io/{FULLNAME} created (server dry run)",
        f"validatingadmissionpolicy.admissionregistration.k8s.io/{FULLNAME}-policy-author-rights",
        f"networkpolicy.networking.k8s.io/{FULLNAME} created (server dry run)",
        f"configmap/{FULLNAME}-dashboard created (server dry run)",
    ):
        assert obj in out, out


def ensure_release_namespace(k8s_api: ApiClient) -> None:
    """The namespace an installer creates first (README): restricted Pod Security."""
    core: Any = client.CoreV1Api(k8s_api)
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    try:
        core.create_namespace({"metadata": {"name": RELEASE_NS, "labels": labels}})
    except ApiException as exc:
        if exc.status != 409:
            raise
    wait_for(
        f"namespace {RELEASE_NS} to be active",
        lambda: core.read_namespace(RELEASE_NS).status.phase == "Active",
        120,
    )


def release_policy(namespace: str, prometheus_url: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RightSizePolicy",
        "metadata": {"name": "helm-check", "namespace": namespace},
        "spec": {
            "targets": {"kinds": ["Deployment"]},
            "source": {
                "prometheus": {"url": prometheus_url, "history": "3d", "step": "1m"},
                "metricsServer": {"enabled": True},
            },
            "update": {"mode": "Annotate"},
            "reconcileInterval": "10s",
        },
    }


@pytest.mark.k8s
@pytest.mark.prometheus
@pytest.mark.slow
def test_install_run_upgrade_uninstall(
    sandbox: Sandbox,
    kube: KubeAccess,
    metrics_server: KubeAccess,
    prometheus: Prometheus,
    k8s_api: ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    ensure_release_namespace(k8s_api)
    kube_args = ["--kubeconfig", str(kube.kubeconfig), "-n", RELEASE_NS]
    helm("uninstall", RELEASE, *kube_args, "--ignore-not-found", "--wait")
    values = [
        "--set", f"watchNamespaces={{{namespace}}}",
        "--set", f"prometheus.allowedURLs={{{prometheus.url}}}",
        "--set", "grafanaDashboard.enabled=true",
    ]  # fmt: skip
    installed = helm("install", RELEASE, str(CHART), *kube_args, *values)
    assert "STATUS: deployed" in installed, installed
    rbac: Any = client.RbacAuthorizationV1Api(k8s_api)
    apps: Any = client.AppsV1Api(k8s_api)
    core: Any = client.CoreV1Api(k8s_api)
    custom: Any = client.CustomObjectsApi(k8s_api)
    role = rbac.read_cluster_role(FULLNAME)
    rules = [{"apiGroups": r.api_groups or [], "resources": r.resources or [], "verbs": r.verbs}
             for r in role.rules]  # fmt: skip
    assert granted(rules) == EXPECTED_RULES

    # The restricted Pod Security level admits the operator's pod.
    labels = "app.kubernetes.io/name=rightsizer,app.kubernetes.io/component=operator"
    wait_for(
        "the chart's operator pod to be created",
        lambda: core.list_namespaced_pod(RELEASE_NS, label_selector=labels).items,
        60,
        hint=lambda: "\n".join(
            e.message or "" for e in core.list_namespaced_event(RELEASE_NS).items
        ),
    )

    # The operator as the chart deploys it (its command, its environment), run here with
    # nothing but a token of the chart's ServiceAccount.
    deployed = apps.read_namespaced_deployment(FULLNAME, RELEASE_NS)
    spec = k8s_api.sanitize_for_serialization(deployed)  # type: ignore[no-untyped-call]
    chart_container = spec["spec"]["template"]["spec"]["containers"][0]
    assert f"--namespace={namespace}" in chart_container["command"]
    kubeconfig = service_account_kubeconfig(
        sandbox, kube, tmp_path / "operator.kubeconfig", FULLNAME, RELEASE_NS
    )
    load_history(prometheus, namespace, tmp_path)
    apps.create_namespaced_deployment(namespace, web_deployment(namespace))
    operator = Operator(kubeconfig, tmp_path / "operator.log", None, chart_container)
    try:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, release_policy(namespace, prometheus.url)
        )

        def ready() -> Any:
            obj = custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, "helm-check"
            )
            conditions = {c["type"]: c for c in (obj.get("status") or {}).get("conditions", [])}
            return conditions if "Ready" in conditions else None

        conditions = wait_for("the policy's status", ready, 120, hint=operator.hint)
        assert conditions["Ready"]["status"] == "True", (conditions, operator.hint())
        assert conditions["SourceUnavailable"]["status"] == "False", conditions

        def annotated() -> Any:
            meta = apps.read_namespaced_deployment("web", namespace).metadata
            return (meta.annotations or {}).get("rightsizer.dev/recommendation")

        wait_for("the recommendation annotation", annotated, 60, hint=operator.hint)
        assert operator.reconciles(namespace, "helm-check") >= 1
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "helm-check")
        wait_for("the policy to be gone", lambda: not policies(custom, namespace), 60,
                 hint=operator.hint)  # fmt: skip
    finally:
        operator.stop()
        for name in policies(custom, namespace):
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"finalizers": None}}
            )
    # HTTP 403 as a number of its own: not the digits inside a timestamp, a uid or a count
    # ("…46.540395…" once matched a bare substring test).
    denied = [line for line in operator.log().splitlines()
              if HTTP_403.search(line) or "forbidden" in line.lower()]  # fmt: skip
    assert not denied, "the operator was refused something:\n" + "\n".join(denied[:20])

    # Upgrade: a changed value reaches the running Deployment; the release moves on.
    upgraded = helm("upgrade", RELEASE, str(CHART), *kube_args, *values,
                    "--set", "logLevel=debug", "--set", "tickSeconds=15")  # fmt: skip
    assert "REVISION: 2" in upgraded, upgraded

    def upgraded_container() -> Any:
        c = apps.read_namespaced_deployment(FULLNAME, RELEASE_NS).spec.template.spec.containers[0]
        env = {e.name: e.value for e in c.env}
        return c if "--debug" in c.command and env["RIGHTSIZER_TICK_SECONDS"] == "15" else None

    wait_for("the upgraded Deployment", upgraded_container, 30)
    history = json.loads(helm("history", RELEASE, *kube_args, "-o", "json"))
    assert [h["status"] for h in history] == ["superseded", "deployed"], history

    # Uninstall: the release's objects, cluster-wide ones included, are gone; the CRD
    # stays (Helm never deletes crds/), and so do the policies' namespaces.
    helm("uninstall", RELEASE, *kube_args, "--wait")
    gone: list[tuple[str, Callable[[], Any]]] = [
        ("ClusterRole", lambda: rbac.read_cluster_role(FULLNAME)),
        ("ClusterRoleBinding", lambda: rbac.read_cluster_role_binding(FULLNAME)),
        ("Deployment", lambda: apps.read_namespaced_deployment(FULLNAME, RELEASE_NS)),
        ("ServiceAccount", lambda: core.read_namespaced_service_account(FULLNAME, RELEASE_NS)),
        ("ConfigMap", lambda: core.read_namespaced_config_map(f"{FULLNAME}-dashboard",
                                                               RELEASE_NS)),
    ]  # fmt: skip
    for kind, read in gone:
        with pytest.raises(ApiException) as exc:
            read()
        assert exc.value.status == 404, kind
    admission: Any = client.AdmissionregistrationV1Api(k8s_api)
    names = [p.metadata.name for p in admission.list_validating_admission_policy().items]
    assert f"{FULLNAME}-policy-author-rights" not in names
    ext: Any = client.ApiextensionsV1Api(k8s_api)
    assert ext.read_custom_resource_definition(f"{PLURAL}.{GROUP}")
