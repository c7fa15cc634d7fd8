"""JSON-lines conformance driver for megaclient.py (docs/CONFORMANCE.md).

    python tests/conformance/broken_clients/driver.py                      # the correct variant
    python tests/conformance/broken_clients/driver.py --defect recv-once   # one planted defect
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import traceback
from typing import Any

from megaclient import ALTERNATIVES, DEFECTS, BrokerError, Client, ClientError


def handle(state: dict[str, Any], cmd: dict[str, Any], defect: str | None) -> dict[str, Any]:
    op = cmd.get("op")
    client: Client | None = state.get("client")
    if op == "connect":
        if client is not None:
            client.close()
        client = Client(str(cmd["host"]), int(cmd["port"]), int(cmd.get("timeout_ms", 5000)) / 1000, defect)
        state["client"] = client
        client.connect()
        return {}
    if op == "close":
        if client is not None:
            client.close()
        return {}
    if op not in ("create_topic", "produce", "consume"):
        raise LookupError(op)
    if client is None:
        raise ClientError("not connected")
    if op == "create_topic":
        return {"topic": client.create_topic(str(cmd["topic"]))}
    if op == "produce":
        payload = base64.b64decode(str(cmd["payload"]))
        return {"offset": client.produce(str(cmd["topic"]), payload)}
    payload, nxt, ts = client.consume(str(cmd["topic"]), int(cmd["offset"]))
    return {"payload": base64.b64encode(payload).decode("ascii"), "next_offset": nxt, "timestamp": ts}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--defect", choices=sorted({*DEFECTS, *ALTERNATIVES}))
    defect = parser.parse_args().defect
    state: dict[str, Any] = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        reply: dict[str, Any] = {"id": cmd.get("id")}
        try:
            reply.update(ok=True, result=handle(state, cmd, defect))
        except BrokerError as exc:
            reply.update(ok=False, error={"type": "broker", "code": exc.name, "message": str(exc)})
        except ClientError as exc:
            kind = "usage" if exc.kind == "client" else exc.kind
            reply.update(ok=False, error={"type": kind, "message": str(exc)})
        except LookupError as exc:
            reply.update(ok=False, error={"type": "unsupported", "message": f"unknown op {exc}"})
        except Exception as exc:
            traceback.print_exc()
            reply.update(ok=False, error={"type": "usage", "message": f"{type(exc).__name__}: {exc}"})
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
