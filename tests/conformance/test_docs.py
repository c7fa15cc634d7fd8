"""docs/CONFORMANCE.md: its Python example driver works as written, and every count it and README.md give is
the registry's."""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

from conformance._case import AREAS, REGISTRY, Case, Level
from conformance._runner import Runner
from conformance.broker import REFERENCE_DEFECTS, reference_defects
from tests.conformance.broker.broken_brokers import DEFECTS as BROKEN_BROKERS

from .broken_clients.async_driver import DEFECTS as BROKEN_ASYNC_CLIENTS
from .broken_clients.megaclient import DEFECTS as BROKEN_CLIENTS

DOC = Path(__file__).resolve().parents[2] / "docs" / "CONFORMANCE.md"
README = Path(__file__).resolve().parents[2] / "README.md"

#: The rows of spec section 12 that mock_broker's reference profile reproduces.
REFERENCE_PROFILE_ROWS = {"12.1", "12.2", "12.3", "12.4", "12.5", "12.18", "12.19"}

_WORDS = {
    word: n
    for n, word in enumerate(
        (
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        )
    )
}


def _one(pattern: str, text: str) -> re.Match[str]:
    found = list(re.finditer(pattern, text))
    assert len(found) == 1, f"{pattern!r} found {len(found)} times"
    return found[0]


def _levels(cases: list[Case]) -> tuple[int, int, int]:
    must = sum(1 for c in cases if c.level is Level.MUST)
    return len(cases), must, len(cases) - must


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
        "pipelining.order.mixed-100",
        "pipelining.end.eof-after-five-answers",
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


def test_documented_client_counts_are_the_registrys() -> None:
    doc, readme = DOC.read_text(encoding="utf-8"), README.read_text(encoding="utf-8")
    cases = REGISTRY.of("client")
    total, must, should = _levels(cases)
    assert int(_one(r"A full run \((\d+) cases\)", doc).group(1)) == total
    assert int(_one(r"Each of the (\d+) cases", readme).group(1)) == total
    m = _one(r"(\d+) cases \((\d+) MUST, (\d+) SHOULD\) in\s+(\w+) areas", doc)
    assert tuple(map(int, m.groups()[:3])) == (total, must, should)
    assert _WORDS[m.group(4)] == len(AREAS["client"])
    for area in AREAS["client"]:
        m = _one(rf"- \*\*{area}\*\* \((\d+): (\d+) MUST, (\d+) SHOULD\)", doc)
        assert tuple(map(int, m.groups())) == _levels([c for c in cases if c.area == area]), area
    m = _one(r"and (\d+) copies of it, each with one\s+planted defect", doc)
    assert int(m.group(1)) == len(BROKEN_CLIENTS)
    m = _one(r"(\d+) broken copies of the kit's own asyncio client", doc)
    assert int(m.group(1)) == len(BROKEN_ASYNC_CLIENTS)


def test_documented_broker_counts_are_the_registrys() -> None:
    doc, readme = DOC.read_text(encoding="utf-8"), README.read_text(encoding="utf-8")
    cases = REGISTRY.of("broker")
    total, must, should = _levels(cases)
    m = _one(r"\*\*The cases\*\* \((\d+): (\d+) MUST, (\d+) SHOULD;", doc)
    assert tuple(map(int, m.groups())) == (total, must, should)
    assert int(_one(r"with (\d+) broker cases", readme).group(1)) == total
    per_area = Counter(c.area for c in cases)
    for area in AREAS["broker"]:
        assert int(_one(rf"- \*\*{area}\*\* \((\d+)\)", doc).group(1)) == per_area[area], area
    # The reference profile fails exactly the MUST cases of the rows it reproduces.
    reproduced = [c for c in cases if c.level is Level.MUST and REFERENCE_PROFILE_ROWS & set(reference_defects(c))]
    m = _one(r"exactly the (\w+) MUST cases of rows 12\.1 to 12\.5, 12\.18 and 12\.19 fail", doc)
    assert _WORDS[m.group(1)] == len(reproduced)
    assert int(_one(r"spec-conformant: NO \((\d+) MUST case\(s\) failed\)", doc).group(1)) == len(reproduced)
    # The table of marked cases: each row names exactly the cases tagged with it.
    table = re.findall(r"^\| (12\.\d+) \| [^|]+ \| (.+) \|$", doc, re.MULTILINE)
    assert {row for row, _ in table} == set(REFERENCE_DEFECTS)
    for row, listed in table:
        named = set(re.findall(r"`([a-z0-9.-]+)`", listed))
        assert named == {c.id for c in cases if row in reference_defects(c)}, row
    m = _one(r"against (\d+) copies of it with one defect each", doc)
    assert int(m.group(1)) == len(BROKEN_BROKERS)
