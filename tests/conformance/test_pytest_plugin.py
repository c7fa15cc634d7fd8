"""``pytest --pyargs conformance``: one test per case, SHOULD failures xfail unless --mega-strict."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests._proc import ROOT, run_module

from .conftest import broken_driver

TIMESTAMP_CASE = "framing.timestamp.produce-ms"  # a SHOULD case


def run_pytest(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``pytest --pyargs conformance ARGS`` in a subprocess, from the checkout unless ``cwd`` says otherwise."""
    common = ("-p", "no:cacheprovider", "-p", "no:xdist", "-q", "--pyargs", "conformance")
    return run_module("pytest", *common, *args, timeout=60, cwd=cwd)


def _driver(defect: str) -> str:
    return subprocess.list2cmdline(broken_driver(defect))


def test_a_failed_should_case_is_xfail_and_fails_with_mega_strict() -> None:
    lenient = run_pytest("--mega-driver", _driver("timestamp-seconds"), "-k", TIMESTAMP_CASE)
    assert lenient.returncode == 0, lenient.stdout + lenient.stderr
    assert "1 xfailed" in lenient.stdout
    assert "in seconds, not milliseconds" in lenient.stdout  # the case's reason, in pytest's summary
    strict = run_pytest("--mega-driver", _driver("timestamp-seconds"), "--mega-strict", "-k", TIMESTAMP_CASE)
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "1 failed" in strict.stdout


def test_default_driver_passes_from_any_directory(tmp_path: Path) -> None:
    """Away from the checkout, with the plugin named by -p (the installed entry point blocked, as if absent)."""
    cases = "framing.create-topic.layout or errors.broker.topic-not-found-produce"
    proc = run_pytest("-p", "no:mega_conformance", "-p", "conformance.pytest_plugin", "-k", cases, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout
