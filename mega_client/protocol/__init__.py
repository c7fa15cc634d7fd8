"""The sans-IO MEGA codec: frames, encoders and incremental decoders.

No sockets and no event loop here (the h11/wsproto style): callers feed bytes
in and take frames out, and write the bytes the encoders return. Everything
in this project that packs or unpacks a MEGA frame goes through this package.
The wire format is specified in docs/PROTOCOL.md; ``layouts`` holds each frame's
struct format, size and field offsets, for code that must touch an encoded frame.
"""

from . import _layouts as layouts
from ._codes import ErrorCode, MessageType, error_code_or_int, error_name
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
from ._limits import (
    DEFAULT_PORT,
    IDLE_TIMEOUT_SECONDS,
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    MAX_MESSAGES_PER_TOPIC,
    MAX_PAYLOAD_BYTES,
    MAX_TOPIC_BYTES,
    UINT16_MAX,
    UNSOLICITED_CORRELATION_ID,
    is_valid_topic_name,
    topic_name_problem,
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
    "DEFAULT_PORT",
    "IDLE_TIMEOUT_SECONDS",
    "INT32_MAX",
    "INT32_MIN",
    "INT64_MAX",
    "INT64_MIN",
    "MAX_MESSAGES_PER_TOPIC",
    "MAX_PAYLOAD_BYTES",
    "MAX_TOPIC_BYTES",
    "UINT16_MAX",
    "UNSOLICITED_CORRELATION_ID",
    "ConsumeRequest",
    "ConsumeResponse",
    "CreateTopicRequest",
    "CreateTopicResponse",
    "ErrorCode",
    "ErrorResponse",
    "LocalProtocolError",
    "MessageType",
    "ProduceRequest",
    "ProduceResponse",
    "ProtocolError",
    "RemoteProtocolError",
    "Request",
    "RequestFields",
    "RequestDecoder",
    "Response",
    "ResponseDecoder",
    "ResponseEvent",
    "UnsolicitedError",
    "encode_consume_ok",
    "encode_create_topic_ok",
    "encode_error",
    "encode_produce_ok",
    "encode_request",
    "encode_response",
    "error_code_or_int",
    "error_name",
    "is_valid_topic_name",
    "layouts",
    "request_from_fields",
    "topic_name_problem",
]
