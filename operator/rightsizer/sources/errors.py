"""Errors of usage sources, in words a user can act on."""


class SourceError(RuntimeError):
    """A source could not deliver complete data; nothing partial is used."""


class SourceUnavailableError(SourceError):
    """The source cannot be reached (down, DNS, TLS, timeouts after retries)."""


class SourceRejectedError(SourceError):
    """The source refused the request (bad credentials, bad query, limits)."""
