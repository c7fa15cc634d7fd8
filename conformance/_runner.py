"""Running cases: one driver for the run, one fresh mock broker per case, one verdict per case."""

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
from ._driver import Driver, DriverFault, DriverGone, DriverHung, LogLine, parse_command

_LOG_LINE_LIMIT = 400


@dataclass(frozen=True)
class ConnectionTranscript:
    """The bytes of one connection both ways, as the broker saw them."""

    broker: int
    id: int
    peer: str
    received: bytes
    sent: bytes
    faults: tuple[str, ...]
    close_reason: str | None


@dataclass
class CaseResult:
    """A case's verdict, and what the report shows with it."""

    case: Case
    outcome: Outcome
    reason: str
    duration: float
    transcript: list[ConnectionTranscript] = field(default_factory=list)
    driver_log: list[LogLine] = field(default_factory=list)
    stderr: str = ""

    def record(self) -> dict[str, Any]:
        """The case's JSON record (``--json``)."""
        c = self.case
        record: dict[str, Any] = {
            "id": c.id,
            "area": c.area,
            "clauses": list(c.clauses),
            "level": c.level.value,
            "outcome": self.outcome,
            "reason": self.reason,
            "description": c.description,
            "duration_s": round(self.duration, 3),
        }
        if c.tags:  # e.g. "reference-defect" on broker cases
            record["tags"] = sorted(c.tags)
        return record


def verdict(level: Level, failed: bool, strict: bool) -> Outcome:
    """pass, or for a failure: fail for MUST (or SHOULD with --strict), non-strict for SHOULD."""
    if not failed:
        return "pass"
    if level is Level.SHOULD and not strict:
        return "non-strict"
    return "fail"


def outcome_of(level: Level, *, failed: bool, skipped: bool, harness_error: bool, strict: bool) -> Outcome:
    """A case's outcome: skipped, fail for a harness error whatever the level, else :func:`verdict`."""
    if skipped:
        return "skipped"
    if harness_error:
        return "fail"
    return verdict(level, failed, strict)


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
    ) -> None:
        self.driver = Driver(parse_command(driver), env=env, cwd=cwd)
        self.strict = strict
        self.broker_factory = broker_factory or mock_broker_factory

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
        return run_all(self.run_case, cases, on_result)

    def run_case(self, case: Case) -> CaseResult:
        driver = self.driver
        driver.log.clear()
        mark = driver.stderr_mark()
        started = time.monotonic()
        failed = False
        harness_error = False
        skipped = False
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
            failed, reason = True, f"driver hung: {exc}"
            driver.kill()
        except DriverGone as exc:
            failed, reason = True, f"driver exited: {exc}"
            driver.kill()
        except DriverFault as exc:
            failed, harness_error, reason = True, True, f"driver could not run: {exc}"
        except Exception as exc:
            failed, harness_error, reason = True, True, harness_reason(exc)
        duration = time.monotonic() - started
        transcript: list[ConnectionTranscript] = []
        if ctx is not None:
            self._cleanup(ctx)
            transcript = _transcript(ctx)
            ctx.stop_brokers()
        outcome = outcome_of(
            case.level, failed=failed, skipped=skipped, harness_error=harness_error, strict=self.strict
        )
        log = [LogLine(line.at - started, line.direction, _cut(line.text)) for line in driver.log]
        driver.log.clear()
        return CaseResult(case, outcome, reason, duration, transcript, log, driver.stderr_since(mark))

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


def _cut(text: str) -> str:
    return text if len(text) <= _LOG_LINE_LIMIT else text[:_LOG_LINE_LIMIT] + f"... ({len(text)} chars)"


def _transcript(ctx: ClientContext) -> list[ConnectionTranscript]:
    out = []
    for index, broker in enumerate(ctx.brokers):
        try:
            records = broker.records()
        except Exception:
            continue
        for rec in records:
            peer = getattr(rec, "peer", None)
            faults = tuple(
                f"{getattr(f, 'rule', f)} (request {getattr(f, 'request_index', None)})"
                for f in getattr(rec, "faults", ())
            )
            out.append(
                ConnectionTranscript(
                    broker=index,
                    id=int(getattr(rec, "id", 0)),
                    peer=f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer),
                    received=bytes(rec.received),
                    sent=bytes(rec.sent),
                    faults=faults,
                    close_reason=getattr(rec, "close_reason", None),
                )
            )
    return out


def exit_status(results: Iterable[CaseResult]) -> int:
    """0 when no case failed (every MUST case passed, and with --strict every SHOULD case), else 1."""
    return 1 if any(r.outcome == "fail" for r in results) else 0


def run_all(
    run_case: Callable[[Case], CaseResult],
    cases: Iterable[Case],
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Run ``cases`` one after another, handing each result to ``on_result`` as it ends."""
    results = []
    for case in cases:
        result = run_case(case)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
