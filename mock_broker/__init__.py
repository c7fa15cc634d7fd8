"""An in-process asyncio MEGA broker for tests and local development.

::

    from mock_broker import MockBroker, ThreadedMockBroker, BrokerConfig

    async with MockBroker(port=0) as broker:          # asyncio tests
        ...
    with ThreadedMockBroker(port=0, profile="reference") as broker:   # sync tests
        ...

Also: the ``mega-mock-broker`` command (``python -m mock_broker --help``), its HTTP/JSON
control API for test suites in any language (``--control-port``; :class:`ControlServer`), and
the pytest fixtures ``mega_broker`` / ``mega_broker_factory`` (:mod:`mock_broker.pytest_plugin`).

How it answers, per request, in this order (profile ``spec``; ``reference`` in brackets):

1. a frame the decoder cannot follow: an unknown message_type is answered
   INVALID_MESSAGE_TYPE, a negative topic or payload length or a topic_length
   over 255 INVALID_REQUEST, both with the request's correlation id, and the
   connection is closed [closed with no answer; a topic_length over 255 is
   waited for (skipped as it arrives) and answered as a bad name, unless the JVM
   could not allocate it];
2. payload_length over ``max_payload_bytes``: MESSAGE_TOO_LARGE as soon as the
   length is read [once the whole payload has arrived]; the payload is skipped
   as it arrives, the connection stays usable;
3. a topic that is not UTF-8 or breaks the name rules: INVALID_REQUEST
   [CREATE_TOPIC: INTERNAL_ERROR; PRODUCE/CONSUME: TOPIC_NOT_FOUND];
4. PRODUCE/CONSUME on a missing topic: TOPIC_NOT_FOUND; CREATE_TOPIC of an
   existing one: TOPIC_ALREADY_EXISTS;
5. CONSUME offset < 0 or >= count: INVALID_OFFSET; PRODUCE to a topic holding
   ``max_messages_per_topic`` [INTERNAL_ERROR], or CREATE_TOPIC with
   ``max_topics`` topics: RESOURCE_EXHAUSTED.

A connection silent for ``idle_timeout`` seconds gets ``00 00 00 00 00 08``
(NETWORK_ERROR, correlation id 0) and is closed. Neither profile copies the
reference broker's capacity defects (O(offset) CONSUME, no TCP_NODELAY, its
offset race); its pool of 10 connections is the option ``connection_pool``.

Fault injection: ``broker.faults.add("produce:error=RESOURCE_EXHAUSTED:every=10")``,
``with broker.faults.applied("any:silent"): ...``; the rule grammar is in
:mod:`mock_broker._faults` (and ``mega-mock-broker --help``).

Inside, a connection is a sans-IO core (:mod:`mock_broker._connection`: bytes in,
output steps out), the answers of section 5.2 (:mod:`mock_broker._answers`), a
pure fault planner (:mod:`mock_broker._planner`), an output scheduler for what
faults delay (:mod:`mock_broker._output`) and a thin asyncio protocol
(:mod:`mock_broker._protocol`); mock_broker/README.md says where to change what.
"""

import importlib
from typing import TYPE_CHECKING, Any

from ._config import BrokerConfig, Profile
from ._faults import FaultRegistry, FaultRule, FaultRuleError
from ._record import AppliedFault, ConnectionRecord
from ._server import MockBroker
from ._storage import StoredMessage
from ._threaded import ThreadedMockBroker

if TYPE_CHECKING:
    from ._control_http import ControlServer


def __getattr__(name: str) -> Any:
    # The control API's HTTP server is imported when asked for: tests that only use the
    # broker from Python do not load http.server.
    if name == "ControlServer":
        return importlib.import_module("._control_http", __name__).ControlServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AppliedFault",
    "BrokerConfig",
    "ConnectionRecord",
    "ControlServer",
    "FaultRegistry",
    "FaultRule",
    "FaultRuleError",
    "MockBroker",
    "Profile",
    "StoredMessage",
    "ThreadedMockBroker",
]
