"""Certificates, keys, a static token and the kubeconfig, made with openssl.

Layout of ``<state>/pki``:

- ``ca.crt/key``: the cluster CA; signs ``server`` and ``admin``.
- ``server.crt/key``: serving certificate of kube-apiserver, kwok and
  metrics-server (SANs 127.0.0.1, localhost, kubernetes.default.svc...,
  metrics-server.kube-system.svc).
- ``admin.crt/key``: client certificate ``CN=admin, O=system:masters``, used
  by the kubeconfig and by every component.
- ``front-proxy-ca.crt/key`` and ``front-proxy-client.crt/key``: API
  aggregation (the apiserver's ``--requestheader-*`` / ``--proxy-client-*``).
- ``sa.key/pub``: service-account token signing keys.
- ``token`` and ``tokens.csv``: a static bearer token for user ``admin``
  (group system:masters), for clients that prefer a token.

Keys are ECDSA P-256: generating them takes milliseconds.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

from .config import Config

SERVER_SANS = (
    "IP:127.0.0.1",
    "IP:10.96.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
    "DNS:metrics-server.kube-system.svc",
)

OPENSSL = "openssl"


def _run(*args: str, cwd: Path) -> None:
    proc = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{proc.stderr}")


def _key(cwd: Path, name: str) -> None:
    _run(
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        f"{name}.key",
        cwd=cwd,
    )
    (cwd / f"{name}.key").chmod(0o600)


def _ca(cwd: Path, name: str, cn: str) -> None:
    _key(cwd, name)
    _run(
        "req",
        "-x509",
        "-new",
        "-key",
        f"{name}.key",
        "-out",
        f"{name}.crt",
        "-days",
        "3650",
        "-subj",
        f"/CN={cn}",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        cwd=cwd,
    )


def _leaf(
    cwd: Path, name: str, ca: str, subject: str, usage: str, sans: tuple[str, ...] = ()
) -> None:
    _key(cwd, name)
    _run("req", "-new", "-key", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=cwd)
    ext = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        f"extendedKeyUsage={usage}",
    ]
    if sans:
        ext.append("subjectAltName=" + ",".join(sans))
    (cwd / f"{name}.ext").write_text("\n".join(ext) + "\n")
    _run(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.crt",
        "-CAkey",
        f"{ca}.key",
        "-set_serial",
        str(secrets.randbits(63)),
        "-days",
        "3650",
        "-extfile",
        f"{name}.ext",
        "-out",
        f"{name}.crt",
        cwd=cwd,
    )
    (cwd / f"{name}.csr").unlink()
    (cwd / f"{name}.ext").unlink()


def ensure_pki(cfg: Config) -> None:
    """Create the PKI once; reuse it while it is complete."""
    pki = cfg.pki
    wanted = [
        "ca.crt",
        "server.crt",
        "admin.crt",
        "front-proxy-ca.crt",
        "front-proxy-client.crt",
        "sa.key",
        "sa.pub",
        "token",
        "tokens.csv",
    ]
    if all((pki / f).is_file() for f in wanted):
        return
    pki.mkdir(parents=True, exist_ok=True)
    for old in pki.iterdir():
        old.unlink()
    _ca(pki, "ca", "rightsizer-sandbox-ca")
    _leaf(
        pki, "server", "ca", "/CN=rightsizer-sandbox-server", "serverAuth,clientAuth", SERVER_SANS
    )
    _leaf(pki, "admin", "ca", "/O=system:masters/CN=admin", "clientAuth")
    _ca(pki, "front-proxy-ca", "rightsizer-sandbox-front-proxy-ca")
    _leaf(pki, "front-proxy-client", "front-proxy-ca", "/CN=front-proxy-client", "clientAuth")
    _key(pki, "sa")
    _run("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    token = secrets.token_hex(24)
    (pki / "token").write_text(token + "\n")
    (pki / "tokens.csv").write_text(f'{token},admin,admin,"system:masters"\n')
    (pki / "token").chmod(0o600)
    (pki / "tokens.csv").chmod(0o600)


def token(cfg: Config) -> str:
    return (cfg.pki / "token").read_text().strip()


def write_kubeconfig(cfg: Config, path: Path | None = None) -> Path:
    """Write a kubeconfig (context ``rightsizer-sandbox``, admin client cert)."""
    path = path or cfg.kubeconfig
    pki = cfg.pki
    text = f"""apiVersion: v1
kind: Config
clusters:
- name: rightsizer-sandbox
  cluster:
    server: {cfg.apiserver_url}
    certificate-authority: {pki / "ca.crt"}
users:
- name: admin
  user:
    client-certificate: {pki / "admin.crt"}
    client-key: {pki / "admin.key"}
contexts:
- name: rightsizer-sandbox
  context:
    cluster: rightsizer-sandbox
    user: admin
    namespace: default
current-context: rightsizer-sandbox
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path
