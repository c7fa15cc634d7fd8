"""Drivers that attack the runner, one per way a driver's output has broken it (issue 14).

    python tests/conformance/hostile_drivers.py KIND [--size BYTES] [--total BYTES]

Each wraps the standalone test client (broken_clients/, correct variant) so that the run
still has real verdicts, and adds one hostile behaviour:

``deep-json``
    before every reply, a line of 5,000 ``[`` and a reply-shaped object nested 5,000 deep.
``huge-errors``
    every reply is an error whose message is ``--size`` bytes (written in pieces, so the
    driver itself stays small).
``ansi-stderr``
    logs every command to stderr in colour, with NUL, BEL, backspace, a lone surrogate and
    bytes that are not UTF-8 (the client's replies are correct: a passing run).
``forge``
    answers every command with an error whose message holds terminal escape sequences
    (set the window title, clear the screen), carriage returns, newlines followed by forged
    result lines, bidi overrides and a lone surrogate.
``stdout-flood``
    before every reply, ``--size`` bytes of lines that are not JSON, until ``--total`` bytes.
``silent``
    reads every command and never answers.
``dies``
    exits as soon as it reads a command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent / "broken_clients"))

from driver import handle  # the standalone client's driver, found through the path above
from megaclient import BrokerError, ClientError

FORGED = (
    "\x1b]0;pwned title\x07\x1b[2J\x1b[H"
    "\nPASS  forged.case.id                                      MUST     0.00s"
    "\r\nOK: every MUST case passed"
    "\u2028PASS  forged.after.line-separator\u202eevil\u202c"
    "\x00\x07\x08\x7f\x9b31m \ud800 done"
)


def answer(state: dict[str, Any], cmd: dict[str, Any]) -> dict[str, Any]:
    """The correct client's reply to ``cmd``."""
    reply: dict[str, Any] = {"id": cmd.get("id")}
    try:
        reply.update(ok=True, result=handle(state, cmd, None))
    except BrokerError as exc:
        reply.update(ok=False, error={"type": "broker", "code": exc.name, "message": str(exc)})
    except ClientError as exc:
        reply.update(ok=False, error={"type": "usage" if exc.kind == "client" else exc.kind, "message": str(exc)})
    except LookupError as exc:
        reply.update(ok=False, error={"type": "unsupported", "message": f"unknown op {exc}"})
    return reply


def write(out: Any, data: bytes) -> None:
    out.write(data)
    out.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "kind", choices=["deep-json", "huge-errors", "ansi-stderr", "forge", "stdout-flood", "silent", "dies"]
    )
    parser.add_argument("--size", type=int, default=20 * 1000 * 1000)
    parser.add_argument("--total", type=int, default=400 * 1024 * 1024)
    args = parser.parse_args()
    out = sys.stdout.buffer
    err = sys.stderr.buffer
    state: dict[str, Any] = {}
    flooded = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        if args.kind == "dies":
            sys.exit(3)
        if args.kind == "silent":
            continue
        if args.kind == "huge-errors":
            head = json.dumps({"id": cmd["id"], "ok": False, "error": {"type": "usage", "message": "@"}})
            before, _, after = head.partition("@")
            write(out, before.encode())
            piece = b"x" * 65536
            left = args.size
            while left > 0:
                write(out, piece[:left])
                left -= len(piece)
            write(out, after.encode() + b"\n")
            continue
        if args.kind == "forge":
            reply = {"id": cmd["id"], "ok": False, "error": {"type": "usage", "code": FORGED, "message": FORGED}}
            write(out, json.dumps(reply).encode() + b"\n")
            err.write(FORGED.encode("utf-8", "surrogatepass") + b"\n")
            err.flush()
            continue
        if args.kind == "deep-json":
            write(out, b"[" * 5000 + b"\n")
            deep = "[" * 5000 + "]" * 5000
            nested = f'{{"id": {cmd["id"]}, "ok": true, "result": {{"a": {deep}}}}}'
            write(out, nested.encode() + b"\n")
        if args.kind == "stdout-flood":
            noise = b"not json " * 116508 + b"\n"  # about 1 MiB per line
            target = min(flooded + args.size, args.total)
            while flooded < target:
                write(out, noise)
                flooded += len(noise)
        if args.kind == "ansi-stderr":
            err.write(
                b"\x1b[1;31mERROR\x1b[0m \x1b[32m" + line.strip().encode() + b"\x1b[0m NUL\x00 BEL\x07 BS\x08"
                b" lone surrogate \xed\xa0\x80 not UTF-8 \xff\xfe \x1b]0;title\x07\r\n"
            )
            err.flush()
        write(out, json.dumps(answer(state, cmd)).encode() + b"\n")


if __name__ == "__main__":
    main()
