"""Credentials only from Secrets marked for the operator, with header-safe values."""

from __future__ import annotations

import pytest

from rightsizer.names import PROMETHEUS_AUTH_SECRET_TYPE
from rightsizer.sources.credentials import (
    CredentialsError,
    PrometheusCredentials,
    credentials_from_secret,
    token_problem,
)
from rightsizer.sources.errors import SourceProblem as P

MARKED = PROMETHEUS_AUTH_SECRET_TYPE


def test_a_marked_secret_gives_its_credentials() -> None:
    creds = credentials_from_secret(MARKED, {"token": b"abc.DEF-123_~+/="})
    assert creds == PrometheusCredentials(token="abc.DEF-123_~+/=")
    basic = credentials_from_secret(MARKED, {"username": b"u", "password": b"p w", "ca.crt": b"C"})
    assert basic == PrometheusCredentials(basic_auth=("u", "p w"), ca_bundle_pem="C")
    assert "abc" not in repr(creds) and "p w" not in repr(basic)


@pytest.mark.parametrize(
    ("secret_type", "data", "problem"),
    [
        ("kubernetes.io/service-account-token", {"token": b"eyJ"}, P.SECRET_SERVICE_ACCOUNT_TOKEN),
        ("Opaque", {"token": b"abc"}, P.SECRET_NOT_MARKED),
        ("", {"token": b"abc"}, P.SECRET_NOT_MARKED),
        ("kubernetes.io/basic-auth", {"username": b"u", "password": b"p"}, P.SECRET_NOT_MARKED),
        ("Rightsizer.dev/prometheus-auth", {"token": b"abc"}, P.SECRET_NOT_MARKED),
        (MARKED, {}, P.SECRET_NO_CREDENTIALS),
        (MARKED, {"token": b"FILE-SECRET-1\n"}, P.TOKEN_WHITESPACE),
        (MARKED, {"token": b" abc"}, P.TOKEN_WHITESPACE),
        (MARKED, {"token": b"a\tb"}, P.TOKEN_WHITESPACE),
        (MARKED, {"token": b"a\r\nX-Injected: 1"}, P.TOKEN_WHITESPACE),
        (MARKED, {"token": "jeton-é".encode()}, P.TOKEN_CHARACTERS),
        (MARKED, {"token": b"a\x00b"}, P.TOKEN_CHARACTERS),
        (MARKED, {"token": b"\xff\xfe"}, P.SECRET_NOT_TEXT),
        (MARKED, {"username": b"a:b", "password": b"p"}, P.BASIC_AUTH_CHARACTERS),
        (MARKED, {"username": b"u", "password": b"p\n"}, P.BASIC_AUTH_CHARACTERS),
    ],
)  # fmt: skip
def test_refused_secrets_name_a_fixed_problem(
    secret_type: str, data: dict[str, bytes], problem: P
) -> None:
    with pytest.raises(CredentialsError) as err:
        credentials_from_secret(secret_type, data)
    assert err.value.problem is problem
    assert str(err.value) == problem.value  # nothing of the values


def test_a_token_is_checked_before_any_header_is_built() -> None:
    assert token_problem("abc") is None
    assert token_problem("abc\n") is P.TOKEN_WHITESPACE
