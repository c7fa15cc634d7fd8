"""The pytest plugin: fixtures, indirect parametrization, the pytest11 entry point."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

import pytest

from mock_broker import BrokerConfig, ThreadedMockBroker

from ._mb_support import RawClient, create, create_ok


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


def test_factory_stops_everything_at_teardown(mega_broker_factory):
    a = mega_broker_factory(profile="reference", idle_timeout=1)
    b = mega_broker_factory()
    assert a.config.profile == "reference"
    assert a.config.idle_timeout == 1
    assert a.port != b.port


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
