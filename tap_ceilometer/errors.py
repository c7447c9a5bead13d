"""The errors tap-ceilometer raises, each with a message an operator can act on."""

from __future__ import annotations

from singer_sdk.exceptions import ConfigValidationError, FatalAPIError


class ConfigError(ConfigValidationError):
    """A setting is missing, malformed or contradicts another; raised before any data moves."""

    def __init__(self, message: str) -> None:
        super().__init__(message, errors=[message])


class CredentialsError(FatalAPIError):
    """Keystone or the API refused the credentials, even after one renewal."""


class UnreachableError(FatalAPIError):
    """Keystone or the API could not be reached."""


class ApiError(FatalAPIError):
    """The API answered with an error that retrying cannot fix."""


class RetriesExhaustedError(ApiError):
    """A request kept failing in a way a retry may fix (5xx, a timeout, a body cut short or
    not JSON) on every try; a smaller request may still get through."""


class MalformedApiDataError(FatalAPIError):
    """The API answered with data that is not what it documents."""


class AnswerTooSlowError(Exception):
    """The server kept failing on a page of this size; a smaller page may get through."""

    def __init__(self, limit: int, cause: Exception) -> None:
        super().__init__(f"page of {limit} samples failed: {cause}")
        self.limit = limit
        self.cause = cause
