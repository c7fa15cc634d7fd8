"""ControlServer beside a MockBroker started from Python: one broker, seen through both windows."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from mock_broker import ControlServer, MockBroker
from mock_broker._control_api import ERROR_CODES

from ._control_support import Api
from ._raw import create_ok, raw_frame

ROOT = Path(__file__).resolve().parents[2]


def test_what_python_does_http_sees_and_the_other_way_round():
    async def main() -> None:
        async with MockBroker(port=0) as broker:
            control = await ControlServer(broker, port=0).start()
            api = Api(control.url)
            call = asyncio.get_running_loop().run_in_executor
            try:
                assert control.url == f"http://127.0.0.1:{control.port}/v1"
                rule = broker.faults.add("consume:delay=5")
                listed = await call(None, api.ok, "GET", "/faults")
                assert [(f["id"], f["rule"]) for f in listed["faults"]] == [(1, "consume:delay=5")]
                await call(None, api.ok, "POST", "/faults", {"rule": "produce:delay=1"})
                assert [str(r) for r in broker.faults.list()] == ["consume:delay=5", "produce:delay=1"]
                broker.faults.remove(rule)
                broker.create_topic("py")
                broker.produce("py", b"from python", 3)
                got = await call(None, api.ok, "GET", "/topics/py/messages")
                assert got["messages"][0]["payload"]["hex"] == b"from python".hex()
                reader, writer = await asyncio.open_connection(*broker.address)
                writer.write(raw_frame(1, 3, b"wire"))
                assert await reader.readexactly(len(create_ok(1, "wire"))) == create_ok(1, "wire")
                writer.close()
                await writer.wait_closed()
                await broker.wait_closed_connections(5)
                await call(None, api.ok, "POST", "/reset")
                assert broker.topics() == {}
                assert broker.faults.list() == []
                assert broker.records() == []
            finally:
                await control.stop()
            assert (await call(None, lambda: _refused(control.port))) is True

    asyncio.run(main())


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_the_readme_documents_every_error_code():
    readme = (ROOT / "mock_broker" / "README.md").read_text()
    for code, status in ERROR_CODES.items():
        assert f"`{code}`" in readme, code
        assert f"| {status} |" in readme, status
