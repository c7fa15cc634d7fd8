"""docs/CONFORMANCE.md: its Python example driver works as written."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from conformance._case import REGISTRY
from conformance._runner import Runner

DOC = Path(__file__).resolve().parents[2] / "docs" / "CONFORMANCE.md"


def python_example() -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("### Python") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


def test_python_example_driver_passes_some_cases(tmp_path: Path) -> None:
    script = tmp_path / "example_driver.py"
    script.write_text(python_example(), encoding="utf-8")
    picked = [
        "framing.create-topic.echo-decoded",
        "framing.payload.binary-roundtrip",
        "errors.broker.topic-not-found-produce",
        "errors.protocol.wrong-correlation-id",
        "errors.client-check.empty-topic",
        "lifecycle.connect.request-before-connect-fails",
    ]
    with Runner([sys.executable, str(script)], strict=True) as runner:
        results = runner.run([REGISTRY.get(c) for c in picked])
    bad = [(r.case.id, r.reason, r.stderr[-500:]) for r in results if r.outcome != "pass"]
    assert not bad


def test_doc_mentions_every_error_type_and_op() -> None:
    text = DOC.read_text(encoding="utf-8")
    for word in ("broker", "connection", "timeout", "protocol", "usage", "unsupported"):
        assert f"`{word}`" in text
    for op in ("connect", "create_topic", "produce", "consume", "close"):
        assert f"`{op}`" in text
