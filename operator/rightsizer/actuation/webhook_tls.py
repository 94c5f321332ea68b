"""The admission webhook's TLS: a CA and a serving certificate made at start-up, and the
CA put into the operator's own MutatingWebhookConfiguration (``docs/design.md``,
"Admission webhook").

The operator may read and patch that one configuration only (RBAC ``resourceNames``),
never create one: the manifests ship it with an empty ``caBundle``, and this module fills
in nothing but the ``caBundle`` of its webhooks. The names the certificate is valid for
come from the configuration itself (a Service's DNS names, or a URL's host), so the two
cannot disagree. Private keys stay in a directory of the process's own (mode 0700, under
``TMPDIR``: the pod's emptyDir, the root filesystem being read-only) and never leave it.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import tempfile
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client
from kubernetes.client import ApiClient

#: Valid this long; a restart makes new ones (and patches the configuration again).
VALIDITY = datetime.timedelta(days=365)
#: Valid from a little before now: the API server's clock may be behind ours.
BACKDATE = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class ServingCertificate:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def hosts_of(configuration: Mapping[str, Any]) -> list[str]:
    """The names the webhooks of a (Mutating)WebhookConfiguration call: a Service's
    ``<name>.<namespace>.svc`` (and its cluster-local form), or a URL's host."""
    hosts: list[str] = []
    for webhook in configuration.get("webhooks") or []:
        config = webhook.get("clientConfig") or {}
        service = config.get("service")
        if service:
            base = f"{service.get('name')}.{service.get('namespace')}.svc"
            hosts += [base, f"{base}.cluster.local"]
        elif config.get("url"):
            host = urllib.parse.urlsplit(str(config["url"])).hostname
            if host:
                hosts.append(host)
    return list(dict.fromkeys(hosts))


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def make_certificate(hosts: Sequence[str], now: datetime.datetime) -> ServingCertificate:
    """A new CA (ECDSA P-256) and a serving certificate it signs for ``hosts``."""
    if not hosts:
        raise ValueError("no host to make a certificate for")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rightsizer webhook CA")])
    start, end = now - BACKDATE, now + VALIDITY
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=False, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=True, crl_sign=True, encipher_only=False,
                          decipher_only=False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    return ServingCertificate(
        ca_pem=ca.public_bytes(serialization.Encoding.PEM),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def write(certificate: ServingCertificate) -> tuple[Path, Path]:
    """The certificate and key files, in a new directory only this user may read."""
    directory = Path(tempfile.mkdtemp(prefix="rightsizer-webhook-"))
    cert, key = directory / "tls.crt", directory / "tls.key"
    key.touch(mode=0o600)
    key.write_bytes(certificate.key_pem)
    cert.write_bytes(certificate.cert_pem)
    return cert, key


def read_configuration(api: ApiClient, name: str) -> dict[str, Any]:
    admission: Any = client.AdmissionregistrationV1Api(api)
    serialize: Any = api.sanitize_for_serialization
    return dict(serialize(admission.read_mutating_webhook_configuration(name)))


def ca_bundle_patch(webhooks: Iterable[Mapping[str, Any]], ca_pem: bytes) -> dict[str, Any]:
    """A strategic-merge patch that sets every webhook's ``caBundle`` (merged by name) and
    nothing else."""
    bundle = base64.b64encode(ca_pem).decode("ascii")
    return {
        "webhooks": [
            {"name": str(w.get("name")), "clientConfig": {"caBundle": bundle}} for w in webhooks
        ]
    }


def patch_ca_bundle(api: ApiClient, name: str, webhooks: Iterable[Mapping[str, Any]],
                    ca_pem: bytes) -> None:  # fmt: skip
    admission: Any = client.AdmissionregistrationV1Api(api)
    admission.patch_mutating_webhook_configuration(
        name,
        ca_bundle_patch(webhooks, ca_pem),
        _content_type="application/strategic-merge-patch+json",
    )
