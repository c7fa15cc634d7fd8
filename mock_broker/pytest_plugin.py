"""pytest fixtures for the mock broker, registered through the ``pytest11`` entry point.

``mega_broker``
    A fresh :class:`ThreadedMockBroker` on an ephemeral port for each test (so it
    is safe under pytest-xdist), stopped after the test. Parametrize it
    indirectly with a dict of :class:`BrokerConfig` fields or a profile name::

        @pytest.mark.parametrize("mega_broker", ["spec", "reference"], indirect=True)
        def test_x(mega_broker): ...

``mega_broker_factory``
    ``factory(**config_fields) -> ThreadedMockBroker``, started; every broker it
    made is stopped at teardown.

In asyncio tests use :class:`MockBroker` directly:
``async with MockBroker(port=0) as broker: ...``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ._threaded import ThreadedMockBroker

BrokerFactory = Callable[..., ThreadedMockBroker]


def _options(param: object) -> dict[str, Any]:
    if param is None:
        return {}
    if isinstance(param, str):
        return {"profile": param}
    if isinstance(param, dict):
        return dict(param)
    raise TypeError(f"mega_broker takes a profile name or a dict of BrokerConfig fields, not {param!r}")


@pytest.fixture
def mega_broker_factory() -> Iterator[BrokerFactory]:
    """Start brokers with custom limits or profile; all are stopped at teardown."""
    started: list[ThreadedMockBroker] = []

    def factory(**options: Any) -> ThreadedMockBroker:
        options.setdefault("port", 0)
        broker = ThreadedMockBroker(**options)
        broker.start()
        started.append(broker)
        return broker

    try:
        yield factory
    finally:
        for broker in reversed(started):
            broker.stop()


@pytest.fixture
def mega_broker(request: pytest.FixtureRequest, mega_broker_factory: BrokerFactory) -> ThreadedMockBroker:
    """A fresh mock broker on an ephemeral port, in a background thread."""
    return mega_broker_factory(**_options(getattr(request, "param", None)))
