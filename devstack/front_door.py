"""The HTTP API on 127.0.0.1: what API Gateway (HTTP API, payload format 2.0) does in front of the
template's functions.

A request matching a route of template.yaml becomes a payload 2.0 event, the function is invoked
through moto's Lambda Invoke API (the same path Step Functions takes, so the template's
environment applies), and its answer becomes the HTTP response by API Gateway's rules. As with
`sam local start-api`, IAM authorisation (SigV4) is not checked.

Each request invokes its function exactly once, as API Gateway does: the Lambda client makes one
attempt (devstack.stack.moto_client), so a function slower than the client's read timeout (the
integration timeout) is never invoked a second time. The request gets API Gateway's answer for a
timeout, a 503, while the function may still finish what it started.
"""

import base64
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

from devstack.template import Route

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's request payload limit
TEXT_TYPES = re.compile(r"text/.*|application/(json|xml|javascript|x-www-form-urlencoded|.*\+json|.*\+xml)")


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query, as received
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


# --- routing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CompiledRoute:
    route: Route
    pattern: re.Pattern[str] | None  # None for $default
    parameters: tuple[str, ...]
    precedence: tuple[Any, ...]


def _compile(route: Route) -> _CompiledRoute:
    if route.path is None:
        return _CompiledRoute(route, None, (), (1,))
    parts, parameters, kinds = [], [], []
    for segment in route.path.strip("/").split("/"):
        if variable := re.fullmatch(r"\{([^}+]+)(\+?)\}", segment):
            parameters.append(variable.group(1))
            greedy = bool(variable.group(2))
            parts.append("(.+)" if greedy else "([^/]+)")
            kinds.append(2 if greedy else 1)
        else:
            parts.append(re.escape(segment))
            kinds.append(0)
    # API Gateway picks the most specific route: literal segments before variables before greedy
    # variables, and a route's own method before ANY.
    return _CompiledRoute(route, re.compile("/" + "/".join(parts)), tuple(parameters), (0, kinds, route.method == "ANY"))


class Router:
    def __init__(self, routes: Sequence[Route]):
        self._routes = sorted((_compile(route) for route in routes), key=lambda compiled: compiled.precedence)

    def match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        for compiled in self._routes:
            if compiled.route.method not in ("ANY", method):
                continue
            if compiled.pattern is None:
                return compiled.route, {}
            if matched := compiled.pattern.fullmatch(raw_path):
                return compiled.route, {
                    name: unquote(value) for name, value in zip(compiled.parameters, matched.groups(), strict=True)
                }
        return None


# --- events and answers -------------------------------------------------------------------------


def http_api_event(
    request: Request, route: Route, path_parameters: dict[str, str], account_id: str, now: datetime
) -> dict[str, Any]:
    """The API Gateway HTTP API payload format 2.0 event for `request`."""
    target = urlsplit(request.target)
    headers: dict[str, str] = {}
    for name, value in request.headers:
        name = name.lower()
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    cookie_header = headers.pop("cookie", "")
    query: dict[str, str] = {}
    for name, value in parse_qsl(target.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    host = headers.get("host", "localhost")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": target.path,
        "rawQueryString": target.query,
        "headers": headers,
        "requestContext": {
            "accountId": account_id,
            "apiId": route.api_id,
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "http": {
                "method": request.method,
                "path": target.path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex[:16],
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookie_header:
        event["cookies"] = [cookie.strip() for cookie in cookie_header.split(";") if cookie.strip()]
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if request.body:
        text = _text(request.body, headers.get("content-type", ""))
        event["body"] = base64.b64encode(request.body).decode("ascii") if text is None else text
        event["isBase64Encoded"] = text is None
    return event


def _text(body: bytes, content_type: str) -> str | None:
    """The body as text if it is text; None means API Gateway would pass it base64-encoded."""
    if not TEXT_TYPES.fullmatch(content_type.split(";")[0].strip().lower()):
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def http_response(result: Any) -> Response:
    """The HTTP response API Gateway makes of a function's result (payload format 2.0)."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # Anything else is taken as the body of a 200 JSON answer; a string is the body itself.
        body = result if isinstance(result, str) else json.dumps(result)
        return Response(200, [("content-type", "application/json")], body.encode("utf-8"))
    headers = [(name, str(value)) for name, value in (result.get("headers") or {}).items()]
    headers += [("set-cookie", cookie) for cookie in result.get("cookies") or []]
    body = result.get("body") or ""
    if not isinstance(body, str):
        raise ValueError(f"the function answered a body that is not a string: {body!r}")
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    return Response(int(result["statusCode"]), headers, payload)


def _message(status: int, message: str) -> Response:
    return Response(status, [("content-type", "application/json")], json.dumps({"message": message}).encode())


def _integration_timeout(timeout_seconds: float) -> Response:
    """An HTTP API's answer when its integration timeout passes: 503 `{"message": "Service
    Unavailable"}` (a REST API's would be a 504). Our error shape is added, with what a client needs
    to know: the function may still be running, and may still do what the request asked."""
    error = {
        "code": "INTEGRATION_TIMEOUT",
        "message": f"the function did not answer within {timeout_seconds:g} s (API Gateway's integration timeout); "
        "it may still finish what the request started: look before sending it again, or send it again with the "
        "same Idempotency-Key",
        "details": {"timeout_seconds": timeout_seconds},
    }
    body = {"message": "Service Unavailable", "error": error}
    return Response(503, [("content-type", "application/json")], json.dumps(body).encode())


# --- the server ---------------------------------------------------------------------------------


class _TooLarge(Exception):
    pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    router: Router
    lambda_client: Any  # boto3 Lambda client pointed at moto, one attempt per call (devstack.stack.moto_client)
    account_id: str


class FrontDoor:
    """Binds at construction (port 0 picks a free port, known from `url` at once); serves once
    `serve` gets the routes, which may depend on that URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 3000):
        self._server = _Server((host, port), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def serve(self, routes: Sequence[Route], lambda_client: Any, account_id: str) -> None:
        self._server.router = Router(routes)
        self._server.lambda_client = lambda_client
        self._server.account_id = account_id
        # A short poll interval: `stop` (shutdown) waits up to one interval for the loop to notice.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="devstack-front-door", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer carries a Content-Length
    server: _Server

    def _serve(self) -> None:
        started = time.monotonic()
        try:
            body = self._read_body()
        except _TooLarge:
            self.close_connection = True  # the body was not read
            response = _message(413, "Request Entity Too Large")
        else:
            request = Request(self.command, self.path, list(self.headers.items()), body, self.client_address[0])
            response = self._answer(request)
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
        log.info("%s -> %d (%.0f ms)", self._logged_route(), response.status, (time.monotonic() - started) * 1000)

    def _logged_route(self) -> str:
        """The route's key, not the raw path: a webhook path carries its job's capability token,
        which must never reach a log line (API Gateway's access logs use $context.routeKey too)."""
        matched = self.server.router.match(self.command, urlsplit(self.path).path)
        return matched[0].route_key if matched else f"{self.command} (no route)"

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def _answer(self, request: Request) -> Response:
        matched = self.server.router.match(request.method, urlsplit(request.target).path)
        if matched is None:
            return _message(404, "Not Found")
        route, path_parameters = matched
        event = http_api_event(request, route, path_parameters, self.server.account_id, datetime.now(UTC))
        client = self.server.lambda_client
        try:
            # The Qualifier puts a query string on moto's Invoke URL: without one, moto reads the payload as a
            # form, and an event holding "&Action=" (a client's query or body) is taken for another AWS call.
            answer = client.invoke(FunctionName=route.function_name, Qualifier="$LATEST", Payload=json.dumps(event).encode())
        except ReadTimeoutError:
            log.warning("%s did not answer within the integration timeout", route.function_name)
            return _integration_timeout(client.meta.config.read_timeout)
        except (BotoCoreError, ClientError) as error:  # the Invoke itself failed: API Gateway answers 500
            log.error("%s could not be invoked: %s", route.function_name, error)
            return _message(500, "Internal Server Error")
        payload = answer["Payload"].read()
        if answer.get("FunctionError"):
            log.error("%s failed: %s", route.function_name, payload.decode("utf-8", "replace")[:2000])
            return _message(500, "Internal Server Error")
        try:
            return http_response(json.loads(payload))
        except (ValueError, TypeError, KeyError) as error:
            log.error("%s answered something API Gateway cannot use: %s", route.function_name, error)
            return _message(500, "Internal Server Error")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise _TooLarge()
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            if len(body) + size > MAX_BODY_BYTES:
                raise _TooLarge()
            body += self.rfile.read(size)
            self.rfile.readline()  # the CRLF after each chunk
        while self.rfile.readline().strip():  # trailers, up to the blank line
            pass
        return bytes(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)  # the access log above says what matters
