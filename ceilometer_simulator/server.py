"""The HTTP server: Ceilometer at the root, Keystone under /identity, admin under /_sim."""

from __future__ import annotations

import contextlib
import dataclasses
import html
import http.server
import json
import socket
import ssl
import threading
import time
import urllib.parse
from collections import Counter, deque
from typing import TYPE_CHECKING, Any

import msgspec

from ceilometer_simulator.api import CeilometerApi, Request, Response, json_response
from ceilometer_simulator.errors import (
    KEYSTONE_UNAUTHORIZED,
    WEBOB_STATUS,
    ApiError,
)
from ceilometer_simulator.faults import FaultRule, Faults
from ceilometer_simulator.generator import CloudSpec
from ceilometer_simulator.keystone import (
    IDENTITY_PREFIX,
    AuthFailedError,
    BadRequestError,
    ForbiddenError,
    Identities,
    Keystone,
    NotFoundError,
)
from ceilometer_simulator.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

ADMIN_PREFIX = "/_sim"
# Extra catalog interfaces are served under these prefixes so a test can see which one a
# client picked; the public endpoint is the root.
INTERFACE_PREFIXES = {"internal": "/internal", "admin": "/admin"}
MAX_RECORDED = 100_000


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """One request as the simulator saw it."""

    method: str
    path: str
    query: str
    json: Any
    status: int
    interface: str = "public"
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def params(self) -> dict[str, list[str]]:
        """The query string parsed into lists of values."""
        return urllib.parse.parse_qs(self.query, keep_blank_values=True)


def _keystone_error(status: int, title: str, message: str) -> Response:
    return json_response({"error": {"code": status, "title": title, "message": message}}, status)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ceilometer-simulator"
    sys_version = ""
    server: _Server

    def version_string(self) -> str:
        """The Server header."""
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET  # noqa: N815

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        sim = self.server.simulator
        split = urllib.parse.urlsplit(self.path)
        path = split.path or "/"
        body = self._read_body()
        if path.startswith(ADMIN_PREFIX + "/") or path == ADMIN_PREFIX:
            self._send(sim.handle_admin(self.command, path, split.query, body))
            return
        interface = "public"
        for name, prefix in INTERFACE_PREFIXES.items():
            if path == prefix or path.startswith(prefix + "/"):
                interface, path = name, path[len(prefix) :] or "/"
        rule = sim.faults.pick(self.command, path)

        def record(status: int) -> None:
            # Recorded before the answer leaves, so a client that reads sim.requests right
            # after its response always finds its own request there.
            sim.record(
                self.command,
                path,
                split.query,
                self.headers,
                body,
                status=status,
                interface=interface,
            )

        if rule is not None and rule.action == "slow":
            time.sleep(rule.delay)
            rule = None
        if rule is not None and rule.action == "drop":
            record(-1)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if rule is not None and rule.action == "status":
            response = self._fault_response(rule.status)
        else:
            try:
                response = sim.handle(
                    self.command, path, split.query, self.headers, body, interface=interface
                )
            except Exception as exc:  # never leave a client without an answer
                response = self._fault_response(500)
                response.body = response.body.replace(
                    b"Simulated fault (HTTP 500)", str(exc).encode()
                )
        if rule is not None and rule.action == "garbage":
            response = Response(200, b"<html><body>Proxy Error</body></html>\n\x00{not json")
        record(response.status)
        self._send(response, truncate=rule is not None and rule.action == "truncate")

    @staticmethod
    def _fault_response(status: int) -> Response:
        fault = {
            "error_message": {
                "faultcode": "Server",
                "faultstring": f"Simulated fault (HTTP {status})",
                "debuginfo": None,
            }
        }
        return json_response(fault, status)

    def _send(self, response: Response, truncate: bool = False) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for key, value in response.headers.items():
            self.send_header(key, value)
        if truncate:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD":
            return
        if truncate:
            self.wfile.write(response.body[: len(response.body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(response.body)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    simulator: Simulator
    ssl_context: ssl.SSLContext | None = None

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            # The handshake happens in the worker thread, so a slow client blocks nobody.
            sock = self.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up mid-answer are normal here (fault tests); stay quiet."""


class Simulator:
    """A Ceilometer v2 API and Keystone on one port, backed by SQLite.

    ``sim.url`` is the Ceilometer root (the catalog's public endpoint), ``sim.auth_url`` the
    Keystone v3 URL and ``sim.auth_url_v2`` the v2.0 one.
    """

    def __init__(  # noqa: PLR0917 - the positional order is the published contract
        self,
        db_path: str | None = None,
        gnocchi: bool = False,
        default_limit: int = 100,
        token_ttl: float = 3600.0,
        ssl_context: ssl.SSLContext | None = None,
        seed: int = 0,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        certfile: str | None = None,
        keyfile: str | None = None,
        identities: Identities | None = None,
    ) -> None:
        if ssl_context is None and certfile:
            ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ssl_context.load_cert_chain(certfile, keyfile)
        self.ssl_context = ssl_context
        self.host = host
        self.port = port
        self.seed = seed
        self.store = Store(db_path)
        self.api = CeilometerApi(self.store, gnocchi=gnocchi, default_limit=default_limit)
        self.keystone = Keystone(identities, token_ttl)
        self.faults = Faults(seed)
        self._requests: deque[RecordedRequest] = deque(maxlen=MAX_RECORDED)
        self._stats: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- configuration ---------------------------------------------------------------------------

    @property
    def gnocchi(self) -> bool:
        """Gnocchi mode: the sample API answers 410 (spec 1.0)."""
        return self.api.gnocchi

    @gnocchi.setter
    def gnocchi(self, value: bool) -> None:
        self.api.gnocchi = value

    @property
    def default_limit(self) -> int:
        """``[api] default_api_return_limit`` (spec 3)."""
        return self.api.default_limit

    @default_limit.setter
    def default_limit(self, value: int) -> None:
        self.api.default_limit = value

    @property
    def token_ttl(self) -> float:
        """Lifetime in seconds of tokens issued from now on."""
        return self.keystone.token_ttl

    @token_ttl.setter
    def token_ttl(self, value: float) -> None:
        self.keystone.token_ttl = value

    def revoke_tokens(self) -> int:
        """Revoke every issued token; returns how many there were."""
        return self.keystone.revoke()

    def issue_token(self, user: str = "admin", project: str | None = None) -> str:
        """A token for a user by name (scoped to its default project or ``project`` by name)."""
        found = self.keystone.identities.user_by_name(user, "default")
        if found is None:
            raise KeyError(user)
        proj_id = found.default_project_id
        if project is not None:
            proj = self.keystone.identities.project_by_name(project, "default")
            if proj is None:
                raise KeyError(project)
            proj_id = proj.id
        scope = self.keystone.identities.projects.get(proj_id) if proj_id else None
        return self.keystone.issue(found, scope, ["password"]).id

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, port: int | None = None) -> Simulator:
        """Bind (port 0 picks a free one) and serve in daemon threads; returns self."""
        if self._server is not None:
            return self
        if port is not None:
            self.port = port
        server = _Server((self.host, self.port), _Handler)
        server.simulator = self
        server.ssl_context = self.ssl_context
        self._server = server
        self.port = server.server_address[1]
        self.keystone.endpoints = self.endpoints
        self.keystone.identity_url = self.url + IDENTITY_PREFIX
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"ceilometer-simulator-{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the store (a temporary database is deleted)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.store.close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The Ceilometer root, e.g. ``http://127.0.0.1:PORT`` (the catalog's public URL)."""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def endpoints(self) -> dict[str, str]:
        """Catalog URLs by interface: public is ``url``; internal/admin add a path prefix."""
        return {
            "public": self.url,
            "internal": self.url + INTERFACE_PREFIXES["internal"],
            "admin": self.url + INTERFACE_PREFIXES["admin"],
        }

    @property
    def auth_url(self) -> str:
        """Keystone v3: ``<url>/identity/v3``."""
        return f"{self.url}{IDENTITY_PREFIX}/v3"

    @property
    def auth_url_v2(self) -> str:
        """Keystone v2.0: ``<url>/identity/v2.0``."""
        return f"{self.url}{IDENTITY_PREFIX}/v2.0"

    @property
    def identity_url(self) -> str:
        """Unversioned Keystone root (for discovery): ``<url>/identity``."""
        return f"{self.url}{IDENTITY_PREFIX}"

    # -- recording -------------------------------------------------------------------------------

    def record(
        self,
        method: str,
        path: str,
        query: str,
        headers: Any,
        body: bytes,
        *,
        status: int,
        interface: str,
    ) -> None:
        """Remember a request (thread-safe; the oldest are forgotten past 100,000)."""
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = body.decode(errors="replace")
        kept = {k: v for k, v in headers.items() if k.lower() != "x-auth-token"}
        with self._lock:
            self._requests.append(
                RecordedRequest(method, path, query, parsed, status, interface, kept)
            )
            self._stats[f"{method} {path}"] += 1

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the recorded requests, oldest first."""
        with self._lock:
            return list(self._requests)

    def reset_requests(self) -> None:
        """Forget recorded requests and statistics."""
        with self._lock:
            self._requests.clear()
            self._stats.clear()

    def stats(self) -> dict[str, int]:
        """Request counts by ``METHOD path``."""
        with self._lock:
            return dict(self._stats)

    # -- request handling ------------------------------------------------------------------------

    def handle(  # noqa: PLR0911 - early answers for each kind of request
        self,
        method: str,
        path: str,
        query: str,
        headers: Any,
        body: bytes = b"",
        *,
        interface: str = "public",
    ) -> Response:
        """Answer one (non-admin) request."""
        if path == IDENTITY_PREFIX or path.startswith(IDENTITY_PREFIX + "/"):
            sub = path[len(IDENTITY_PREFIX) :] or "/"
            return self._identity(method, sub, headers, body, query=query)
        base = self.endpoints[interface]
        params: dict[str, list[str]] = {}
        for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
            params.setdefault(key, []).append(value)
        req = Request(method, path, params, headers, body, base)
        try:
            not_acceptable = self._check_accept(headers)
            if not_acceptable is not None:
                return not_acceptable
            if path == "/":
                if method not in ("GET", "HEAD"):
                    raise ApiError(405, "", kind="abort", headers={"Allow": "GET"})
                return json_response(self._versions(base))
            token = self.keystone.validate(headers.get("X-Auth-Token"))
            if token is None:
                return self._unauthorized()
            req.token = token
            if path == "/v2" or not path.startswith("/v2/"):
                raise ApiError(404, "", kind="abort")
            return self.api.handle(req)
        except ApiError as exc:
            response = self._error_response(exc, headers, method)
            if exc.status == 401:
                # keystonemiddleware adds its challenge to the app's 401s too (spec 6).
                response.headers["WWW-Authenticate"] = self._challenge()
            return response
        except Exception as exc:  # uncaught errors are 500 "Server" faults (spec 1.0)
            return self._error_response(
                ApiError(500, str(exc), faultcode="Server"), headers, method
            )

    def _challenge(self) -> str:
        return f"Keystone uri='{self.identity_url}'"

    def _unauthorized(self) -> Response:
        response = json_response(KEYSTONE_UNAUTHORIZED, 401)
        response.headers["WWW-Authenticate"] = self._challenge()
        return response

    @staticmethod
    def _check_accept(headers: Any) -> Response | None:
        raw = headers.get("Accept") or ""
        accept = raw.lower()
        if not accept:
            return None
        types = [part.split(";")[0].strip() for part in accept.split(",")]
        ok = {"application/json", "application/*", "*/*", "application/xml"}
        if any(t in ok for t in types):
            return None
        return json_response({"error_message": _not_acceptable_text(raw)}, 406)

    @staticmethod
    def _versions(base: str) -> dict[str, Any]:
        return {
            "versions": {
                "values": [
                    {
                        "id": "v2",
                        "status": "stable",
                        "updated": "2013-02-13T00:00:00Z",
                        "links": [
                            {"href": f"{base}/v2", "rel": "self"},
                            {
                                "href": "http://docs.openstack.org/",
                                "rel": "describedby",
                                "type": "text/html",
                            },
                        ],
                        "media-types": [
                            {
                                "base": "application/json",
                                "type": "application/vnd.openstack.telemetry-v2+json",
                            },
                            {
                                "base": "application/xml",
                                "type": "application/vnd.openstack.telemetry-v2+xml",
                            },
                        ],
                    }
                ]
            }
        }

    @staticmethod
    def _error_response(exc: ApiError, headers: Any, method: str) -> Response:
        if exc.kind == "fault":
            fault = {"faultcode": exc.faultcode, "faultstring": exc.message, "debuginfo": None}
            response = json_response({"error_message": fault}, exc.status)
        else:
            response = json_response(
                {"error_message": _webob_body(exc, headers, method)}, exc.status
            )
        response.headers.update(exc.headers)
        return response

    # -- Keystone --------------------------------------------------------------------------------

    def _identity(  # noqa: PLR0911, PLR0912 - a routing table
        self, method: str, sub: str, headers: Any, body: bytes, *, query: str = ""
    ) -> Response:
        ks = self.keystone
        path = sub.rstrip("/") or "/"
        if method in ("GET", "HEAD"):
            if path == "/":
                return json_response(ks.versions(), 300)
            if path == "/v3":
                return json_response({"version": ks.version_v3()})
            if path == "/v2.0":
                return json_response({"version": ks.version_v2()})
            if path == "/v3/auth/tokens":
                caller = ks.validate(headers.get("X-Auth-Token"))
                subject = ks.validate(headers.get("X-Subject-Token"))
                if caller is None:
                    return self._keystone_401()
                if subject is None:
                    return _keystone_error(404, "Not Found", "Could not find token.")
                response = json_response(ks.token_body_v3(subject))
                response.headers["X-Subject-Token"] = subject.id
                return response
            listing = self._identity_read(path, query, headers)
            if listing is not None:
                return listing
        if method == "DELETE" and path == "/v3/auth/tokens":
            if ks.validate(headers.get("X-Auth-Token")) is None:
                return self._keystone_401()
            ks.revoke(headers.get("X-Subject-Token"))
            return Response(204, b"")
        if method == "POST" and path in ("/v3/auth/tokens", "/v2.0/tokens"):
            try:
                data = json.loads(body or b"null")
                if path == "/v3/auth/tokens":
                    token = ks.authenticate_v3(data)
                    response = json_response(ks.token_body_v3(token), 201)
                    response.headers["X-Subject-Token"] = token.id
                    return response
                return json_response(ks.token_body_v2(ks.authenticate_v2(data)))
            except (AuthFailedError, KeyError):
                return self._keystone_401()
            except (BadRequestError, ValueError, TypeError, AttributeError) as exc:
                message = (
                    f"{exc} The server could not comply with the request since it is either "
                    "malformed or otherwise incorrect. The client is assumed to be in error."
                )
                return _keystone_error(400, "Bad Request", message)
        return _keystone_error(404, "Not Found", "The resource could not be found.")

    def _identity_read(self, path: str, query: str, headers: Any) -> Response | None:
        """The v3 listings and entities (projects, domains, users); None for other paths."""
        ks = self.keystone
        try:
            body = ks.read_v3(path, query, ks.validate(headers.get("X-Auth-Token")))
        except AuthFailedError:
            return self._keystone_401()
        except ForbiddenError as exc:
            return _keystone_error(403, "Forbidden", str(exc))
        except NotFoundError as exc:
            return _keystone_error(404, "Not Found", str(exc))
        except BadRequestError as exc:
            return _keystone_error(400, "Bad Request", str(exc))
        return None if body is None else json_response(body)

    def _keystone_401(self) -> Response:
        response = json_response(KEYSTONE_UNAUTHORIZED, 401)
        response.headers["WWW-Authenticate"] = f'Keystone uri="{self.identity_url}"'
        return response

    # -- admin endpoints -------------------------------------------------------------------------

    def handle_admin(  # noqa: PLR0911, PLR0912 - a routing table
        self, method: str, path: str, query: str, body: bytes
    ) -> Response:
        """The /_sim endpoints for out-of-process control (no token needed)."""
        try:
            data = json.loads(body) if body.strip() else None
            params = urllib.parse.parse_qs(query)
            route = (method, path.rstrip("/"))
            if route == ("POST", "/_sim/samples"):
                if not isinstance(data, list):
                    raise ValueError("expected a JSON list of samples")
                return json_response({"added": self.store.add_samples(data)})
            if route == ("POST", "/_sim/load"):
                spec = CloudSpec.from_json(data or {})
                return json_response({"added": self.store.load(spec)})
            if route == ("POST", "/_sim/faults"):
                rules = data if isinstance(data, list) else [data]
                for rule in rules:
                    if not isinstance(rule, dict):
                        raise ValueError("a fault rule is a JSON object")
                    self.faults.add(FaultRule.from_json(rule))
                return json_response({"rules": [r.to_json() for r in self.faults.rules]})
            if route == ("DELETE", "/_sim/faults"):
                self.faults.clear()
                return json_response({"rules": []})
            if route == ("GET", "/_sim/faults"):
                return json_response({"rules": [r.to_json() for r in self.faults.rules]})
            if route == ("POST", "/_sim/tokens/revoke"):
                return json_response({"revoked": self.revoke_tokens()})
            if route == ("POST", "/_sim/tokens/ttl"):
                self.token_ttl = float((data or {})["ttl"])
                return json_response({"ttl": self.token_ttl})
            if route == ("GET", "/_sim/stats"):
                return json_response({"requests": self.stats(), "samples": self.store.count()})
            if route == ("POST", "/_sim/requests/reset"):
                self.reset_requests()
                return json_response({"reset": True})
            if route == ("GET", "/_sim/count"):
                meter = params.get("meter", [None])[0] or None
                return json_response({"count": self.store.count(meter)})
            if route == ("GET", "/_sim/meters"):
                return json_response({"meters": self.store.meters()})
            return json_response({"error": f"no admin route {method} {path}"}, 404)
        except (ValueError, TypeError, KeyError, msgspec.ValidationError) as exc:
            return json_response({"error": str(exc)}, 400)

    def add_samples(self, samples: Iterable[Mapping[str, Any]]) -> int:
        """Shortcut for ``store.add_samples``."""
        return self.store.add_samples(samples)


def _not_acceptable_text(accept: str) -> str:
    """WebOb's HTTPNotAcceptable page for Pecan's 406, as ParsableErrorMiddleware wraps it.

    Not JSON, so the middleware wraps it as a string (spec 1.0, 11.1). WebOb renders HTML when the
    client accepts HTML and plain text otherwise (it offers JSON too, but a client that accepts
    JSON never gets a 406). The explanation quotes the Accept header, with WebOb's unclosed
    parenthesis; these are the texts the real server sends, byte for byte.
    """
    status = "406 Not Acceptable"
    explanation = "The resource could not be generated that was acceptable to your browser"
    if "html" in accept.lower():
        return (
            f"<html>\n <head>\n  <title>{status}</title>\n </head>\n <body>\n  <h1>{status}</h1>\n"
            f"  {explanation}\n(content of type {html.escape(accept)}. <br /><br />\n\n"
            " </body>\n</html>"
        )
    return f"{status}\n\n{explanation} (content of type {accept}. \n\n "


def _webob_body(exc: ApiError, headers: Any, method: str) -> Any:
    """What ParsableErrorMiddleware wraps for a ``pecan.abort`` (spec 1.0, open question 11.1).

    WebOb renders JSON when the client prefers ``application/json`` over HTML and an HTML page
    otherwise; the middleware wraps JSON as an object and anything else as a string.
    """
    title, explanation = WEBOB_STATUS.get(exc.status, ("Error", ""))
    explanation = explanation.format(method=method, accept="", content_type="")
    status = f"{exc.status} {title}"
    accept = (headers.get("Accept") or "").lower()
    prefers_json = "application/json" in accept and "text/html" not in accept
    if prefers_json:
        message = f"{explanation}<br /><br />\n{exc.message}\n"
        return {"code": status, "title": title, "message": message}
    detail = html.escape(exc.message)
    return (
        f"<html>\n <head>\n  <title>{status}</title>\n </head>\n <body>\n  <h1>{status}</h1>\n"
        f"  {html.escape(explanation)}<br /><br />\n{detail}\n\n\n </body>\n</html>"
    )
