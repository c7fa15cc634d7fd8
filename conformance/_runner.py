"""Running cases: one driver for the run, one fresh mock broker per case, one verdict per case.

A case the driver could not finish (it hung, exited or broke its contract) is not a
verdict on the client's SHOULD behaviour: a MUST case fails (answering at all is part of
every MUST clause), a SHOULD case is ``not-judged``. A driver that does that in
``DRIVER_FAULTS_IN_A_ROW`` cases in a row is unusable: the run ends there, and every case
not yet run is reported as not run (``fail`` for MUST, ``not-judged`` for SHOULD).
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mock_broker import ThreadedMockBroker

from ._case import Case, CaseFailed, CaseSkipped, Level, Outcome
from ._context import Broker, BrokerFactory, ClientContext
from ._driver import Driver, DriverBrokeContract, DriverFault, DriverGone, DriverHung, LogLine, parse_command
from ._limits import DRIVER_FAULTS_IN_A_ROW, NOTE_CHARS, REASON_CHARS
from ._text import bounded
from ._transcript import ConnectionTranscript, FaultNote, Segment, from_broker_records

__all__ = [
    "CaseResult",
    "ConnectionTranscript",
    "FaultNote",
    "Runner",
    "Segment",
    "run_failed",
    "harness_reason",
    "outcome_of",
    "run_all",
    "verdict",
]


@dataclass
class CaseResult:
    """A case's verdict, and what the reports show with it.

    ``reason`` says why, for every outcome but ``pass``; ``note`` is what the case observed
    and wants shown whatever the outcome (which of the allowed behaviours happened, a
    measurement). Both are bounded (``REASON_CHARS``, ``NOTE_CHARS``).
    """

    case: Case
    outcome: Outcome
    reason: str
    duration: float
    transcript: list[ConnectionTranscript] = field(default_factory=list)
    driver_log: list[LogLine] = field(default_factory=list)
    stderr: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        self.reason = bounded(self.reason, REASON_CHARS)
        self.note = bounded(self.note, NOTE_CHARS)


def verdict(level: Level, failed: bool, strict: bool) -> Outcome:
    """pass, or for a failure: fail for MUST (or SHOULD with --strict), non-strict for SHOULD."""
    if not failed:
        return "pass"
    if level is Level.SHOULD and not strict:
        return "non-strict"
    return "fail"


def outcome_of(
    level: Level,
    *,
    failed: bool,
    skipped: bool,
    harness_error: bool,
    strict: bool,
    unjudged: bool = False,
) -> Outcome:
    """A case's outcome: skipped; fail for a harness error whatever the level; for a case the
    subject's driver could not finish (``unjudged``), fail for MUST and not-judged for SHOULD;
    else :func:`verdict`."""
    if skipped:
        return "skipped"
    if harness_error:
        return "fail"
    if unjudged:
        return "fail" if level is Level.MUST else "not-judged"
    return verdict(level, failed, strict)


def not_run(case: Case, why: str) -> CaseResult:
    """The result of a case the run did not get to (the driver was unusable)."""
    outcome = outcome_of(case.level, failed=True, skipped=False, harness_error=False, strict=False, unjudged=True)
    return CaseResult(case, outcome, f"not run: {why}", 0.0)


def harness_reason(exc: BaseException) -> str:
    """The reason of a case the harness itself failed to run: the exception, and where it was raised."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno}" if tb else ""
    return f"harness error{where}: {type(exc).__name__}: {exc}"


def mock_broker_factory(**options: Any) -> Broker:
    """Start an in-process mock broker (mock_broker.ThreadedMockBroker) with ``options``."""
    broker: Broker = ThreadedMockBroker(**options).start()
    return broker


class Runner:
    """Runs client cases against one driver command.

    The driver is started on the first case and kept for the whole run; it is
    killed and started afresh after a hang. Use as a context manager, or call
    :meth:`close`.
    """

    def __init__(
        self,
        driver: str | Sequence[str] | None = None,
        *,
        strict: bool = False,
        broker_factory: BrokerFactory | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        driver_faults_limit: int = DRIVER_FAULTS_IN_A_ROW,
    ) -> None:
        self.driver = Driver(parse_command(driver), env=env, cwd=cwd)
        self.strict = strict
        self.broker_factory = broker_factory or mock_broker_factory
        self.driver_faults_limit = driver_faults_limit
        #: Cases in a row that the driver could not finish (hung, exited, broke its contract).
        self.driver_faults_in_a_row = 0
        #: Why the last :meth:`run` ended early (the driver was unusable), or ``None``.
        self.unusable: str | None = None

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.driver.stop()

    def start(self) -> None:
        """Start the driver now (raises DriverStartError if the command cannot run)."""
        self.driver.start()

    def run(
        self,
        cases: Iterable[Case],
        on_result: Callable[[CaseResult], None] | None = None,
    ) -> list[CaseResult]:
        """Run ``cases`` in order; stop early, with every case left reported as not run, once the
        driver has proved unusable (:attr:`unusable` then says why)."""
        self.unusable = None
        self.driver_faults_in_a_row = 0
        return run_all(self.run_case, cases, on_result, give_up=self._give_up)

    def _give_up(self, last: CaseResult) -> str | None:
        if self.driver_faults_in_a_row < self.driver_faults_limit:
            return None
        faults = f"it hung, exited or broke its contract in {self.driver_faults_in_a_row} cases in a row"
        self.unusable = f"{faults} (the last: {last.case.id})"
        return f"the driver is unusable: {faults}"

    def run_case(self, case: Case) -> CaseResult:
        driver = self.driver
        driver.log.clear()
        mark = driver.stderr_mark()
        started = time.monotonic()
        failed = harness_error = skipped = unjudged = False
        reason = ""
        ctx: ClientContext | None = None
        try:
            driver.start()
            ctx = ClientContext(case, driver, self.broker_factory)
            case.run(ctx)
        except CaseFailed as exc:
            failed, reason = True, str(exc)
        except CaseSkipped as exc:
            skipped, reason = True, str(exc) or "not applicable"
        except DriverHung as exc:
            unjudged, reason = True, f"driver hung: {exc}"
            driver.kill()
        except DriverGone as exc:
            unjudged, reason = True, f"driver exited: {exc}"
            driver.kill()
        except DriverBrokeContract as exc:
            unjudged, reason = True, f"driver broke its contract: {exc}"
            driver.kill()
        except DriverFault as exc:
            unjudged, reason = True, f"driver could not run: {exc}"
        except Exception as exc:
            failed, harness_error, reason = True, True, harness_reason(exc)
        duration = time.monotonic() - started
        self.driver_faults_in_a_row = self.driver_faults_in_a_row + 1 if unjudged else 0
        transcript: list[ConnectionTranscript] = []
        note = ""
        if ctx is not None:
            self._cleanup(ctx)
            transcript = from_broker_records(ctx.brokers)
            ctx.stop_brokers()
            note = "; ".join(ctx.notes)
        outcome = outcome_of(
            case.level,
            failed=failed,
            skipped=skipped,
            harness_error=harness_error,
            strict=self.strict,
            unjudged=unjudged,
        )
        log = [LogLine(line.at - started, line.direction, line.text) for line in driver.log]
        driver.log.clear()
        return CaseResult(case, outcome, reason, duration, transcript, log, driver.stderr_since(mark), note)

    def _cleanup(self, ctx: ClientContext) -> None:
        """Leave the driver disconnected for the next case; a driver that hangs on close is restarted."""
        if not self.driver.alive:
            return
        try:
            self.driver.request("close", {}, ctx.deadline)
        except DriverHung:
            self.driver.kill()
        except DriverFault:
            with contextlib.suppress(Exception):
                self.driver.kill()


#: The outcomes that make a run fail.
FAILING: frozenset[Outcome] = frozenset({"fail", "not-judged"})


def run_failed(results: Iterable[CaseResult]) -> bool:
    """A case failed, or (a SHOULD case whose driver broke the contract) was not judged.

    A ``not-judged`` case fails the run: its driver broke the contract, so the run cannot vouch
    for the client. A ``non-strict`` SHOULD case (without --strict) does not.
    """
    return any(r.outcome in FAILING for r in results)


def run_all(
    run_case: Callable[[Case], CaseResult],
    cases: Iterable[Case],
    on_result: Callable[[CaseResult], None] | None = None,
    *,
    give_up: Callable[[CaseResult], str | None] | None = None,
) -> list[CaseResult]:
    """Run ``cases`` one after another, handing each result to ``on_result`` as it ends.

    After each case ``give_up`` may return a reason to stop: every case left then gets a
    :func:`not_run` result (handed to ``on_result`` too).
    """
    results = []
    stop: str | None = None
    for case in cases:
        result = not_run(case, stop) if stop is not None else run_case(case)
        results.append(result)
        if on_result is not None:
            on_result(result)
        if stop is None and give_up is not None:
            stop = give_up(result)
    return results
