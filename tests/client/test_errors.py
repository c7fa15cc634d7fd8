"""The exception hierarchy: classes, codes, names, pickling."""

from __future__ import annotations

import pickle

import pytest

import mega_client
from mega_client import (
    BrokerError,
    BrokerInternalError,
    BrokerNetworkError,
    ClientStateError,
    ConnectionClosedByBroker,
    ErrorCode,
    InvalidMessageTypeError,
    InvalidOffsetError,
    InvalidRequestError,
    InvalidTopicNameError,
    MegaConnectionError,
    MegaError,
    MegaProtocolError,
    MegaTimeoutError,
    MessageTooLargeError,
    PayloadTooLargeError,
    ResourceExhaustedError,
    TopicAlreadyExistsError,
    TopicNotFoundError,
    ValidationError,
)
from mega_client.protocol import RemoteProtocolError

BY_CODE = {
    ErrorCode.INVALID_REQUEST: InvalidRequestError,
    ErrorCode.INVALID_MESSAGE_TYPE: InvalidMessageTypeError,
    ErrorCode.MESSAGE_TOO_LARGE: MessageTooLargeError,
    ErrorCode.TOPIC_NOT_FOUND: TopicNotFoundError,
    ErrorCode.TOPIC_ALREADY_EXISTS: TopicAlreadyExistsError,
    ErrorCode.INVALID_OFFSET: InvalidOffsetError,
    ErrorCode.INTERNAL_ERROR: BrokerInternalError,
    ErrorCode.NETWORK_ERROR: BrokerNetworkError,
    ErrorCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
}


def test_every_error_code_has_its_own_class() -> None:
    assert set(BY_CODE) == set(ErrorCode)
    assert len(set(BY_CODE.values())) == len(ErrorCode)


@pytest.mark.parametrize(("code", "cls"), BY_CODE.items(), ids=[c.name for c in BY_CODE])
def test_for_code_builds_the_subclass(code: ErrorCode, cls: type[BrokerError]) -> None:
    exc = BrokerError.for_code(int(code), 17)
    assert type(exc) is cls
    assert isinstance(exc, BrokerError)
    assert isinstance(exc, MegaError)
    assert exc.code == code
    assert isinstance(exc.code, ErrorCode)
    assert exc.code_name == code.name
    assert exc.correlation_id == 17
    assert cls.default_code == code
    assert code.name in str(exc)
    assert "17" in str(exc)


def test_unknown_code_is_a_plain_broker_error() -> None:
    exc = BrokerError.for_code(42, 3)
    assert type(exc) is BrokerError
    assert exc.code == 42
    assert exc.code_name == "UNKNOWN_42"
    assert exc.correlation_id == 3


def test_builtin_bases_let_callers_catch_by_kind() -> None:
    assert issubclass(MegaConnectionError, ConnectionError)
    assert issubclass(ConnectionClosedByBroker, MegaConnectionError)
    assert issubclass(MegaTimeoutError, TimeoutError)
    assert issubclass(ClientStateError, RuntimeError)
    assert issubclass(ValidationError, ValueError)
    assert issubclass(InvalidTopicNameError, ValidationError)
    assert issubclass(PayloadTooLargeError, ValidationError)
    for cls in (MegaConnectionError, MegaTimeoutError, MegaProtocolError, ClientStateError, ValidationError):
        assert issubclass(cls, MegaError)
        assert not issubclass(cls, BrokerError)
    # The four kinds a caller must tell apart (PROTOCOL.md CLIENT-15) are disjoint.
    kinds = (BrokerError, MegaConnectionError, MegaTimeoutError, MegaProtocolError)
    for a in kinds:
        for b in kinds:
            assert (a is b) == issubclass(a, b)


def test_connection_closed_by_broker_carries_the_code() -> None:
    exc = ConnectionClosedByBroker(8)
    assert exc.code == ErrorCode.NETWORK_ERROR
    assert exc.code_name == "NETWORK_ERROR"
    assert exc.request_sent is True
    assert "NETWORK_ERROR" in str(exc)


def test_protocol_error_wraps_the_codec_error() -> None:
    codec = RemoteProtocolError("bad flag", reason="bad-success-flag", correlation_id=5)
    exc = MegaProtocolError.from_codec(codec)
    assert exc.reason == "bad-success-flag"
    assert exc.correlation_id == 5
    assert "bad flag" in str(exc)


@pytest.mark.parametrize(
    "exc",
    [
        TopicNotFoundError(4, 9),
        BrokerError(42, None),
        MegaConnectionError("reset", request_sent=True),
        ConnectionClosedByBroker(8),
        MegaTimeoutError("slow", request_sent=True),
        MegaProtocolError("bad", reason="bad-success-flag", correlation_id=3),
        ClientStateError("closed"),
        InvalidTopicNameError("bad name"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_exceptions_pickle(exc: MegaError) -> None:
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is type(exc)
    assert str(copy) == str(exc)
    assert vars(copy) == vars(exc)


def test_everything_is_exported() -> None:
    for name in mega_client.errors.__all__:
        assert getattr(mega_client, name) is getattr(mega_client.errors, name)


def _sample(cls: type[MegaError]) -> MegaError:
    """An instance of ``cls`` with every attribute set to something other than its default."""
    if issubclass(cls, BrokerError):
        return cls(cls.default_code if cls.default_code is not None else 42, 7)
    if cls is ConnectionClosedByBroker:
        return ConnectionClosedByBroker(8, request_sent=False)
    if issubclass(cls, (MegaConnectionError, MegaTimeoutError)):
        return cls("lost", request_sent=True)
    if cls is MegaProtocolError:
        return MegaProtocolError("bad", reason="bad-success-flag", correlation_id=3)
    return cls("message")


@pytest.mark.parametrize(
    "cls",
    [getattr(mega_client.errors, name) for name in mega_client.errors.__all__],
    ids=list(mega_client.errors.__all__),
)
def test_every_exception_class_pickles(cls: type[MegaError]) -> None:
    exc = _sample(cls)
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is cls
    assert (copy.args, str(copy), vars(copy)) == (exc.args, str(exc), vars(exc))
    assert vars(copy) or cls in (MegaError, ClientStateError) or issubclass(cls, ValidationError)


def test_from_codec_sets_the_codec_error_as_cause() -> None:
    codec = RemoteProtocolError("bad flag", reason="bad-success-flag", correlation_id=5)
    assert MegaProtocolError.from_codec(codec).__cause__ is codec
