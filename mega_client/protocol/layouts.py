"""Every frame layout of docs/PROTOCOL.md sections 3 and 4, and the sizes and offsets they imply.

The only place in the project where MEGA frames are described as bytes: the
readers and writers of this package, and anything that must touch a field of
an encoded frame (the mock broker's fault injection, the benchmark's byte
counting), take their layouts from here.
"""

from __future__ import annotations

import struct

# -- requests: head | topic | tail | payload -------------------------------------------
#: correlation_id i32, message_type u8, topic_length i32
REQUEST_HEAD = struct.Struct(">iBi")
#: timestamp i64, payload_length i32 (PRODUCE and CREATE_TOPIC)
REQUEST_TAIL = struct.Struct(">qi")
#: timestamp i64, offset i32, payload_length i32 (CONSUME)
CONSUME_REQUEST_TAIL = struct.Struct(">qii")
#: The correlation id alone: the first field of every frame, both directions.
CORRELATION_ID = struct.Struct(">i")
#: Where the message_type byte of a request is.
MESSAGE_TYPE_AT = 4

#: Bytes of a request around its topic and payload.
REQUEST_FIXED_BYTES = REQUEST_HEAD.size + REQUEST_TAIL.size
CONSUME_REQUEST_FIXED_BYTES = REQUEST_HEAD.size + CONSUME_REQUEST_TAIL.size

# -- responses: correlation_id i32, success i8, then by success and request type ---------
RESPONSE_HEAD = struct.Struct(">ib")
#: success 0: error_code i8
ERROR_RESPONSE = struct.Struct(">ibb")
#: CREATE_TOPIC, success 1: timestamp i64, topic_len u16, then the topic
CREATE_TOPIC_OK_HEAD = struct.Struct(">ibqH")
#: PRODUCE, success 1: timestamp i64, offset i32
PRODUCE_OK = struct.Struct(">ibqi")
#: CONSUME, success 1: timestamp i64, next_offset i32, payload_length i32, then the payload
CONSUME_OK_HEAD = struct.Struct(">ibqii")

#: Where the success byte of a response is.
SUCCESS_AT = 4
