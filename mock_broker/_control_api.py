"""The control API: an HTTP request's method, path, query and body in; a status and a JSON body out.

No sockets here (the HTTP side is :mod:`mock_broker._control_http`): this is
the routing, the checking of every input, and the operations, each one a call
of the same :class:`~mock_broker.MockBroker` methods the Python API uses, run on
the broker's loop through a :class:`~mock_broker._bridge.LoopBridge`. What can
be done off the loop is: parsing and checking the input before, turning
snapshots into JSON after (:mod:`mock_broker._views`). So a bad request never
reaches the broker, and a large answer is rendered without holding up its
clients.

Every error is ``{"error": {"code": CODE, "message": TEXT}}`` with the status
that fits; :data:`ERROR_CODES` lists them. mock_broker/README.md is the
reference of the endpoints.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeVar

from mega_client.protocol.limits import INT64_MAX, INT64_MIN, topic_name_problem

from . import _conditions as cond
from . import _views as views
from ._bridge import LoopBridge, Unavailable
from ._faults import GRAMMAR, FaultRule, FaultRuleError
from ._record import ConnectionRecord

if TYPE_CHECKING:
    from ._server import MockBroker

T = TypeVar("T")
JSON = dict[str, Any]

#: The path prefix of this version of the API.
PREFIX = "/v1"
#: The largest request body read; a larger one is refused (413) before it is read.
MAX_BODY_BYTES = 2 * 1024 * 1024
#: How long an operation may wait for the broker's loop before the answer is 503.
OPERATION_TIMEOUT = 5.0
#: The longest wait ``POST /v1/wait`` accepts, and its default.
MAX_WAIT_MS = 300_000
DEFAULT_WAIT_MS = 5_000
#: Page sizes of the lists (messages, connections): default and most per page.
DEFAULT_PAGE = 100
MAX_PAGE = 10_000
#: Bytes of payload (messages) or transcript (connections) one page holds at most (always one item).
PAGE_BYTES = 16 * 1024 * 1024
#: Query parameters one request may carry.
MAX_QUERY_FIELDS = 20

#: Every error code the API answers with, and its status.
ERROR_CODES: dict[str, int] = {
    "invalid_json": 400,  # the body is not JSON, or not a JSON object
    "invalid_request": 400,  # a field or query parameter is missing, unknown or out of range
    "invalid_rule": 400,  # the fault rule does not parse
    "invalid_topic": 400,  # the topic name breaks the name rules
    "not_found": 404,  # no such endpoint
    "unknown_rule": 404,
    "unknown_topic": 404,
    "unknown_connection": 404,
    "method_not_allowed": 405,
    "topic_exists": 409,
    "length_required": 411,  # a chunked body (send Content-Length)
    "body_too_large": 413,
    "uri_too_long": 414,
    "unsupported_media_type": 415,
    "headers_too_large": 431,
    "internal_error": 500,
    "not_implemented": 501,  # an HTTP method the server does not know
    "unavailable": 503,  # the broker is stopping, or its loop did not answer in time
}


class ApiError(Exception):
    """An error answer: ``status``, ``code`` (one of :data:`ERROR_CODES`) and a one-line ``message``."""

    def __init__(self, code: str, message: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.status = ERROR_CODES[code]
        self.message = message
        self.headers = headers

    def response(self) -> ApiResponse:
        return ApiResponse(self.status, error_body(self.code, self.message), self.headers)


def error_body(code: str, message: str) -> JSON:
    """The one shape of every error."""
    return {"error": {"code": code, "message": message}}


@dataclass(frozen=True)
class ApiRequest:
    """What the HTTP side read: ``target`` is the request target (path and query), ``media_type`` is
    the Content-Type without parameters, lower case (``None`` when absent)."""

    method: str
    target: str
    media_type: str | None = None
    body: bytes = b""


@dataclass(frozen=True)
class ApiResponse:
    """What to answer: a status, a JSON body (``None``: no body) and extra headers."""

    status: int
    body: JSON | None
    headers: tuple[tuple[str, str], ...] = ()


# -- reading input ----------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(request: ApiRequest, *, required: bool = True) -> JSON:
    """The body as a JSON object: 415 unless it is application/json, 400 unless it parses."""
    if not request.body:
        if required:
            raise ApiError("invalid_json", "this endpoint needs a JSON object as the body")
        return {}
    if request.media_type != "application/json":
        got = request.media_type or "no Content-Type"
        raise ApiError("unsupported_media_type", f"the body must be application/json, not {got}")
    try:
        value = json.loads(request.body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise ApiError("invalid_json", "the body is not UTF-8") from None
    except RecursionError:
        raise ApiError("invalid_json", "the body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, NaN, an integer of too many digits
        raise ApiError("invalid_json", f"the body is not valid JSON: {_one_line(str(exc))}") from None
    if not isinstance(value, dict):
        raise ApiError("invalid_json", f"the body must be a JSON object, not {_json_type(value)}")
    return value


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown(value: object) -> str:
    """A value from the request, quoted for an error message: bounded, on one line."""
    return _one_line(json.dumps(value) if not isinstance(value, str) else repr(value), 80)


class Fields:
    """The fields of a JSON object, each read once with its type and range; :meth:`done` refuses the rest."""

    def __init__(self, obj: JSON) -> None:
        self._obj = obj
        self._read: set[str] = set()

    def has(self, name: str) -> bool:
        return name in self._obj

    def _get(self, name: str, required: bool) -> Any:
        self._read.add(name)
        if name not in self._obj:
            if required:
                raise ApiError("invalid_request", f"field {name!r} is required")
            return None
        return self._obj[name]

    def raw(self, name: str) -> Any:
        """The value as JSON gave it (``None`` when absent)."""
        return self._get(name, False)

    def need_integer(self, name: str, lo: int, hi: int) -> int:
        value = self.integer(name, lo, hi, required=True)
        assert value is not None
        return value

    def integer(self, name: str, lo: int, hi: int, *, required: bool = False) -> int | None:
        value = self._get(name, required)
        if value is None and not required:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApiError("invalid_request", f"field {name!r} must be an integer, not {_shown(value)}")
        if not lo <= value <= hi:
            raise ApiError("invalid_request", f"field {name!r} must be {lo}..{hi}, not {value}")
        return value

    def string(self, name: str, *, required: bool = False, max_length: int = 1024) -> str | None:
        value = self._get(name, required)
        if value is None and not required:
            return None
        if not isinstance(value, str):
            raise ApiError("invalid_request", f"field {name!r} must be a string, not {_shown(value)}")
        if len(value) > max_length:
            raise ApiError("invalid_request", f"field {name!r} is over {max_length} characters")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._get(name, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ApiError("invalid_request", f"field {name!r} must be true or false, not {_shown(value)}")
        return value

    def done(self) -> None:
        extra = sorted(set(self._obj) - self._read)
        if extra:
            names = ", ".join(_shown(k) for k in extra[:5])
            raise ApiError("invalid_request", f"unknown field(s): {names}")


class Query:
    """The query parameters, each read once; an unknown or repeated one is refused."""

    def __init__(self, query: str, allowed: Iterable[str]) -> None:
        try:
            pairs = urllib.parse.parse_qsl(
                query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS, errors="strict"
            )
        except (ValueError, UnicodeDecodeError):
            raise ApiError("invalid_request", f"the query has over {MAX_QUERY_FIELDS} fields or is not UTF-8") from None
        allowed = set(allowed)
        self._values: dict[str, str] = {}
        for name, value in pairs:
            if name not in allowed:
                known = ", ".join(sorted(allowed)) or "none"
                raise ApiError("invalid_request", f"unknown query parameter {_shown(name)} (known: {known})")
            if name in self._values:
                raise ApiError("invalid_request", f"query parameter {name!r} given twice")
            self._values[name] = value

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        text = self._values.get(name)
        if text is None:
            return default
        try:
            value = int(text) if len(text) <= 20 else None
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            raise ApiError(
                "invalid_request", f"query parameter {name!r} must be an integer {lo}..{hi}, not {_shown(text)}"
            )
        return value

    def boolean(self, name: str) -> bool:
        text = self._values.get(name)
        if text is None:
            return False
        if text.lower() in ("", "1", "true", "yes"):
            return True
        if text.lower() in ("0", "false", "no"):
            return False
        raise ApiError("invalid_request", f"query parameter {name!r} must be true or false, not {_shown(text)}")

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        text = self._values.get(name, choices[0])
        if text not in choices:
            raise ApiError("invalid_request", f"query parameter {name!r} must be one of {', '.join(choices)}")
        return text


def _id(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise ApiError(f"unknown_{what}", f"no {what} {_shown(text)} (ids are positive integers)")
    return int(text)


# -- fault rules from JSON ----------------------------------------------------------------

#: The fields of a structured rule, in the order of the grammar.
RULE_FIELDS = ("target", "topic", "action", "arg", "when", "n", "conn")


def rule_text(body: JSON) -> str:
    """The rule a JSON body describes, as grammar text: ``{"rule": TEXT}`` or the structured fields.

    The structured form is written out in the grammar and parsed like any other
    rule, so both forms mean exactly the same.
    """
    fields = Fields(body)
    if fields.has("rule"):
        text = fields.string("rule", required=True, max_length=200_000)
        fields.done()
        assert text is not None
        return text
    target = fields.string("target", required=True, max_length=64)
    topic = fields.string("topic", max_length=1024)
    action = fields.string("action", required=True, max_length=64)
    raw_arg = fields.raw("arg")
    if isinstance(raw_arg, bool) or not isinstance(raw_arg, (str, int, type(None))):
        raise ApiError("invalid_rule", f"field 'arg' must be a string or an integer, not {_shown(raw_arg)}")
    if isinstance(raw_arg, str) and len(raw_arg) > 200_000:
        raise ApiError("invalid_rule", "field 'arg' is over 200000 characters")
    when = fields.string("when", max_length=16)
    n = fields.integer("n", 1, 2**63)
    conn = fields.integer("conn", 1, 2**63)
    fields.done()
    for name, value in (("target", target), ("topic", topic), ("action", action), ("arg", raw_arg), ("when", when)):
        if isinstance(value, str) and (":" in value or "=" in value or "@" in value or not value.isprintable()):
            raise ApiError("invalid_rule", f"field {name!r} must not hold ':', '=', '@' or control characters")
    head = f"{target}@{topic}" if topic is not None else f"{target}"
    parts: list[str] = [head, str(action) if raw_arg is None else f"{action}={raw_arg}"]
    if when in ("nth", "every"):
        if n is None:
            raise ApiError("invalid_rule", f"when {when!r} needs the field 'n'")
        parts.append(f"{when}={n}")
    elif when is not None:
        if n is not None:
            raise ApiError("invalid_rule", f"the field 'n' goes with when 'nth' or 'every', not {when!r}")
        parts.append(when)
    elif n is not None:
        raise ApiError("invalid_rule", "the field 'n' needs when 'nth' or 'every'")
    if conn is not None:
        parts.append(f"conn={conn}")
    return ":".join(parts)


def parse_rule(text: str) -> FaultRule:
    try:
        return FaultRule.parse(text)
    except FaultRuleError as exc:
        raise ApiError("invalid_rule", _one_line(str(exc), 400)) from None


class RuleIds:
    """The ids the API gives fault rules: 1, 2, ... in the order it first sees them, never reused.

    Rules added from Python or ``--fault`` get theirs when the API first lists
    them. Used on the broker's loop only.
    """

    def __init__(self) -> None:
        self._ids: dict[FaultRule, int] = {}
        self._next = 1

    def sync(self, rules: list[FaultRule]) -> list[tuple[int, FaultRule]]:
        """Every rule with its id (removed rules are forgotten)."""
        ids: dict[FaultRule, int] = {}
        for rule in rules:
            rule_id = self._ids.get(rule)
            if rule_id is None:
                rule_id = self._next
                self._next += 1
            ids[rule] = rule_id
        self._ids = ids
        return [(ids[r], r) for r in rules]

    def find(self, rules: list[FaultRule], rule_id: int) -> FaultRule:
        for i, rule in self.sync(rules):
            if i == rule_id:
                return rule
        raise ApiError("unknown_rule", f"no fault rule {rule_id} (GET {PREFIX}/faults lists them)")


# -- the API ------------------------------------------------------------------------------

Handler = Callable[["ControlApi", ApiRequest, dict[str, str], str], ApiResponse]


@dataclass
class _Route:
    path: str  # as documented: /v1/faults/{rule_id}
    regex: re.Pattern[str]
    methods: dict[str, Handler]


_ROUTES: list[_Route] = []


def route(pattern: str, method: str) -> Callable[[Handler], Handler]:
    """Register a handler for ``method`` on ``PREFIX + pattern`` (``{name}``: one path segment)."""
    path = PREFIX + pattern
    regex = re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "/?")

    def register(fn: Handler) -> Handler:
        for existing in _ROUTES:
            if existing.path == path:
                existing.methods[method] = fn
                return fn
        _ROUTES.append(_Route(path, regex, {method: fn}))
        return fn

    return register


class ControlApi:
    """The endpoints of one broker's control plane; :meth:`handle` is safe from any thread.

    ``control_address`` is where the HTTP side listens (shown by ``/config``).
    """

    def __init__(self, broker: MockBroker, bridge: LoopBridge, control_address: tuple[str, int]) -> None:
        self.broker = broker
        self.bridge = bridge
        self.control_address = control_address
        self.started = time.time()
        self._rule_ids = RuleIds()
        #: Waits (POST /wait) in progress; counted on the loop.
        self._waits = 0

    def handle(self, request: ApiRequest) -> ApiResponse:
        """Answer one request; every failure is an error answer, never an exception."""
        try:
            return self._dispatch(request)
        except ApiError as exc:
            return exc.response()
        except Unavailable as exc:
            return ApiError("unavailable", str(exc)).response()

    def _dispatch(self, request: ApiRequest) -> ApiResponse:
        split = urllib.parse.urlsplit(request.target)
        path = split.path
        method = "GET" if request.method == "HEAD" else request.method
        for r in _ROUTES:
            m = r.regex.fullmatch(path)
            if m is None:
                continue
            methods = r.methods
            handler = methods.get(method)
            if handler is None:
                allowed = sorted({*methods, *(["HEAD"] if "GET" in methods else [])})
                allow = ", ".join(allowed)
                raise ApiError(
                    "method_not_allowed",
                    f"{_one_line(request.method, 20)} is not allowed on {_shown(path)} (allowed: {allow})",
                    (("Allow", allow),),
                )
            try:
                params = {k: urllib.parse.unquote(v, errors="strict") for k, v in m.groupdict().items()}
            except UnicodeDecodeError:
                raise ApiError("not_found", "the path is not UTF-8") from None
            return handler(self, request, params, split.query)
        raise ApiError("not_found", f"no endpoint {_shown(path)} (GET {PREFIX} lists them)")

    def _call(self, fn: Callable[[], T]) -> T:
        return self.bridge.call(fn, OPERATION_TIMEOUT)

    # -- about ----------------------------------------------------------------------------

    @route("", "GET")
    def index(self, request: ApiRequest, params: dict[str, str], query: str) -> ApiResponse:
        Query(query, ())
        endpoints = [f"{m} {r.path}" for r in _ROUTES for m in r.methods]
        return ApiResponse(200, {"api": PREFIX.strip("/"), "endpoints": endpoints})

    @route("/health", "GET")
    def health(self, request: ApiRequest, params: dict[str, str], query: str) -> ApiResponse:
        Query(query, ())
        broker = self.broker

        def read() -> JSON:
            totals = broker.totals()
            return {
                "status": "ok",
                "uptime_s": round(time.time() - self.started, 3),
                "totals": totals._asdict(),
                "topics": len(broker.topics()),
                "fault_rules": len(broker.faults),
                "internal_errors": len(broker.internal_errors),
                "waits": self._waits,
            }

        return ApiResponse(200, self._call(read))

    @route("/config", "GET")
    def config(self, request: ApiRequest, params: dict[str, str], query: str) -> ApiResponse:
        Query(query, ())
        broker = self.broker
        host, port = self.control_address
        return ApiResponse(
            200,
            {
                "api": PREFIX.strip("/"),
                "mega": {"host": broker.host, "port": broker.port},
                "control": {"host": host, "port": port},
                "config": views.config_view(broker.config),
                "limits": {
                    "max_body_bytes": MAX_BODY_BYTES,
                    "max_wait_ms": MAX_WAIT_MS,
                    "max_page": MAX_PAGE,
                    "page_bytes": PAGE_BYTES,
                },
                "fault_grammar": GRAMMAR,
            },
        )

    @route("/internal-errors", "GET")
    def internal_errors(self, request: ApiRequest, params: dict[str, str], query: str) -> ApiResponse:
        Query(query, ())
        return ApiResponse(200, {"internal_errors": self._call(lambda: self.broker.internal_errors)})

    # -- reset ----------------------------------------------------------------------------

    @route("/reset", "POST")
    def reset(self, request: ApiRequest, params: dict[str, str], query: str) -> ApiResponse:
        Query(query, ())
        fields = Fields(parse_json(request, required=False))
        close = fields.boolean("close_connections", False)
        fields.done()
        broker = self.broker

        async def run() -> JSON:
            dropped = await broker.drop_connections(OPERATION_TIMEOUT) if close else 0
            counts = {
                "topics": len(broker.topics()),
                "fault_rules": len(broker.faults),
                "closed_connections": sum(1 for r in broker.records() if r.closed),
                "connections_closed_now": dropped,
            }
            broker.reset()
            return {"dropped": counts}

        return ApiResponse(200, self.bridge.run(run, OPERATION_TIMEOUT * 2))

    # -- fault rules ----------------------------------------------------------------------

    def _rules(self) -> list[JSON]:
        """On the loop: every rule's view."""
        return [views.rule_view(r, i) for i, r in self._rule_ids.sync(self.broker.faults.list())]

    @route("/faults", "GET")
    def list_faults(self, request: ApiRequest, params: dict[str, str], query: str) -> ApiResponse:
        Query(query, ())
        return ApiResponse(200, {"faults": self._call(self._rules)})

    @route("/faults", "POST")
    def add_fault(self, request: ApiRequest, params: dict[str, str], query: str) -> ApiResponse:
        Query(query, ())
        if request.media_type == "text/plain" and request.body:
            try:
                text = request.body.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise ApiError("invalid_rule", "the rule is not UTF-8") from None
        else:
            text = rule_text(parse_json(request))
        rule = parse_rule(text)
        faults = self.broker.faults

        def add() -> JSON:
            faults.add(rule)
            for rule_id, r in self._rule_ids.sync(faults.list()):
                if r is rule:
                    return views.rule_view(r, rule_id)
            raise AssertionError("a rule just added is listed")  # pragma: no cover

        view = self._call(add)
        return ApiResponse(201, view, (("Location", f"{PREFIX}/faults/{view['id']}"),))

    @route("/faults", "DELETE")
    def clear_faults(self, request: ApiRequest, params: dict[str, str], query: str) -> ApiResponse:
        Query(query, ())
        faults = self.broker.faults

        def clear() -> int:
            count = len(faults)
            faults.clear()
            return count

        return ApiResponse(200, {"removed": self._call(clear)})

    @route("/faults/{rule_id}", "GET")
    def get_fault(self, request: ApiRequest, params: dict[str, str], query: str) -> ApiResponse:
        Query(query, ())
        rule_id = _id(params["rule_id"], "rule")

        def find() -> JSON:
            return views.rule_view(self._rule_ids.find(self.broker.faults.list(), rule_id), rule_id)

        return ApiResponse(200, self._call(find))

    @route("/faults/{rule_id}", "DELETE")
    def remove_fault(self, request: ApiRequest, params: dict[str, str], query: str) -> ApiResponse:
        Query(query, ())
        rule_id = _id(params["rule_id"], "rule")
        faults = self.broker.faults

        def remove() -> JSON:
            rule = self._rule_ids.find(faults.list(), rule_id)
            faults.discard(rule)
            return views.rule_view(rule, rule_id)

        return ApiResponse(200, {"removed": self._call(remove)})

    # -- topics and messages --------------------------------------------------------------

    @route("/topics", "GET")
    def list_topics(self, request: ApiRequest, params: dict[str, str], query: str) -> ApiResponse:
        Query(query, ())
        counts = self._call(self.broker.topics)
        return ApiResponse(200, {"topics": [{"name": n, "messages": c} for n, c in counts.items()]})

    @route("/topics", "POST")
    def create_topic(self, request: ApiRequest, params: dict[str, str], query: str) -> ApiResponse:
        Query(query, ())
        fields = Fields(parse_json(request))
        name = fields.string("name", required=True)
        fields.done()
        assert name is not None
        problem = topic_name_problem(name)
        if problem is not None:
            raise ApiError("invalid_topic", _one_line(problem, 300))
        broker = self.broker

        def create() -> bool:
            if broker.message_count(name) is not None:
                return False
            broker.create_topic(name)
            return True

        if not self._call(create):
            raise ApiError("topic_exists", f"topic {name!r} exists")
        quoted = urllib.parse.quote(name, safe="")
        return ApiResponse(201, {"name": name, "messages": 0}, (("Location", f"{PREFIX}/topics/{quoted}"),))

    def _count(self, topic: str) -> int:
        count = self._call(lambda: self.broker.message_count(topic))
        if count is None:
            raise ApiError("unknown_topic", f"no topic {_shown(topic)}")
        return count

    @route("/topics/{topic}", "GET")
    def get_topic(self, request: ApiRequest, params: dict[str, str], query: str) -> ApiResponse:
        Query(query, ())
        topic = params["topic"]
        return ApiResponse(200, {"name": topic, "messages": self._count(topic)})

    @route("/topics/{topic}/messages", "GET")
    def list_messages(self, request: ApiRequest, params: dict[str, str], query: str) -> ApiResponse:
        q = Query(query, ("offset", "limit"))
        offset = q.integer("offset", 0, 0, 2**31 - 1)
        limit = q.integer("limit", DEFAULT_PAGE, 1, MAX_PAGE)
        topic = params["topic"]
        broker = self.broker

        def read() -> tuple[int, list[Any]] | None:
            count = broker.message_count(topic)
            if count is None:
                return None
            return count, broker.messages(topic, min(offset, count), limit)

        got = self._call(read)
        if got is None:
            raise ApiError("unknown_topic", f"no topic {_shown(topic)}")
        count, messages = got
        page: list[JSON] = []
        size = 0
        for message in messages:
            if page and size + len(message.payload) > PAGE_BYTES:
                break
            page.append(views.message_view(message))
            size += len(message.payload)
        end = offset + len(page)
        return ApiResponse(
            200,
            {"topic": topic, "count": count, "messages": page, "next_offset": end if end < count else None},
        )

    @route("/topics/{topic}/messages", "POST")
    def produce(self, request: ApiRequest, params: dict[str, str], query: str) -> ApiResponse:
        topic = params["topic"]
        if request.media_type == "application/octet-stream":
            q = Query(query, ("timestamp",))
            payload = request.body
            timestamp = q.integer("timestamp", 0, INT64_MIN, INT64_MAX)
        else:
            Query(query, ())
            payload, timestamp = _message_from_json(parse_json(request))
        if len(payload) > self.broker.config.max_payload_bytes:
            raise ApiError(
                "invalid_request",
                f"the payload is {len(payload)} bytes, over max_payload_bytes ({self.broker.config.max_payload_bytes})",
            )
        broker = self.broker

        def append() -> int | None:
            if broker.message_count(topic) is None:
                return None
            return broker.produce(topic, payload, timestamp)

        offset = self._call(append)
        if offset is None:
            raise ApiError("unknown_topic", f"no topic {_shown(topic)}")
        return ApiResponse(201, {"topic": topic, "offset": offset, "timestamp": timestamp, "size": len(payload)})

    # -- connections ----------------------------------------------------------------------

    @route("/connections", "GET")
    def list_connections(self, request: ApiRequest, params: dict[str, str], query: str) -> ApiResponse:
        q = Query(query, ("state", "after", "limit", "transcript"))
        state = q.choice("state", ("all", "open", "closed"))
        after = q.integer("after", 0, 0, 2**63)
        limit = q.integer("limit", DEFAULT_PAGE, 1, MAX_PAGE)
        transcript = q.boolean("transcript")
        broker = self.broker

        def select() -> tuple[list[ConnectionRecord], bool]:
            page: list[ConnectionRecord] = []
            size = 0
            for record in broker.records():
                if record.id <= after or (state == "open" and record.closed):
                    continue
                if state == "closed" and not record.closed:
                    continue
                full = len(page) >= limit or (transcript and page and size + record.kept_bytes > PAGE_BYTES)
                if full:
                    return page, True
                page.append(record.snapshot() if transcript else record)
                size += record.kept_bytes
            return page, False

        def summaries() -> tuple[list[JSON], bool]:
            page, more = select()
            return [views.record_summary(r) for r in page], more

        if transcript:
            records, more = self._call(select)
            max_payload = broker.config.max_payload_bytes
            shown = [views.record_detail(r, max_payload) for r in records]
        else:
            shown, more = self._call(summaries)
        next_after = shown[-1]["id"] if more and shown else None
        return ApiResponse(200, {"connections": shown, "next_after": next_after})

    @route("/connections/{conn_id}", "GET")
    def get_connection(self, request: ApiRequest, params: dict[str, str], query: str) -> ApiResponse:
        Query(query, ())
        conn_id = _id(params["conn_id"], "connection")
        broker = self.broker

        def snapshot() -> ConnectionRecord | None:
            try:
                return broker.record(conn_id).snapshot()
            except KeyError:
                return None

        record = self._call(snapshot)
        if record is None:
            raise ApiError("unknown_connection", f"no connection {conn_id} (GET {PREFIX}/connections lists them)")
        return ApiResponse(200, views.record_detail(record, broker.config.max_payload_bytes))

    # -- waiting --------------------------------------------------------------------------

    @route("/wait", "POST")
    def wait(self, request: ApiRequest, params: dict[str, str], query: str) -> ApiResponse:
        Query(query, ())
        body = parse_json(request)
        fields = Fields(body)
        kind = fields.string("for", required=True, max_length=64)
        timeout_ms = fields.integer("timeout_ms", 0, MAX_WAIT_MS)
        timeout = (DEFAULT_WAIT_MS if timeout_ms is None else timeout_ms) / 1000
        make = _condition_reader(kind, fields)
        fields.done()
        broker = self.broker

        async def run() -> cond.Outcome:
            condition = make(self._rule_ids, broker)
            self._waits += 1
            try:
                return await cond.wait_for(broker, condition, timeout)
            finally:
                self._waits -= 1

        outcome = self.bridge.run(run, timeout + OPERATION_TIMEOUT)
        echo = {k: body[k] for k in body if k != "timeout_ms"}
        return ApiResponse(
            200,
            {
                "met": outcome.met,
                "condition": echo,
                "observed": outcome.observed,
                "waited_ms": round(outcome.waited * 1000, 3),
            },
        )


ConditionMaker = Callable[[RuleIds, "MockBroker"], cond.Condition]

#: The kinds of condition ``POST /v1/wait`` knows.
WAIT_KINDS = (
    "requests",
    "bytes_received",
    "connections_open",
    "connections_closed",
    "connection_closed",
    "messages",
    "fault_fired",
)


def _condition_reader(kind: str | None, fields: Fields) -> ConditionMaker:
    """Read the condition's fields now (off the loop); what makes it, on the loop, from the result."""
    big = 2**63
    fixed: cond.Condition
    if kind == "requests":
        fixed = cond.Requests(fields.need_integer("at_least", 0, big), fields.integer("connection", 1, big))
    elif kind == "bytes_received":
        fixed = cond.BytesReceived(fields.need_integer("at_least", 0, big), fields.integer("connection", 1, big))
    elif kind == "connections_open":
        fixed = cond.ConnectionsOpen(fields.need_integer("count", 0, big))
    elif kind == "connections_closed":
        fixed = cond.ConnectionsClosed(fields.need_integer("at_least", 0, big))
    elif kind == "connection_closed":
        fixed = cond.ConnectionClosed(fields.need_integer("connection", 1, big))
    elif kind == "messages":
        topic = fields.string("topic", required=True, max_length=1024)
        assert topic is not None
        fixed = cond.Messages(topic, fields.need_integer("at_least", 0, big))
    elif kind == "fault_fired":
        rule_id = fields.need_integer("fault", 1, big)
        at_least = fields.integer("at_least", 1, big) or 1
        # The rule is looked up on the loop, where the rules live.
        return lambda ids, broker: cond.FaultFired(ids.find(broker.faults.list(), rule_id), at_least)
    else:
        raise ApiError("invalid_request", f"unknown condition {_shown(kind)} (one of {', '.join(WAIT_KINDS)})")
    return lambda ids, broker: fixed


def _message_from_json(body: JSON) -> tuple[bytes, int]:
    """A message to store, from ``payload_base64``, ``payload_hex`` or ``payload_text`` and ``timestamp``."""
    fields = Fields(body)
    given = [n for n in ("payload_base64", "payload_hex", "payload_text") if fields.has(n)]
    if len(given) != 1:
        raise ApiError("invalid_request", "give exactly one of payload_base64, payload_hex, payload_text")
    text = fields.string(given[0], required=True, max_length=MAX_BODY_BYTES)
    assert text is not None
    timestamp = fields.integer("timestamp", INT64_MIN, INT64_MAX) or 0
    fields.done()
    try:
        if given[0] == "payload_base64":
            payload = base64.b64decode(text, validate=True)
        elif given[0] == "payload_hex":
            payload = bytes.fromhex(text)
        else:
            payload = text.encode("utf-8")
    except (ValueError, binascii.Error):
        raise ApiError("invalid_request", f"{given[0]} does not decode") from None
    return payload, timestamp


def status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
