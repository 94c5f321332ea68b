"""The webhook's certificates and settings (``actuation/webhook_tls.py``,
``handlers/webhook.py``): names from the configuration, a CA that verifies the serving
certificate for exactly those names, a patch that touches ``caBundle`` only. Against the
real API server: ``tests/integration/test_admission_webhook.py``."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import stat

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from rightsizer.actuation.webhook_tls import (
    VALIDITY,
    ca_bundle_patch,
    hosts_of,
    make_certificate,
    write,
)
from rightsizer.handlers.webhook import WebhookSettings, webhook_settings_from_env

NOW = datetime.datetime(2026, 11, 30, 20, 0, tzinfo=datetime.UTC)


def test_hosts_are_the_services_names_or_the_urls_host() -> None:
    called = {"name": "rightsizer-webhook", "namespace": "ops", "path": "/size-pods"}
    service = {"webhooks": [{"name": "a", "clientConfig": {"service": called}}]}
    assert hosts_of(service) == ["rightsizer-webhook.ops.svc",
                                 "rightsizer-webhook.ops.svc.cluster.local"]  # fmt: skip
    url = {"webhooks": [
        {"name": "a", "clientConfig": {"url": "https://127.0.0.1:9443/x"}},
        {"name": "b", "clientConfig": {"url": "https://127.0.0.1:9443/y"}},
    ]}  # fmt: skip
    assert hosts_of(url) == ["127.0.0.1"]
    assert hosts_of({"webhooks": []}) == []


def test_the_ca_signs_a_serving_certificate_for_exactly_those_names() -> None:
    made = make_certificate(["webhook.ops.svc", "127.0.0.1"], NOW)
    ca = x509.load_pem_x509_certificate(made.ca_pem)
    cert = x509.load_pem_x509_certificate(made.cert_pem)
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["webhook.ops.svc"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.not_valid_before_utc < NOW < cert.not_valid_after_utc
    assert cert.not_valid_after_utc == NOW + VALIDITY
    assert b"PRIVATE KEY" in made.key_pem and b"PRIVATE KEY" not in made.cert_pem
    # A new CA every time (a restart makes new ones).
    assert make_certificate(["x"], NOW).ca_pem != made.ca_pem
    with pytest.raises(ValueError, match="no host"):
        make_certificate([], NOW)


def test_the_key_is_written_where_only_its_owner_may_read_it() -> None:
    cert, key = write(make_certificate(["x"], NOW))
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert cert.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")


def test_the_patch_sets_each_webhooks_ca_bundle_and_nothing_else() -> None:
    webhooks = [{"name": "pods.rightsizer.dev", "failurePolicy": "Ignore",
                 "clientConfig": {"service": {"name": "s"}}}]  # fmt: skip
    bundle = base64.b64encode(b"PEM").decode()
    assert ca_bundle_patch(webhooks, b"PEM") == {
        "webhooks": [{"name": "pods.rightsizer.dev", "clientConfig": {"caBundle": bundle}}]
    }


def test_the_webhook_is_off_unless_a_port_is_set() -> None:
    assert webhook_settings_from_env({}) is None
    assert webhook_settings_from_env({"RIGHTSIZER_WEBHOOK_PORT": "0"}) is None
    assert webhook_settings_from_env({"RIGHTSIZER_WEBHOOK_PORT": "9443"}) == WebhookSettings(9443)
    on = webhook_settings_from_env({
        "RIGHTSIZER_WEBHOOK_PORT": "9443", "RIGHTSIZER_WEBHOOK_ADDRESS": "0.0.0.0",
        "RIGHTSIZER_WEBHOOK_CONFIGURATION": "rs-helm-rightsizer",
    })  # fmt: skip
    assert on == WebhookSettings(9443, "0.0.0.0", "rs-helm-rightsizer")
    for bad in ("https", "70000", "-1"):
        with pytest.raises(ValueError, match="RIGHTSIZER_WEBHOOK_PORT"):
            webhook_settings_from_env({"RIGHTSIZER_WEBHOOK_PORT": bad})
