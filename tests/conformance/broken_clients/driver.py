"""JSON-lines conformance driver for megaclient.py (docs/CONFORMANCE.md).

    python tests/conformance/broken_clients/driver.py                        # the correct variant
    python tests/conformance/broken_clients/driver.py --defect recv-once     # one planted defect
    python tests/conformance/broken_clients/driver.py --defect no-name-check+char-lengths

One client serves the driver's whole life, as in an application: ``connect`` connects it (again),
``close`` closes it.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import traceback
from collections.abc import Collection
from typing import Any

from megaclient import BrokerError, Client, ClientError, parse_defects


def handle(state: dict[str, Any], cmd: dict[str, Any], defects: Collection[str] | None) -> dict[str, Any]:
    op = cmd.get("op")
    client: Client = state.setdefault("client", Client(defects or ()))
    if op == "connect":
        client.connect(str(cmd["host"]), int(cmd["port"]), int(cmd.get("timeout_ms", 5000)) / 1000)
        return {}
    if op == "close":
        client.close()
        return {}
    if op == "create_topic":
        return {"topic": client.create_topic(str(cmd["topic"]))}
    if op == "produce":
        payload = base64.b64decode(str(cmd["payload"]))
        return {"offset": client.produce(str(cmd["topic"]), payload)}
    if op == "consume":
        payload, nxt, ts = client.consume(str(cmd["topic"]), int(cmd["offset"]))
        return {"payload": base64.b64encode(payload).decode("ascii"), "next_offset": nxt, "timestamp": ts}
    raise LookupError(op)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--defect", type=parse_defects, default=frozenset(), help="defects, joined by '+'")
    defects = parser.parse_args().defect
    state: dict[str, Any] = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        reply: dict[str, Any] = {"id": cmd.get("id")}
        try:
            reply.update(ok=True, result=handle(state, cmd, defects))
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
