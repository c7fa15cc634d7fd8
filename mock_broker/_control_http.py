"""ControlServer: the control API over HTTP/1.1, served by the standard library's http.server.

Why http.server: it is a well-kept HTTP/1.1 parser (request line, headers and
their limits, keep-alive, ``Expect: 100-continue``) that costs the project no
dependency, and the MEGA side keeps none either. It runs on threads of its own
(``ThreadingHTTPServer``), so the broker's event loop never parses HTTP nor
renders a large JSON answer: each operation is handed to the loop
(:class:`~mock_broker._bridge.LoopBridge`) and waited for with a deadline.
A slow or hostile control client holds one of :data:`MAX_CONNECTIONS` threads,
never the loop. (h11 on the loop was the other choice: it would add a
dependency and put the rendering of transcripts on the loop the clients
under test share.)

This module is the thin edge: it reads a request within its limits (a body
over :data:`~mock_broker._control_api.MAX_BODY_BYTES` is refused before it is
read, a chunked one too), hands it to :class:`~mock_broker._control_api.ControlApi`
and writes the answer. Errors http.server finds itself (a bad request line,
too many headers) are answered in the API's JSON error shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import ipaddress
import json
import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from ._bridge import LoopBridge
from ._control_api import MAX_BODY_BYTES, PREFIX, ApiError, ApiRequest, ApiResponse, ControlApi, error_body

if TYPE_CHECKING:
    from ._server import MockBroker

log = logging.getLogger("mock_broker.control")

#: Control connections served at once; more wait to be accepted (each is a thread).
MAX_CONNECTIONS = 32
#: Seconds a control connection may stay silent (between requests, or in the middle of one).
IDLE_SECONDS = 10.0

_STATUS_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "invalid_request",
    411: "length_required",
    413: "body_too_large",
    414: "uri_too_long",
    431: "headers_too_large",
    501: "not_implemented",
    505: "invalid_request",
}


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _printable(text: str, limit: int = 200) -> str:
    """Text from a client, safe for a log line: control characters escaped, bounded."""
    text = text[:limit]
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class _Handler(http.server.BaseHTTPRequestHandler):
    """One control connection: reads requests within the limits, answers each with the API's answer."""

    protocol_version = "HTTP/1.1"
    server_version = "mega-mock-broker"
    sys_version = ""
    timeout = IDLE_SECONDS
    # Headers and body are two writes: without TCP_NODELAY the body waits for the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True
    server: _HTTPServer

    def version_string(self) -> str:
        return self.server_version

    # Every method goes to the router, which answers 404 or 405 itself.
    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _serve(self) -> None:
        with self.server.busy:
            self._serve_one()

    def _serve_one(self) -> None:
        started = time.perf_counter()
        try:
            request = self._read_request()
        except ApiError as exc:
            self.close_connection = True  # the body (if any) was not read: the stream cannot go on
            self._answer(exc.response(), started)
            return
        if request is None:
            return
        try:
            response = self.server.api.handle(request)
        except Exception:  # a defect of ours: say so, keep serving
            log.exception("control: %s %s failed", _printable(self.command, 20), _printable(self.path))
            failed = ApiError("internal_error", "the control API failed on this request (see the broker's log)")
            response = failed.response()
        self._answer(response, started)

    def _read_request(self) -> ApiRequest | None:
        if self.headers.get("Transfer-Encoding") is not None:
            raise ApiError("length_required", "a chunked body is not accepted; send Content-Length")
        length = self._content_length()
        body = b""
        if length:
            try:
                body = self.rfile.read(length)
            except (TimeoutError, OSError):
                body = b""
            if len(body) < length:  # the client stopped sending (or went away): nothing to answer
                self.close_connection = True
                return None
        content_type = self.headers.get("Content-Type")
        media = content_type.partition(";")[0].strip().lower() if content_type else None
        return ApiRequest(self.command, self.path, media, body)

    def _content_length(self) -> int:
        text = self.headers.get("Content-Length")
        if text is None:
            return 0
        text = text.strip()
        if not text.isascii() or not text.isdigit() or len(text) > 18:
            raise ApiError("invalid_request", "Content-Length is not a number")
        length = int(text)
        if length > MAX_BODY_BYTES:
            raise ApiError("body_too_large", f"the body is {length} bytes, over the limit of {MAX_BODY_BYTES}")
        return length

    def handle_expect_100(self) -> bool:
        # Refuse a body that is too large before the client sends it.
        try:
            self._content_length()
        except ApiError as exc:
            self.close_connection = True
            self._answer(exc.response(), time.perf_counter())
            return False
        return super().handle_expect_100()

    def _answer(self, response: ApiResponse, started: float) -> None:
        if self.request_version == "HTTP/0.9":  # nothing usable parsed: answer with a status line anyway
            self.request_version = "HTTP/1.0"
            self.close_connection = True
        body = b"" if response.body is None else json.dumps(response.body).encode("ascii") + b"\n"
        try:
            self.send_response(response.status)
            if response.body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in response.headers:
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:  # the client went away
            self.close_connection = True
        log.debug(
            "control: %s %s -> %d (%.1f ms)",
            _printable(self.command or "-", 20),
            _printable(self.path or "-"),
            response.status,
            (time.perf_counter() - started) * 1000,
        )

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, header limits), in the API's error shape."""
        self.close_connection = True
        text = message or self.responses.get(code, ("error",))[0]
        response = ApiResponse(code, error_body(_STATUS_CODES.get(code, "invalid_request"), _printable(text)))
        if not self.command:
            self.command = "GET"  # nothing parsed: answer with a body
        self._answer(response, time.perf_counter())

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # _answer logs each request, with its time

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("control: %s", _printable(format % args, 500))


class _Busy:
    """Counts the requests being answered, so that a stop can let them finish."""

    def __init__(self) -> None:
        self._count = 0
        self._cond = threading.Condition()

    def __enter__(self) -> None:
        with self._cond:
            self._count += 1

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._count -= 1
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._count == 0, timeout)


class _HTTPServer(http.server.ThreadingHTTPServer):
    """ThreadingHTTPServer with a cap on the connections served at once."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], api_factory: Any) -> None:
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.busy = _Busy()
        super().__init__(address, _Handler)
        self.api: ControlApi = api_factory(self.server_address[:2])

    def process_request(self, request: Any, client_address: Any) -> None:
        # Past the cap, accepting waits here (new connections wait in the backlog).
        self._slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("control: error serving %s", client_address)


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class ControlServer:
    """The HTTP control API of one :class:`~mock_broker.MockBroker`, beside its MEGA port.

    ::

        async with MockBroker(port=0) as broker:
            control = await ControlServer(broker, port=0).start()
            ...  # http://127.0.0.1:{control.port}/v1/...
            await control.stop()

    Start and stop it on the broker's loop. It binds to ``host`` (loopback by
    default: the API can reset the broker; the command refuses another address
    without ``--control-allow-remote``).
    """

    def __init__(self, broker: MockBroker, host: str = "127.0.0.1", port: int = 0) -> None:
        self.broker = broker
        self._host = host
        self._port = port
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._bridge: LoopBridge | None = None

    async def start(self) -> ControlServer:
        """Listen (OSError if it cannot) and serve on a thread of its own."""
        if self._server is not None:
            raise RuntimeError("control server already started")
        bridge = LoopBridge(asyncio.get_running_loop())
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        cls = _HTTPServer6 if family == socket.AF_INET6 else _HTTPServer
        server = cls((self._host, self._port), lambda address: ControlApi(self.broker, bridge, address))
        self._server, self._bridge = server, bridge
        self._host, self._port = server.server_address[:2]  # type: ignore[assignment]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="mock-broker-control", daemon=True
        )
        self._thread.start()
        log.debug("control API on %s", self.url)
        return self

    def close_api(self) -> None:
        """Answer 503 from now on to every call that needs the broker (it is stopping)."""
        if self._bridge is not None:
            self._bridge.close()

    async def stop(self) -> None:
        """Stop serving: requests in flight are answered 503; the port is closed."""
        server, self._server = self._server, None
        if server is None:
            return
        self.close_api()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, server.shutdown)
        server.server_close()
        # Requests in flight answer 503 at once (the bridge is closed): let them be written.
        await loop.run_in_executor(None, server.busy.wait_idle, 2.0)
        if self._thread is not None:
            with contextlib.suppress(RuntimeError):
                self._thread.join(5.0)

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The port it listens on (the real one once started with ``port=0``)."""
        return self._port

    @property
    def url(self) -> str:
        """The API's base URL, ``http://HOST:PORT/v1``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}{PREFIX}"
