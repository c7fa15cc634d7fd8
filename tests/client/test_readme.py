"""The README's seed example runs as written against the mock broker and prints the three lines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from mock_broker import ThreadedMockBroker

ROOT = Path(__file__).resolve().parents[2]


def python_blocks(section: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def client_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## The Python client\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def run_snippet(code: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT, check=False
    )


def test_seed_example_prints_the_three_lines() -> None:
    seed = python_blocks(client_section())[0]
    assert "from mega_client import MessageClient" in seed
    assert "MessageClient(host='localhost', port=8080)" in seed  # the seed's own words
    with ThreadedMockBroker(port=0) as broker:
        # Only the port differs, so that tests run in parallel never fight over 8080.
        done = run_snippet(seed.replace("port=8080", f"port={broker.port}"))
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            "Topic created: test-topic",
            "Message produced at offset: 0",
            "Consumed message: Hello, MEGA!",
        ]
        assert broker.topics() == {"test-topic": 1}


def test_other_readme_examples_run() -> None:
    blocks = python_blocks(client_section())[1:]
    assert len(blocks) == 2
    with ThreadedMockBroker(port=0) as broker:
        for block in blocks:
            done = run_snippet(block.replace("8080", str(broker.port)))
            assert done.returncode == 0, done.stderr
        assert broker.topics() == {"orders": 1, "events": 500}
