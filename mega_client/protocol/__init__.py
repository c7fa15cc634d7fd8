"""The sans-IO MEGA codec: frames, encoders and incremental decoders.

No sockets and no event loop here (the h11/wsproto style): callers feed bytes
in and take frames out, and write the bytes the encoders return. Everything
in this project that packs or unpacks a MEGA frame goes through this package,
and importing it loads neither client nor asyncio. The wire format is
specified in docs/PROTOCOL.md.

The public API, all importable from ``mega_client.protocol``:

Frames (small frozen dataclasses)
    ``CreateTopicRequest``, ``ProduceRequest``, ``ConsumeRequest`` (``Request``
    is their union); ``ErrorResponse``, ``CreateTopicResponse``,
    ``ProduceResponse``, ``ConsumeResponse`` (``Response``); the broker's
    ``UnsolicitedError`` notice (``ResponseEvent`` is ``Response`` or it).
    ``RequestFields`` and ``request_from_fields``: a request as a plain tuple,
    for a broker's hot loop.
Numbers
    ``MessageType``, ``ErrorCode``, and ``code_name(code)``: the protocol's name
    for an error code (``"TOPIC_NOT_FOUND"``, or ``"UNKNOWN_<n>"``).
Encoding
    ``encode_request`` and ``encode_response`` for any frame; the broker's
    ``encode_error``, ``encode_create_topic_ok``, ``encode_produce_ok`` and
    ``encode_consume_ok``.
Decoding
    ``RequestDecoder`` (a broker's incoming bytes to requests) and
    ``ResponseDecoder`` (a client's incoming bytes to responses, given the
    requests it sent, in order).
A client's connection
    ``ClientConnection``: ``send(request)`` gives the bytes and records the
    request as pending, ``receive_data(bytes)`` and ``next_event()`` give each
    ``Answer`` (a request and its response) and then how the connection ended:
    ``UnsolicitedFrame``, ``EndOfStream`` or ``ProtocolViolation``
    (``ConnectionEvent`` is their union). It numbers the requests and tracks
    the connection's ``ConnectionState``. The clients of ``mega_client`` are
    this plus a socket.
Errors
    ``ProtocolError``, the base of ``RemoteProtocolError`` (the peer's bytes
    break the spec) and ``LocalProtocolError`` (we were asked to send something
    the wire cannot carry, or on a connection that has ended).
Modules
    ``layouts``: each frame's struct format, size and field offsets, for code
    that must touch an encoded frame. ``limits``: the protocol's limits (payload
    and topic sizes, the integer bounds of its fields, the default port, the
    idle timeout) and the topic name rules (``topic_name_problem``,
    ``is_valid_topic_name``).
"""

from . import layouts, limits
from ._codes import ErrorCode, MessageType, code_name
from ._connection import (
    Answer,
    ClientConnection,
    ConnectionEvent,
    ConnectionState,
    EndOfStream,
    ProtocolViolation,
    UnsolicitedFrame,
)
from ._errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from ._events import (
    ConsumeRequest,
    ConsumeResponse,
    CreateTopicRequest,
    CreateTopicResponse,
    ErrorResponse,
    ProduceRequest,
    ProduceResponse,
    Request,
    RequestFields,
    Response,
    ResponseEvent,
    UnsolicitedError,
    request_from_fields,
)
from ._readers import RequestDecoder, ResponseDecoder
from ._writers import (
    encode_consume_ok,
    encode_create_topic_ok,
    encode_error,
    encode_produce_ok,
    encode_request,
    encode_response,
)

__all__ = [
    "Answer",
    "ClientConnection",
    "ConnectionEvent",
    "ConnectionState",
    "ConsumeRequest",
    "ConsumeResponse",
    "CreateTopicRequest",
    "CreateTopicResponse",
    "ErrorCode",
    "EndOfStream",
    "ErrorResponse",
    "LocalProtocolError",
    "MessageType",
    "ProduceRequest",
    "ProduceResponse",
    "ProtocolError",
    "ProtocolViolation",
    "RemoteProtocolError",
    "Request",
    "RequestDecoder",
    "RequestFields",
    "Response",
    "ResponseDecoder",
    "ResponseEvent",
    "UnsolicitedError",
    "UnsolicitedFrame",
    "code_name",
    "encode_consume_ok",
    "encode_create_topic_ok",
    "encode_error",
    "encode_produce_ok",
    "encode_request",
    "encode_response",
    "layouts",
    "limits",
    "request_from_fields",
]
