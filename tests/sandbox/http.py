"""Small stdlib HTTP(S) helpers: readiness probes and a minimal Kubernetes REST client."""

from __future__ import annotations

import json
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from .config import Config


class NotReadyError(RuntimeError):
    """A component did not become ready in time."""


def insecure_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def admin_context(cfg: Config) -> ssl.SSLContext:
    """TLS context trusting the sandbox CA and presenting the admin client cert."""
    ctx = ssl.create_default_context(cafile=str(cfg.pki / "ca.crt"))
    ctx.load_cert_chain(str(cfg.pki / "admin.crt"), str(cfg.pki / "admin.key"))
    return ctx


def request(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    """Return (status, body); HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wait_until(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    *,
    interval: float = 0.2,
    alive: Callable[[], str | None] | None = None,
) -> float:
    """Poll ``check`` until it returns True; return the seconds it took.

    ``alive`` returns an error message when the process being waited for has
    died, so that a crash fails at once instead of at the timeout.
    """
    start = time.monotonic()
    last_error = ""
    while True:
        try:
            if check():
                return time.monotonic() - start
        except (OSError, ValueError, KeyError, ssl.SSLError) as err:
            last_error = f"{type(err).__name__}: {err}"
        if alive is not None:
            dead = alive()
            if dead:
                raise NotReadyError(f"{what}: {dead}")
        if time.monotonic() - start > timeout:
            raise NotReadyError(
                f"{what} not ready after {timeout:.0f}s"
                + (f" (last error: {last_error})" if last_error else "")
            )
        time.sleep(interval)


def http_ok(url: str, context: ssl.SSLContext | None = None, expect: bytes | None = None) -> bool:
    status, body = request(url, context=context, timeout=2.0)
    return status == 200 and (expect is None or expect in body)


class KubeRest:
    """Just enough of the Kubernetes API for setting the sandbox up (stdlib only)."""

    def __init__(self, cfg: Config) -> None:
        self.base = cfg.apiserver_url
        self.context = admin_context(cfg)

    def call(
        self, method: str, path: str, obj: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        body = json.dumps(obj).encode() if obj is not None else None
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        status, raw = request(
            self.base + path,
            method=method,
            body=body,
            headers=headers,
            context=self.context,
            timeout=10.0,
        )
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw.decode(errors="replace")
        return status, data

    def get(self, path: str) -> Any:
        status, data = self.call("GET", path)
        if status != 200:
            raise KeyError(f"GET {path}: {status} {data}")
        return data

    def exists(self, path: str) -> bool:
        return self.call("GET", path)[0] == 200

    def apply(self, collection: str, obj: dict[str, Any]) -> None:
        """Create ``obj`` in ``collection``, or replace it if it exists."""
        name = obj["metadata"]["name"]
        status, data = self.call("POST", collection, obj)
        if status == 409:
            current = self.get(f"{collection}/{urllib.parse.quote(name)}")
            obj = dict(obj)
            obj["metadata"] = dict(
                obj["metadata"], resourceVersion=current["metadata"]["resourceVersion"]
            )
            status, data = self.call("PUT", f"{collection}/{urllib.parse.quote(name)}", obj)
        if status not in (200, 201):
            raise RuntimeError(f"apply {collection}/{name}: {status} {data}")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
