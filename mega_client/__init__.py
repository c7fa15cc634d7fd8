"""mega_client: a small Python client for the MEGA message broker, blocking and asyncio.

::

    from mega_client import MessageClient

    with MessageClient("localhost", 8080) as client:
        client.create_topic("test-topic")
        produced = client.produce("test-topic", "Hello, MEGA!")
        consumed = client.consume("test-topic", produced.offset)
        print(consumed.text)

:class:`MessageClient` is the blocking client, :class:`AsyncMessageClient`
the asyncio one (same methods, awaited, with pipelining). Results are
:class:`TopicCreated`, :class:`Produced` and :class:`Consumed`; failures are
:class:`MegaError` subclasses (:mod:`mega_client.errors`); retries follow a
:class:`RetryPolicy`. The wire codec they use is :mod:`mega_client.protocol`.
"""

from ._async import AsyncMessageClient
from ._results import Consumed, Produced, TopicCreated
from ._retry import NO_RETRY, RetryPolicy
from ._sync import MessageClient
from .errors import (
    BrokerError,
    BrokerInternalError,
    BrokerNetworkError,
    ClientStateError,
    ConnectionClosedByBroker,
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
from .protocol import ErrorCode

__all__ = [
    "NO_RETRY",
    "AsyncMessageClient",
    "BrokerError",
    "BrokerInternalError",
    "BrokerNetworkError",
    "ClientStateError",
    "ConnectionClosedByBroker",
    "Consumed",
    "ErrorCode",
    "InvalidMessageTypeError",
    "InvalidOffsetError",
    "InvalidRequestError",
    "InvalidTopicNameError",
    "MegaConnectionError",
    "MegaError",
    "MegaProtocolError",
    "MegaTimeoutError",
    "MessageClient",
    "MessageTooLargeError",
    "PayloadTooLargeError",
    "Produced",
    "ResourceExhaustedError",
    "RetryPolicy",
    "TopicAlreadyExistsError",
    "TopicCreated",
    "TopicNotFoundError",
    "ValidationError",
]
