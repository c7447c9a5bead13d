"""The errors tap-ceilometer raises, each with a message an operator can act on."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from singer_sdk.exceptions import (
    AbortedSyncPausedException,
    ConfigValidationError,
    FatalAPIError,
    MaxRecordsLimitException,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


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

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body  # the decoded error answer, for a client that reads its details


class RetriesExhaustedError(ApiError):
    """A request kept failing in a way a retry may fix (5xx, a timeout, a body cut short or
    not JSON) on every try; a smaller request may still get through."""


class MalformedApiDataError(FatalAPIError):
    """The API answered with data that is not what it documents."""


class BatchStorageError(Exception):
    """The BATCH files cannot be written where batch_config's storage says."""


class AnswerTooSlowError(Exception):
    """The server kept failing on a page of this size; a smaller page may get through."""

    def __init__(self, limit: int, cause: Exception) -> None:
        super().__init__(f"page of {limit} samples failed: {cause}")
        self.limit = limit
        self.cause = cause


# The failures an operator can act on from their sentence alone: no traceback for these.
EXPECTED_FAILURES: tuple[type[Exception], ...] = (
    ConfigError,
    CredentialsError,
    UnreachableError,
    ApiError,
    MalformedApiDataError,
    BatchStorageError,
)
# How singer-sdk ends a sync on purpose (`--test` stops each stream after one record).
_PLANNED_STOPS: tuple[type[Exception], ...] = (
    MaxRecordsLimitException,
    AbortedSyncPausedException,
)


def is_expected(failure: BaseException | None) -> bool:
    """Whether `failure` is one the tap reports in one sentence (or a planned stop)."""
    return isinstance(failure, EXPECTED_FAILURES + _PLANNED_STOPS) or (
        failure is not None and isinstance(failure.__cause__, _PLANNED_STOPS)
    )


@contextmanager
def one_sentence(logger: logging.Logger) -> Iterator[None]:
    """An expected failure ends the command with its sentence and exit code 1, no traceback
    (at log level DEBUG the traceback follows); anything else propagates as it is."""
    try:
        yield
    except EXPECTED_FAILURES as failure:
        if logger.isEnabledFor(logging.DEBUG):
            raise
        for sentence in getattr(failure, "errors", None) or [str(failure)]:
            logger.error("%s", sentence)
        raise SystemExit(1) from None
