"""Prometheus credentials from a policy's Secret, and the rules they must meet (pure).

The operator reads Secrets with its own ServiceAccount, so it must not lend that reach to
whoever writes a policy: only Secrets of the dedicated type ``rightsizer.dev/prometheus-auth``
are used. A Secret's type is immutable, so an existing Secret (a ServiceAccount token, a
registry credential, another application's password) can never become one; whoever
creates a Secret of this type in a namespace already knows what is in it.
ServiceAccount token Secrets are named in their own message, as they were the attack.

Header values are checked before any request: a token with whitespace or a newline, or
with control or non-ASCII characters, is refused with a fixed message (the HTTP library
would otherwise raise an error quoting the header, token included).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rightsizer.names import PROMETHEUS_AUTH_SECRET_TYPE
from rightsizer.sources.errors import SourceProblem

#: The only Secret type the operator takes Prometheus credentials from.
SERVICE_ACCOUNT_TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"


class CredentialsError(ValueError):
    """Credentials that must not be used; ``problem`` says why, in fixed words."""

    def __init__(self, problem: SourceProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True)
class PrometheusCredentials:
    token: str | None = field(default=None, repr=False)
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    ca_bundle_pem: str | None = None


def token_problem(token: str) -> SourceProblem | None:
    """Why ``token`` cannot go into an ``Authorization: Bearer`` header, if it cannot."""
    if any(ch.isspace() for ch in token):
        return SourceProblem.TOKEN_WHITESPACE
    if any(not "\x21" <= ch <= "\x7e" for ch in token):
        return SourceProblem.TOKEN_CHARACTERS
    return None


def basic_auth_problem(username: str, password: str) -> SourceProblem | None:
    """Why a username and password cannot be used for basic auth, if they cannot."""
    if ":" in username or any(
        not "\x20" <= ch <= "\x7e" for ch in username + password
    ):  # fmt: skip
        return SourceProblem.BASIC_AUTH_CHARACTERS
    return None


def credentials_from_secret(secret_type: str, data: Mapping[str, bytes]) -> PrometheusCredentials:
    """The credentials in a Secret of type ``secret_type`` with (decoded) ``data``;
    raises ``CredentialsError``. Keys: ``token`` (bearer) or ``username`` and
    ``password``; optional ``ca.crt``."""
    if secret_type == SERVICE_ACCOUNT_TOKEN_SECRET_TYPE:
        raise CredentialsError(SourceProblem.SECRET_SERVICE_ACCOUNT_TOKEN)
    if secret_type != PROMETHEUS_AUTH_SECRET_TYPE:
        raise CredentialsError(SourceProblem.SECRET_NOT_MARKED)
    try:
        text = {k: v.decode("utf-8") for k, v in data.items()}
    except UnicodeDecodeError:
        raise CredentialsError(SourceProblem.SECRET_NOT_TEXT) from None
    token = text.get("token") or None
    basic = None
    if "username" in text:
        basic = (text["username"], text.get("password", ""))
    ca = text.get("ca.crt") or None
    if token is None and basic is None and ca is None:
        raise CredentialsError(SourceProblem.SECRET_NO_CREDENTIALS)
    problem = (token_problem(token) if token is not None else None) or (
        basic_auth_problem(*basic) if basic is not None else None
    )
    if problem is not None:
        raise CredentialsError(problem)
    return PrometheusCredentials(token, basic, ca)
