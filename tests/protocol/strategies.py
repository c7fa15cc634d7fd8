"""Hypothesis strategies for every frame kind, within the wire's field ranges."""

from __future__ import annotations

import itertools

from hypothesis import strategies as st

from mega_client.protocol import (
    ConsumeRequest,
    ConsumeResponse,
    CreateTopicRequest,
    CreateTopicResponse,
    ErrorCode,
    ErrorResponse,
    MessageType,
    ProduceRequest,
    ProduceResponse,
    Request,
    Response,
)
from mega_client.protocol.limits import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, MAX_TOPIC_BYTES

int32s = st.integers(INT32_MIN, INT32_MAX)
int64s = st.integers(INT64_MIN, INT64_MAX)
# Any encodable text whose UTF-8 fits the topic limit: the codec carries names, the broker judges them.
topics = st.text(st.characters(exclude_categories=["Cs"]), max_size=MAX_TOPIC_BYTES).filter(
    lambda t: len(t.encode()) <= MAX_TOPIC_BYTES
)
payloads = st.binary(max_size=512)
error_codes = st.sampled_from(list(ErrorCode)) | st.integers(-128, 127)

requests: st.SearchStrategy[Request] = st.one_of(
    st.builds(CreateTopicRequest, int32s, topics, int64s, payloads),
    st.builds(ProduceRequest, int32s, topics, int64s, payloads),
    st.builds(ConsumeRequest, int32s, topics, int64s, int32s, payloads),
)

# Each response with the request type it answers (responses carry no type of their own).
answered_responses: st.SearchStrategy[tuple[MessageType, Response]] = st.one_of(
    st.tuples(
        st.sampled_from(list(MessageType)),
        # `00 00 00 00 00 08` is the unsolicited notice, never an answer (RESP-7).
        st.builds(ErrorResponse, int32s, error_codes).filter(lambda r: (r.correlation_id, r.error_code) != (0, 8)),
    ),
    st.tuples(
        st.just(MessageType.CREATE_TOPIC),
        st.builds(CreateTopicResponse, int32s, int64s, topics),
    ),
    st.tuples(st.just(MessageType.PRODUCE), st.builds(ProduceResponse, int32s, int64s, int32s)),
    st.tuples(
        st.just(MessageType.CONSUME),
        st.builds(ConsumeResponse, int32s, int64s, int32s, payloads),
    ),
)


@st.composite
def splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut into chunks at arbitrary points (empty chunks included)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]
