"""The errors tap-ceilometer raises, each with a message an operator can act on."""

from __future__ import annotations

from singer_sdk.exceptions import ConfigValidationError, FatalAPIError, RetriableAPIError


class ConfigError(ConfigValidationError):
    """A setting is missing, malformed or contradicts another; raised before any data moves."""

    def __init__(self, message: str) -> None:
        super().__init__(message, errors=[message])


class CredentialsError(FatalAPIError):
    """Keystone or Ceilometer refused the credentials, even after one renewal."""


class UnreachableError(FatalAPIError):
    """Keystone or Ceilometer could not be reached."""


class ApiError(FatalAPIError):
    """Ceilometer answered with an error that retrying cannot fix."""


class MalformedApiDataError(FatalAPIError):
    """Ceilometer answered with data that is not what its API v2 sends."""


class AnswerTooSlowError(Exception):
    """The server kept failing on a page of this size; a smaller page may get through."""

    def __init__(self, limit: int, cause: Exception) -> None:
        super().__init__(f"page of {limit} samples failed: {cause}")
        self.limit = limit
        self.cause = cause


class TokenRenewedError(RetriableAPIError):
    """Ceilometer refused the token (expired or revoked); it was dropped, so try again now."""
