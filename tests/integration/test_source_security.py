"""Issue 11's attacks on a policy's Prometheus source, replayed against the real
kube-apiserver and the operator (a subprocess), with listeners of the test's own on
127.0.0.1 that record every request they get.

The tenant writes policies in its namespace and cannot read its Secrets; the operator reads
them with its own rights. Each attack must fail: no request to a URL off the install's
allow-list, no credentials from a Secret not marked for the operator (or from a
ServiceAccount token), no token with a newline sent or shown, and nothing of a token or of
a response body in the status, the Events or the operator's log.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from rightsizer.sources.errors import SourceProblem
from tests.integration.test_operator_e2e import (
    GROUP,
    PLURAL,
    VERSION,
    Operator,
    condition,
    get_policy,
    install_crd,
    policy_body,
    stop_after_deleting_policies,
)
from tests.integration.waiting import free_port, wait_for

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

NS = "team-a"
BODY = "INTERNAL-ONLY-PAGE secret=hunter2 "  # what an internal page would show
MARKED_TOKEN = "MARKED-TOKEN-7f3a"
NEWLINE_TOKEN = "FILE-SECRET-91c2\n"
OPAQUE_TOKEN = "OPAQUE-TOKEN-55d0"
SA_TOKEN = "SA-TOKEN-0b8e"


class Listener:
    """A tiny HTTP server that records every request and answers with an internal page."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                listener.requests.append({
                    "method": self.command, "path": self.path, "headers": dict(self.headers),
                    "body": self.rfile.read(length).decode(errors="replace"),
                })  # fmt: skip
                # An internal page that also echoes the credentials it was sent.
                sent = self.headers.get("Authorization", "")
                data = (BODY * 5 + f"you sent: {sent} " + BODY * 5).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _record  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def paths(self) -> list[str]:
        return [str(r["path"]) for r in list(self.requests)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def listeners() -> Iterator[tuple[Listener, Listener]]:
    """One listener under the allow-list (``/allowed`` on its port), one off it."""
    allowed, other = Listener(), Listener()
    yield allowed, other
    allowed.stop()
    other.stop()


@pytest.fixture(scope="module")
def team_a(k8s_api: ApiClient, kubeconfig: str) -> Iterator[ApiClient]:
    install_crd(kubeconfig)
    core = client.CoreV1Api(k8s_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    secrets: list[dict[str, Any]] = [
        {"metadata": {"name": "marked"}, "type": "rightsizer.dev/prometheus-auth",
         "stringData": {"token": MARKED_TOKEN}},
        {"metadata": {"name": "newline"}, "type": "rightsizer.dev/prometheus-auth",
         "stringData": {"token": NEWLINE_TOKEN}},
        {"metadata": {"name": "opaque"}, "type": "Opaque", "stringData": {"token": OPAQUE_TOKEN}},
        {"metadata": {"name": "editor-token",
                      "annotations": {"kubernetes.io/service-account.name": "editor"}},
         "type": "kubernetes.io/service-account-token", "stringData": {"token": SA_TOKEN}},
    ]  # fmt: skip
    core.create_namespaced_service_account(NS, {"metadata": {"name": "editor"}})
    for secret in secrets:
        core.create_namespaced_secret(NS, secret)
    yield k8s_api
    custom = client.CustomObjectsApi(k8s_api)
    for item in custom.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)["items"]:
        custom.patch_namespaced_custom_object(  # the operator may be gone: drop finalizers
            GROUP, VERSION, NS, PLURAL, item["metadata"]["name"], {"metadata": {"finalizers": None}}
        )
    core.delete_namespace(NS, propagation_policy="Background")


@pytest.fixture(scope="module")
def operator(
    team_a: ApiClient, kubeconfig: str, listeners: tuple[Listener, Listener],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:  # fmt: skip
    allowed, _ = listeners
    op = Operator(
        kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log",
        [f"{allowed.url}/allowed"], metrics_port=free_port(),
    )  # fmt: skip
    yield op
    stop_after_deleting_policies(op, team_a, NS)


def create_policy(api: ApiClient, name: str, url: str, secret: str | None = None) -> None:
    auth = {"authSecretRef": {"name": secret}} if secret else {}
    body = policy_body(name, url, NS, history="1h", step="1m", source=auth)
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)


def source_condition(api: ApiClient, name: str, operator: Operator) -> dict[str, Any]:
    """The policy's SourceUnavailable condition once the operator has reconciled it."""
    found: dict[str, Any] = wait_for(
        f"a SourceUnavailable condition on {name}",
        lambda: (
            (c := condition(get_policy(api, name, NS), "SourceUnavailable")).get("status") == "True"
            and c
        ),
        hint=lambda: "\n" + operator.log()[-3000:],
    )
    return found


def events_of(api: ApiClient, name: str) -> list[Any]:
    return list(
        client.CoreV1Api(api)
        .list_namespaced_event(NS, field_selector=f"involvedObject.name={name}")
        .items
    )


def tenant_view(api: ApiClient) -> str:
    """Everything about the policies a tenant can read: their statuses and Events."""
    custom = client.CustomObjectsApi(api)
    policies = custom.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)["items"]
    events = client.CoreV1Api(api).list_namespaced_event(NS).items
    return json.dumps(
        [p.get("status") for p in policies]
        + [[e.reason, e.message] for e in events if e.involved_object.kind == "RightSizePolicy"]
    )


REFUSALS = [
    # (policy, URL path on a listener or full URL, Secret, problem)
    ("exfiltrate", "other:/collect", "marked", SourceProblem.URL_NOT_ALLOWED),
    ("internal-page", "other:/internal/admin", None, SourceProblem.URL_NOT_ALLOWED),
    ("own-metrics", "metrics:", None, SourceProblem.URL_NOT_ALLOWED),
    ("unmarked", "allowed:/allowed/unmarked", "opaque", SourceProblem.SECRET_NOT_MARKED),
    ("sa-token", "allowed:/allowed/sa-token", "editor-token",
     SourceProblem.SECRET_SERVICE_ACCOUNT_TOKEN),
    ("newline", "allowed:/allowed/newline", "newline", SourceProblem.TOKEN_WHITESPACE),
    ("missing", "allowed:/allowed/missing", "no-such-secret", SourceProblem.SECRET_UNREADABLE),
]  # fmt: skip


def test_the_issue_s_attacks_get_no_request_and_no_echo(
    operator: Operator, team_a: ApiClient, listeners: tuple[Listener, Listener]
) -> None:
    allowed, other = listeners
    bases = {"allowed": allowed.url, "other": other.url,
             "metrics": f"http://127.0.0.1:{operator.metrics_port}"}  # fmt: skip
    for name, where, secret, _ in REFUSALS:
        base, _, path = where.partition(":")
        create_policy(team_a, name, bases[base] + path, secret)
    # The control: a marked Secret and an allowed URL do get requests, with the token, so
    # the listener records what the operator sends (the absences below can fail).
    create_policy(team_a, "echo", f"{allowed.url}/allowed/echo", "marked")

    for name, _, _, problem in REFUSALS:
        cond = source_condition(team_a, name, operator)
        assert cond["reason"] == "SourceRefused", (name, cond)
        assert cond["message"] == problem.value, (name, cond)
        wait_for(  # Kopf posts Events in the background
            f"a SourceRefused Event on {name}",
            lambda n=name: any(e.reason == "SourceRefused" for e in events_of(team_a, n)),  # type: ignore[misc]
        )
    echo = wait_for(
        "the echo policy's SourceUnavailable condition with the JSON problem",
        lambda: (
            (c := condition(get_policy(team_a, "echo", NS), "SourceUnavailable")).get("message")
            == SourceProblem.NOT_PROMETHEUS_JSON.value
            and c
        ),
        hint=lambda: "\n" + operator.log()[-3000:],
    )
    assert echo["reason"] == "SourceError"
    wait_for(
        "a SourceUnavailable Event on echo",
        lambda: any(e.reason == "SourceUnavailable" for e in events_of(team_a, "echo")),
    )

    # Nothing was sent off the allow-list, nor with a refused Secret.
    assert other.requests == []
    assert all(p.startswith("/allowed/echo/") for p in allowed.paths()), allowed.paths()
    sent = allowed.requests[0]
    assert sent["method"] == "POST"
    assert sent["headers"]["Authorization"] == f"Bearer {MARKED_TOKEN}"
    # The token of the ServiceAccount Secret, as the API server holds it (its controller
    # may have filled in a real one).
    sa = client.CoreV1Api(team_a).read_namespaced_secret("editor-token", NS)
    sa_token = base64.b64decode(sa.data["token"]).decode()
    tokens = [MARKED_TOKEN, NEWLINE_TOKEN.strip(), OPAQUE_TOKEN, sa_token]
    for request in allowed.requests:
        for token in tokens[1:]:
            assert token not in json.dumps(request), request

    # Nothing of a token or of a body in what the tenant reads, nor in the operator's log.
    view, log = tenant_view(team_a), operator.log()
    for secret in [*tokens, "hunter2", "INTERNAL-ONLY", "rightsizer_", "python_gc"]:
        assert secret not in view, secret
    for secret in [*tokens, "hunter2", "INTERNAL-ONLY"]:
        assert secret not in log, secret


def test_the_fragment_trick_is_rejected_at_admission(
    team_a: ApiClient, listeners: tuple[Listener, Listener]
) -> None:
    _, other = listeners
    with pytest.raises(ApiException) as err:
        create_policy(team_a, "fragment", f"{other.url}/internal/admin#")
    assert err.value.status == 422
    assert "must not contain a fragment (#)" in json.loads(err.value.body)["message"]
    assert other.requests == []


def test_operator_log_names_its_allow_list(operator: Operator) -> None:
    assert "allowed Prometheus endpoints: http://127.0.0.1:" in operator.log()


def test_cli_report_never_prints_a_token(
    listeners: tuple[Listener, Listener], tmp_path: Path
) -> None:
    """``rightsizer report`` keeps detail on stderr for the person who runs it, but never
    a token, even one the endpoint echoes (a token file's final newline is stripped)."""
    allowed, _ = listeners
    token_file = tmp_path / "token"
    token_file.write_text(MARKED_TOKEN + "\n")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "rightsizer"), "report", "--prometheus",
         f"{allowed.url}/allowed/cli", "--prometheus-token-file", str(token_file),
         "--retries", "0"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "not Prometheus JSON" in done.stderr
    assert allowed.requests[-1]["headers"]["Authorization"] == f"Bearer {MARKED_TOKEN}"
    assert MARKED_TOKEN[:10] not in done.stderr + done.stdout  # not even a cut-off piece


def test_a_bad_allow_list_stops_the_operator_at_startup(kubeconfig: str, tmp_path: Path) -> None:
    log = tmp_path / "operator.log"
    env = {**os.environ, "KUBECONFIG": kubeconfig,
           "RIGHTSIZER_METRICS_PORT": "0",
           "RIGHTSIZER_PROMETHEUS_ALLOWED_URLS": "http://ok:9090,http://p:9090/#"}  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "kopf"), "run", "-m", "rightsizer.handlers.main",
             "--standalone", "-A"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for("the operator to exit", lambda: proc.poll() is not None, 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    text = log.read_text()
    assert "RIGHTSIZER_PROMETHEUS_ALLOWED_URLS: allow-list entry 'http://p:9090/#'" in text
    assert "rightsizer operator started" not in text
