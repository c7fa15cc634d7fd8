"""mega_client: a small Python client for the MEGA message broker, blocking and asyncio.

::

    from mega_client import MessageClient

    with MessageClient("localhost", 8080) as client:
        client.create_topic("test-topic")
        produced = client.produce("test-topic", "Hello, MEGA!")
        consumed = client.consume("test-topic", produced.offset)
        print(consumed.text)

The public API, all importable from ``mega_client``:

Clients
    :class:`MessageClient` (blocking) and :class:`AsyncMessageClient` (asyncio:
    the same methods, awaited, with many requests in flight on one connection).
Results
    :class:`TopicCreated`, :class:`Produced` and :class:`Consumed`.
Errors
    :class:`MegaError` and its subclasses (the tree is in :mod:`mega_client.errors`),
    and :class:`ErrorCode`, the protocol's error codes.
Retries
    :class:`RetryPolicy` and ``NO_RETRY``.

Other public modules: :mod:`mega_client.errors`, :mod:`mega_client.protocol`
(the sans-IO codec the clients, the mock broker and the conformance suite
use) and ``python -m mega_client.conformance_driver``.

The names are loaded on first use (PEP 562), so that ``import
mega_client.protocol`` loads neither client, nor socket nor asyncio.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on demand
    from . import errors as errors
    from . import protocol as protocol
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

_ERRORS = ".errors"

#: Each public name and the module that defines it.
_EXPORTS: dict[str, str] = {
    "AsyncMessageClient": "._async",
    "MessageClient": "._sync",
    "Consumed": "._results",
    "Produced": "._results",
    "TopicCreated": "._results",
    "NO_RETRY": "._retry",
    "RetryPolicy": "._retry",
    "ErrorCode": ".protocol",
    "BrokerError": _ERRORS,
    "BrokerInternalError": _ERRORS,
    "BrokerNetworkError": _ERRORS,
    "ClientStateError": _ERRORS,
    "ConnectionClosedByBroker": _ERRORS,
    "InvalidMessageTypeError": _ERRORS,
    "InvalidOffsetError": _ERRORS,
    "InvalidRequestError": _ERRORS,
    "InvalidTopicNameError": _ERRORS,
    "MegaConnectionError": _ERRORS,
    "MegaError": _ERRORS,
    "MegaProtocolError": _ERRORS,
    "MegaTimeoutError": _ERRORS,
    "MessageTooLargeError": _ERRORS,
    "PayloadTooLargeError": _ERRORS,
    "ResourceExhaustedError": _ERRORS,
    "TopicAlreadyExistsError": _ERRORS,
    "TopicNotFoundError": _ERRORS,
    "ValidationError": _ERRORS,
}

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


#: Public submodules, reachable as attributes (``mega_client.errors.MegaError``) once loaded.
_SUBMODULES = frozenset(("errors", "protocol"))


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
