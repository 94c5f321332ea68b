"""The operator image, as built by ``make image`` (``scripts/image.sh``: buildah, vfs,
chroot isolation, a Debian base built here).

Checked from the image itself: its user is 65532, not root; no pip, compiler or package
manager is left; its size. Then its entrypoint runs **from the image's filesystem**: the
image's root mounted read-only (tmpfs on /tmp, as the pod's emptyDir), ``chroot`` as user
65532 with the image's environment, in a mount namespace of its own, with only a
kubeconfig placed in /tmp, against the sandbox's API server and Prometheus, and must
reconcile a policy.

Without an image the tests skip, unless ``RIGHTSIZER_REQUIRE_IMAGE=1`` (``.ci/run`` sets
it after ``make image``), when they fail.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiClient

from tests.integration.test_deploy_manifests import (
    GROUP,
    PLURAL,
    VERSION,
    load_history,
    policies,
    policy,
    web_deployment,
)
from tests.integration.waiting import free_port, wait_for
from tests.sandbox import KubeAccess, Prometheus
from tests.sandbox.config import Config
from tests.sandbox.operator import START_MARKER

IMAGE = os.environ.get("RIGHTSIZER_IMAGE", "localhost/rightsizer:dev")
RUN_AS = 65532
#: A sanity bound, not a target: the Debian base with Python (~160 MB) and the operator's
#: venv (~510 MB: pyarrow, kubernetes, pandas, numpy…) measured 667 MB (docs/install.md).
MAX_SIZE_MB = 800
#: Programs that must not be in the final image.
FORBIDDEN_PROGRAMS = ("pip", "pip3", "apt", "apt-get", "dpkg", "gcc", "cc", "c++", "g++", "make")


def store_args() -> list[str]:
    cache = Config().cache
    return ["--root", str(cache / "containers" / "storage"),
            "--runroot", str(cache / "containers" / "run"), "--storage-driver", "vfs"]  # fmt: skip


def buildah(*args: str) -> str:
    proc = subprocess.run(
        ["buildah", *store_args(), *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, f"buildah {args}: {proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def image() -> Iterator[tuple[dict[str, Any], Path]]:
    """(the image's OCI config, its root filesystem mounted read-write for inspection)."""
    required = os.environ.get("RIGHTSIZER_REQUIRE_IMAGE") == "1"
    problem = ""
    if shutil.which("buildah") is None:
        problem = "buildah is not installed"
    elif os.geteuid() != 0:
        problem = "buildah with vfs storage and the chroot run need root"
    else:
        probe = subprocess.run(["buildah", *store_args(), "inspect", "--type", "image", IMAGE],
                               capture_output=True, text=True, check=False)  # fmt: skip
        if probe.returncode != 0:
            problem = f"no image {IMAGE}: run `make image`"
    if problem:
        if required:
            pytest.fail(problem)
        pytest.skip(problem)
    config = json.loads(buildah("inspect", "--type", "image", IMAGE))["OCIv1"]
    ctr = buildah("from", "--pull-never", IMAGE).strip()
    try:
        root = Path(buildah("mount", ctr).strip())
        yield config, root
    finally:
        subprocess.run(["buildah", *store_args(), "rm", ctr], capture_output=True, check=False)


def test_image_runs_as_non_root_with_no_build_or_install_tools(
    image: tuple[dict[str, Any], Path],
) -> None:
    config, root = image
    assert config["config"].get("User") == f"{RUN_AS}:{RUN_AS}"
    passwd = (root / "etc" / "passwd").read_text().splitlines()
    [user] = [line for line in passwd if line.split(":")[2] == str(RUN_AS)]
    assert user.split(":")[6] == "/usr/sbin/nologin", user
    dirs = ("usr/local/bin", "usr/local/sbin", "usr/bin", "usr/sbin", "bin", "sbin",
            "opt/rightsizer/bin")  # fmt: skip
    found = [
        str(path)
        for directory in dirs
        for name in FORBIDDEN_PROGRAMS
        if (path := root / directory / name).exists() or path.is_symlink()
    ]
    assert not found, f"programs that must not be in the image: {found}"
    pip_packages = [str(p) for p in root.glob("**/site-packages/pip") if p.is_dir()]
    pip_packages += [str(p) for p in root.glob("usr/lib/python3/dist-packages/pip")]
    assert not pip_packages, pip_packages
    assert not list(root.glob("usr/lib/gcc*")) and not list(root.glob("usr/libexec/gcc*"))
    assert not (root / "var" / "lib" / "apt").exists() and not (root / "etc" / "apt").exists()
    # Image scanners still find the OS packages.
    assert (root / "var" / "lib" / "dpkg" / "status").stat().st_size > 0
    # The entrypoint is the Deployment's command.
    assert config["config"]["Entrypoint"][:4] == ["kopf", "run", "-m", "rightsizer.handlers.main"]


def test_image_size_is_recorded(image: tuple[dict[str, Any], Path]) -> None:
    _, root = image
    du = subprocess.run(["du", "-sb", "--one-file-system", str(root)], capture_output=True,
                        text=True, check=True)  # fmt: skip
    size_mb = int(du.stdout.split()[0]) / 1e6
    print(f"\n{IMAGE}: {size_mb:.0f} MB unpacked")
    assert 50 < size_mb < MAX_SIZE_MB, size_mb


def image_env(config: dict[str, Any]) -> dict[str, str]:
    return dict(e.split("=", 1) for e in config["config"].get("Env", []))


def kubeconfig_inside(kube: KubeAccess) -> str:
    """The sandbox's API server and admin token, the CA inline: nothing of the host's
    filesystem is visible inside."""
    ca = base64.b64encode(Path(kube.ca_file).read_bytes()).decode()
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "image",
        "clusters": [{"name": "sandbox", "cluster": {"server": kube.server,
                                                     "certificate-authority-data": ca}}],
        "users": [{"name": "admin", "user": {"token": kube.token}}],
        "contexts": [{"name": "image", "context": {"cluster": "sandbox", "user": "admin"}}],
    })  # fmt: skip


#: Runs in a new mount namespace (unshare -m): the image's root bound read-only on a
#: directory of its own, a tmpfs on /tmp, /dev and /proc, then the entrypoint as 65532.
RUNNER = r"""
set -euo pipefail
image_root=$1 kubeconfig=$2; shift 2
top=$(mktemp -d)
mount --make-rprivate /
mount --bind "$image_root" "$top"
mount -t tmpfs -o size=64m,mode=1777 tmpfs "$top/tmp"
mount --rbind /dev "$top/dev"
mount -t proc proc "$top/proc"
mount -o remount,bind,ro "$top"
if chroot "$top" /bin/sh -c ': > /probe' 2>/dev/null; then echo "root is writable" >&2; exit 97; fi
install -m 0600 -o 65532 -g 65532 "$kubeconfig" "$top/tmp/kubeconfig"
cd /
echo "image-runner: read-only root at $top, running as 65532: $*" >&2
exec chroot --userspec=65532:65532 "$top" "$@"
"""


@pytest.mark.k8s
@pytest.mark.prometheus
@pytest.mark.slow
def test_entrypoint_from_the_image_reconciles_a_policy(
    image: tuple[dict[str, Any], Path],
    kube: KubeAccess,
    prometheus: Prometheus,
    k8s_api: ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    config, root = image
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(kubeconfig_inside(kube))
    health_port, metrics_port = free_port(), free_port()
    env = {
        **image_env(config),
        "KUBECONFIG": "/tmp/kubeconfig",
        "RIGHTSIZER_PROMETHEUS_ALLOWED_URLS": prometheus.url,
        "RIGHTSIZER_TICK_SECONDS": "2",
        "RIGHTSIZER_METRICS_PORT": str(metrics_port),
        "RIGHTSIZER_METRICS_ADDRESS": "127.0.0.1",
    }
    # The image's entrypoint; only the probe listens on a free port (the host's network).
    entrypoint = [
        f"--liveness=http://127.0.0.1:{health_port}/healthz" if a.startswith("--liveness=") else a
        for a in config["config"]["Entrypoint"]
    ]
    argv = ["unshare", "--mount", "bash", "-c", RUNNER, "runner", str(root), str(kubeconfig),
            "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()), *entrypoint]  # fmt: skip
    log_path = tmp_path / "image-operator.log"
    load_history(prometheus, namespace, tmp_path)
    apps: Any = client.AppsV1Api(k8s_api)
    custom: Any = client.CustomObjectsApi(k8s_api)
    core: Any = client.CoreV1Api(k8s_api)
    core.create_namespaced_secret(namespace, {
        "metadata": {"name": "prometheus-credentials"}, "type": "rightsizer.dev/prometheus-auth",
        "stringData": {"token": "not-checked-by-the-sandbox"}})  # fmt: skip
    apps.create_namespaced_deployment(namespace, web_deployment(namespace))
    with log_path.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)

    def log() -> str:
        return log_path.read_text(errors="replace")

    def hint() -> str:
        return "\n--- image operator log (tail) ---\n" + "\n".join(log().splitlines()[-40:])

    def started() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the image's entrypoint exited with {proc.returncode}{hint()}")
        return START_MARKER in log()

    try:
        wait_for("the operator from the image to start", started, 90, hint=hint)
        assert "running as 65532" in log()
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL,
            policy(namespace, prometheus.url, "prometheus-credentials"),
        )  # fmt: skip

        def ready() -> Any:
            obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                      "rbac-check")  # fmt: skip
            conditions = {c["type"]: c for c in (obj.get("status") or {}).get("conditions", [])}
            return conditions if "Ready" in conditions else None

        conditions = wait_for("the policy's status", ready, 120, hint=hint)
        assert conditions["Ready"]["status"] == "True", (conditions, hint())
        assert conditions["RecommendationsAvailable"]["status"] == "True", conditions
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "rbac-check")
        wait_for("the policy to be gone", lambda: not policies(custom, namespace), 60, hint=hint)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for name in policies(custom, namespace):
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"finalizers": None}}
            )
    # Nothing was written to the image: the read-only root refused it, or it was never tried.
    assert "Read-only file system" not in log(), hint()
