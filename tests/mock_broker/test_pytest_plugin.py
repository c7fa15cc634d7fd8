"""The pytest plugin: fixtures, indirect parametrization, the pytest11 entry point."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

import pytest

from mock_broker import BrokerConfig, ThreadedMockBroker

from ._raw import RawClient, create, create_ok


def test_mega_broker_fixture_is_fresh_and_usable(mega_broker):
    assert isinstance(mega_broker, ThreadedMockBroker)
    assert mega_broker.topics() == {}
    with RawClient(mega_broker.address) as c:
        c.send(create(1, "t"))
        c.expect_bytes(create_ok(1, "t"))


@pytest.mark.parametrize(
    ("mega_broker", "profile", "max_topics"),
    [("reference", "reference", BrokerConfig().max_topics), ({"max_topics": 1, "profile": "spec"}, "spec", 1)],
    indirect=["mega_broker"],
)
def test_mega_broker_indirect_parametrization(mega_broker, profile, max_topics):
    assert mega_broker.profile == profile
    assert mega_broker.config.max_topics == max_topics


@pytest.fixture
def stopped_after_teardown():
    """Brokers that must be stopped once the fixtures a test requests after this one are torn down: pytest tears
    fixtures down in the reverse order of their set-up, so this teardown runs after theirs."""
    brokers: list[ThreadedMockBroker] = []
    yield brokers
    for broker in brokers:
        address = broker.address
        try:
            broker.topics()
        except RuntimeError:  # "broker not started": its thread and loop are gone
            pass
        else:
            pytest.fail(f"the broker at {address} still runs after the fixture's teardown")
        try:
            socket.create_connection(address, timeout=5).close()
        except ConnectionRefusedError:
            pass
        else:
            pytest.fail(f"{address} still accepts connections after the fixture's teardown")


def test_factory_stops_everything_at_teardown(stopped_after_teardown, mega_broker_factory):
    a = mega_broker_factory(profile="reference", idle_timeout=1)
    b = mega_broker_factory()
    assert a.config.profile == "reference"
    assert a.config.idle_timeout == 1
    assert a.port != b.port
    for broker in (a, b):  # running now, and listening
        assert broker.topics() == {}
        socket.create_connection(broker.address, timeout=5).close()
    stopped_after_teardown += [a, b]


def test_entry_point_loads_the_fixtures_in_a_fresh_pytest(tmp_path):
    eps = [ep for ep in entry_points(group="pytest11") if ep.name == "mega_broker"]
    if not eps:
        pytest.skip("package not installed: no pytest11 entry point to load")
    assert eps[0].value == "mock_broker.pytest_plugin"
    (tmp_path / "test_uses_fixture.py").write_text(
        textwrap.dedent(
            """
            import socket
            def test_it(mega_broker, mega_broker_factory):
                other = mega_broker_factory(profile="reference")
                socket.create_connection(mega_broker.address).close()
                assert other.profile == "reference"
            """
        )
    )
    res = subprocess.run(  # noqa: PLW1510
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr
