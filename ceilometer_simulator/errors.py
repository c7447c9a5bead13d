"""The error answers of the Ceilometer API, with the messages its WSME/Pecan stack produces."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer. ``kind`` is ``fault`` (WSME error_message shape) or ``abort`` (Pecan)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "fault",
        faultcode: str = "Client",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.faultcode = faultcode
        self.headers = headers or {}


def client_error(message: str, status: int = 400) -> ApiError:
    """A WSME ClientSideError: ``{"error_message": {"faultcode": "Client", ...}}``."""
    return ApiError(status, message)


def server_error(message: str) -> ApiError:
    """An uncaught exception inside a controller: 500 with faultcode ``Server``."""
    return ApiError(500, message, faultcode="Server")


def not_implemented(message: str) -> ApiError:
    """``ceilometer.NotImplementedError`` from a storage driver: WSME answers 501, ``Server``."""
    return ApiError(501, message, faultcode="Server")


def invalid_input(field: str, value: Any, msg: str = "") -> ApiError:
    """WSME InvalidInput."""
    return client_error(f"Invalid input for field/attribute {field}. Value: '{value}'. {msg}")


def unknown_argument(name: str, msg: str = "") -> ApiError:
    """WSME UnknownArgument."""
    return client_error(f'Unknown argument: "{name}"' + (f": {msg}" if msg else ""))


def missing_argument(name: str) -> ApiError:
    """WSME MissingArgument."""
    return client_error(f'Missing argument: "{name}"')


def entity_not_found(entity: str, ident: str) -> ApiError:
    """Ceilometer EntityNotFound (a 404 in the fault shape)."""
    return client_error(f"{entity} {ident} Not Found", status=404)


def project_not_authorized(project: Any) -> ApiError:
    """Ceilometer ProjectNotAuthorized (401 in the fault shape, spec 2.5)."""
    return client_error(f"Not Authorized to access project {project}", status=401)


def abort(status: int, detail: str = "", headers: dict[str, str] | None = None) -> ApiError:
    """``pecan.abort``: a WebOb HTTP exception, wrapped by ParsableErrorMiddleware (spec 1.0)."""
    return ApiError(status, detail, kind="abort", headers=headers)


GNOCCHI_MESSAGE = (
    "This telemetry installation is configured to use Gnocchi. Please use the Gnocchi API "
    "available on the metric endpoint to retrieve data."
)

KEYSTONE_UNAUTHORIZED: dict[str, Any] = {
    "error": {
        "code": 401,
        "title": "Unauthorized",
        "message": "The request you have made requires authentication.",
    }
}

# WebOb's titles and explanations for the statuses Pecan aborts with.
WEBOB_STATUS: dict[int, tuple[str, str]] = {
    400: (
        "Bad Request",
        "The server could not comply with the request since it is either "
        "malformed or otherwise incorrect.",
    ),
    403: ("Forbidden", "Access was denied to this resource."),
    404: ("Not Found", "The resource could not be found."),
    405: ("Method Not Allowed", "The method {method} is not allowed for this resource."),
    406: (
        "Not Acceptable",
        "The resource could not be generated that was acceptable to your "
        "browser (content of type {accept}).",
    ),
    410: ("Gone", "This resource is no longer available.  No forwarding address is given."),
    415: (
        "Unsupported Media Type",
        "The request media type {content_type} is not supported by this server.",
    ),
}
