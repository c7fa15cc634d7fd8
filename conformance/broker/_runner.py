"""Running broker cases against one target, and the run's two verdicts."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from conformance._case import Case, CaseFailed, CaseSkipped, Level
from conformance._limits import WIRE_KEEP_BYTES
from conformance._runner import CaseResult, harness_reason, outcome_of, run_all
from conformance._transcript import ConnectionTranscript, Direction, Segment

from ._context import BrokerContext, Target, new_run_id
from ._registry import is_reference_defect


class TargetUnreachable(Exception):
    """The broker's address does not accept a TCP connection."""


class BrokerRunner:
    """Runs broker cases one after another against ``target`` (one fresh context per case).

    The first :meth:`run` uses ``target.run_id``; each later one takes a fresh run id, so that
    running the same cases again does not re-create the topics of the first run.
    """

    def __init__(self, target: Target, *, strict: bool = False) -> None:
        self.target = target
        self.strict = strict
        self._runs = 0

    def check_reachable(self) -> None:
        """Open and close one connection; raise :class:`TargetUnreachable` if that fails."""
        try:
            with socket.create_connection((self.target.host, self.target.port), timeout=self.target.timeout):
                pass
        except OSError as exc:
            raise TargetUnreachable(f"cannot connect to the broker at {self.target.address}: {exc}") from exc

    def run(self, cases: Iterable[Case], on_result: Callable[[CaseResult], None] | None = None) -> list[CaseResult]:
        if self._runs:
            self.target = dataclasses.replace(self.target, run_id=new_run_id())
        self._runs += 1
        return run_all(self.run_case, cases, on_result)

    def run_case(self, case: Case) -> CaseResult:
        ctx = BrokerContext(case, self.target)
        started = time.monotonic()
        failed = skipped = harness_error = False
        reason = ""
        try:
            case.run(ctx)
        except CaseFailed as exc:
            failed, reason = True, str(exc)
        except CaseSkipped as exc:
            skipped, reason = True, str(exc) or "not applicable"
        except Exception as exc:
            failed, harness_error, reason = True, True, harness_reason(exc)
        finally:
            ctx.close_all()
        duration = time.monotonic() - started
        outcome = outcome_of(
            case.level, failed=failed, skipped=skipped, harness_error=harness_error, strict=self.strict
        )
        return CaseResult(case, outcome, reason, duration, transcripts(ctx), note="; ".join(ctx.notes))


def transcripts(ctx: BrokerContext) -> list[ConnectionTranscript]:
    """Each connection of the case, seen from the broker's side as the reports expect it."""
    out = []
    for conn in ctx.connections:
        how = {
            "eof": "closed by the broker (EOF)",
            "reset": f"reset ({conn.error})",
            "closed": "closed by the harness",
            "open": "open",
        }[conn.state]
        # The harness's "sent" is what the broker received, and the other way round.
        broker_side: dict[str, Direction] = {"sent": "received", "received": "sent"}
        out.append(
            ConnectionTranscript(
                broker=0,
                id=conn.index + 1,
                peer=conn.local,
                received=bytes(conn.sent[:WIRE_KEEP_BYTES]),
                sent=bytes(conn.received[:WIRE_KEEP_BYTES]),
                faults=(),
                close_reason=how,
                segments=tuple(Segment(broker_side[d], at, start, n) for d, at, start, n in conn.segments),
                opened_at=conn.opened_at,
                received_total=conn.sent_total,
                sent_total=conn.received_total,
            )
        )
    return out


@dataclass(frozen=True)
class Verdicts:
    """The two verdicts of a broker run."""

    spec_conformant: bool
    reference_compatible: bool
    #: MUST cases that failed.
    failed_must: tuple[str, ...]
    #: Of those, the ones not marked as depending on a reference defect.
    failed_unmarked: tuple[str, ...]
    #: MUST cases that were skipped (not checked: the verdicts hold for what was checked).
    skipped_must: tuple[str, ...]


def verdicts(results: Sequence[CaseResult]) -> Verdicts:
    failed = [r for r in results if r.case.level is Level.MUST and r.outcome == "fail"]
    unmarked = [r for r in failed if not is_reference_defect(r.case)]
    skipped = [r for r in results if r.case.level is Level.MUST and r.outcome == "skipped"]
    return Verdicts(
        spec_conformant=not failed,
        reference_compatible=not unmarked,
        failed_must=tuple(r.case.id for r in failed),
        failed_unmarked=tuple(r.case.id for r in unmarked),
        skipped_must=tuple(r.case.id for r in skipped),
    )


def verdict_lines(results: Sequence[CaseResult]) -> list[str]:
    """``spec-conformant: ...`` and ``reference-compatible: ...``, for the console and the reports."""
    v = verdicts(results)
    marked = [i for i in v.failed_must if i not in v.failed_unmarked]
    if v.spec_conformant:
        spec = "spec-conformant: yes (every MUST case passed)"
    else:
        spec = f"spec-conformant: NO ({len(v.failed_must)} MUST case(s) failed)"
    if v.reference_compatible:
        ref = "reference-compatible: yes (every MUST case not marked reference-defect passed"
        ref += f"; marked cases failed: {', '.join(marked)})" if marked else ")"
    else:
        ref = (
            f"reference-compatible: NO ({len(v.failed_unmarked)} MUST case(s) not marked reference-defect failed: "
            f"{', '.join(v.failed_unmarked)})"
        )
    lines = [spec, ref]
    if v.skipped_must:
        lines.append(f"not checked: {len(v.skipped_must)} MUST case(s) skipped: {', '.join(v.skipped_must)}")
    return lines
