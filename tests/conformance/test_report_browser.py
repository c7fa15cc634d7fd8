"""The HTML report and the comparison page in a real browser (headless Chromium, tests/_browser.py).

A run with failures (the standalone client without its correlation-id check) is written as a
report, and compared with the correct client's run through ``mega-conformance compare``. The
browser checks what a person relies on: failed cases come first, open and visible; a summary
link scrolls to its case; the filter hides passing cases and the search finds a clause; the
dissected transcript marks the field a fault changed; the comparison matrix links each
coloured cell to its details. Screenshots are kept in the test's temporary folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conformance._case import REGISTRY
from conformance._html import write_html
from conformance._report import write_json
from conformance._results import run_view
from conformance._runner import Runner
from tests._browser import Browser, Page
from tests._proc import run_module

CASES = (
    "framing.create-topic.layout",
    "framing.produce.layout",
    "framing.consume.layout",
    "errors.protocol.wrong-correlation-id",
    "errors.protocol.wrong-correlation-id-consume",
    "errors.broker.topic-not-found-produce",
    "errors.recovery.same-connection-after-broker-error",
    "lifecycle.close.twice",
)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def pages(runner_for: Callable[[str, bool], Runner], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The report of the defective client, and the page comparing it with the correct one."""
    folder = tmp_path_factory.mktemp("pages")
    cases = [REGISTRY.get(i) for i in CASES]
    paths = {}
    for name in ("correct", "no-cid-check"):
        view = run_view(runner_for(name, False).run(cases), target=f"driver.py --defect {name}")
        paths[f"{name}.json"] = folder / f"{name}.json"
        write_json(paths[f"{name}.json"], view)
        if name == "no-cid-check":
            paths["report"] = folder / "report.html"
            write_html(paths["report"], view)
    paths["compare"] = folder / "compare.html"
    proc = run_module(
        "conformance",
        "compare",
        str(paths["correct.json"]),
        str(paths["no-cid-check.json"]),
        "--label",
        "correct",
        "--label",
        "no-cid-check",
        "-o",
        str(paths["compare"]),
    )
    assert proc.returncode == 0, proc.stderr
    return paths


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    with Browser(tmp_path_factory.mktemp("chromium-profile"), width=1200, height=800) as b:
        yield b


def visible(page: Page, selector: str) -> list[bool]:
    """For each element matching ``selector``: is it laid out and on screen-able (not hidden, not collapsed)?"""
    result: list[bool] = page.evaluate(
        f"[...document.querySelectorAll({json.dumps(selector)})]"
        ".map(e => e.offsetParent !== null && e.getBoundingClientRect().height > 0)"
    )
    return result


def failed_ids(paths: dict[str, Path]) -> list[str]:
    document = json.loads(paths["no-cid-check.json"].read_text(encoding="utf-8"))
    return [c["id"] for c in document["cases"] if c["outcome"] == "fail"]


def test_the_report_shows_failures_first_and_open(pages: dict[str, Path], browser: Browser, tmp_path: Path) -> None:
    failed = failed_ids(pages)
    assert len(failed) >= 2, "the defective client fails the wrong-correlation-id cases"
    page = browser.open(pages["report"].as_uri())
    assert page.evaluate("performance.getEntriesByType('resource').length") == 0  # nothing loaded from outside
    order = page.evaluate("[...document.querySelectorAll('details.case')].map(d => d.id)")
    assert order[: len(failed)] == failed  # failures first
    assert visible(page, "details.case.o-fail") == [True] * len(failed)
    assert page.evaluate("[...document.querySelectorAll('details.case.o-fail')].every(d => d.open)")
    assert page.evaluate("[...document.querySelectorAll('details.case.o-pass')].every(d => !d.open)")
    # The dissected transcript of the first failure marks the correlation id the fault changed.
    changed = page.evaluate(
        f"[...document.getElementById({json.dumps(failed[0])}).querySelectorAll('.fs .chg i')].map(e => e.textContent)"
    )
    assert any(text.startswith("correlation_id") and "wrong-cid" in text for text in changed), changed
    page.screenshot(tmp_path / "report.png")
    assert (tmp_path / "report.png").read_bytes().startswith(PNG)


def test_a_summary_link_scrolls_to_its_case(pages: dict[str, Path], browser: Browser, tmp_path: Path) -> None:
    target = failed_ids(pages)[-1]
    page = browser.open(pages["report"].as_uri())
    assert page.evaluate("window.scrollY") == 0
    page.click(f'#summary a[href="#{target}"]')
    page.wait_for(f"location.hash === {json.dumps('#' + target)}")
    top = page.wait_for(
        f"(() => {{ const t = document.getElementById({json.dumps(target)}).getBoundingClientRect().top;"
        " return t >= 0 && t < innerHeight / 2 ? t + 1 : 0; })()"
    )
    assert top > 0
    assert page.evaluate("window.scrollY") > 0
    page.screenshot(tmp_path / "scrolled.png")


def test_the_filter_hides_passing_cases_and_search_finds_a_clause(
    pages: dict[str, Path], browser: Browser, tmp_path: Path
) -> None:
    page = browser.open(pages["report"].as_uri())
    assert all(visible(page, "details.case.o-pass"))
    page.click('[data-filter="failed"]')
    page.wait_for("document.querySelector('[data-filter=failed]').getAttribute('aria-pressed') === 'true'")
    assert not any(visible(page, "details.case.o-pass"))
    assert all(visible(page, "details.case.o-fail"))
    shown = page.evaluate("document.getElementById('shown').textContent")
    assert shown == f"{len(failed_ids(pages))} of {len(CASES)} shown"
    page.screenshot(tmp_path / "failed-only.png")
    page.click('[data-filter="all"]')
    page.click("#q")
    page.type_text("client-25")  # the clause of errors.recovery.same-connection-after-broker-error only
    page.wait_for("document.getElementById('shown').textContent.startsWith('1 of')")
    assert page.evaluate("[...document.querySelectorAll('details.case')].filter(d => !d.hidden).map(d => d.id)") == [
        "errors.recovery.same-connection-after-broker-error"
    ]


def test_the_comparison_page_links_each_cell_to_its_details(
    pages: dict[str, Path], browser: Browser, tmp_path: Path
) -> None:
    failed = failed_ids(pages)
    page = browser.open(pages["compare"].as_uri())
    assert page.evaluate("performance.getEntriesByType('resource').length") == 0
    clients = page.evaluate("[...document.querySelectorAll('table.clients tr[id]')].map(r => r.cells[0].textContent)")
    assert clients == ["correct", "no-cid-check"]  # a summary row per client
    assert page.evaluate("document.querySelectorAll('table.matrix tr.c').length") == len(CASES)
    colours = page.evaluate(
        "Object.fromEntries(['o-pass', 'o-fail'].map(c => "
        "[c, getComputedStyle(document.querySelector('table.matrix td.' + c)).backgroundColor]))"
    )
    assert colours == {"o-pass": "rgb(46, 155, 58)", "o-fail": "rgb(198, 40, 40)"}
    cell = f'table.matrix a[href="#d1-{failed[0]}"]'
    page.click(cell)
    detail = json.dumps(f"d1-{failed[0]}")
    page.wait_for(f"location.hash === '#' + {detail}")
    assert page.evaluate(f"document.getElementById({detail}).open")
    top = page.evaluate(f"document.getElementById({detail}).getBoundingClientRect().top")
    assert 0 <= top < page.evaluate("innerHeight")
    page.screenshot(tmp_path / "compare-detail.png")
    page.evaluate("scrollTo(0, 0)")
    page.click('[data-filter="differ"]')
    rows = page.evaluate("[...document.querySelectorAll('table.matrix tr.c')].filter(r => !r.hidden).length")
    assert rows == len(failed)  # only the cases where the two clients differ
    page.screenshot(tmp_path / "compare.png")
    assert (tmp_path / "compare.png").read_bytes().startswith(PNG)


def test_compare_refuses_a_file_that_is_not_results(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[" * 10_000, encoding="utf-8")
    proc = run_module("conformance", "compare", str(bad), "-o", str(tmp_path / "c.html"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"mega-conformance: error: {bad}: JSON nested more than 12 deep: not a results file"
    ]
