"""The HTML pages: a run's report, and the comparison of several runs (``mega-conformance compare``).

Each page is one file with no external resource (inline CSS and a little inline JavaScript)
and works offline. The report lists failures first, open, with the summary linking to each;
a filter (all, failed, non-strict, skipped, passed) and a search by case id or clause narrow
the list. Each case shows its wire transcript dissected (:mod:`conformance._dissect`): frames
in the order they went over the wire, every field labelled, the bytes a fault changed marked,
the time of each frame and segment, and the raw hex.

All text is escaped for HTML after :func:`~conformance._text.multiline` made its control
characters visible: a driver's or broker's text is shown, never interpreted.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from ._dissect import Dissection, Frame, dissect
from ._limits import HEXDUMP_BYTES, WIRE_FRAMES, WIRE_FRAMES_PASSED
from ._results import CaseView, RunView, areas_in_order, summary_rows
from ._text import multiline
from ._transcript import ConnectionTranscript
from ._wire import hexdump

_LABELS = {"pass": "PASS", "fail": "FAIL", "non-strict": "WARN", "not-judged": "NOT JUDGED", "skipped": "SKIP"}
_ORDER = {"fail": 0, "not-judged": 1, "non-strict": 2, "skipped": 3, "pass": 4}
_GROUPS = {"fail": "Failed", "not-judged": "Not judged", "non-strict": "Non-strict (SHOULD not met)"}
#: Segments listed per connection (a case slicing an answer byte by byte has hundreds).
SEGMENT_ROWS = 100
_OUTCOME_COLUMNS = ("pass", "fail", "non-strict", "not-judged", "skipped")

_CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:78em;color:#1d1d1f;padding:1em 1.2em 4em}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:1.6em 0 .5em}h3{font-size:1.05em}
a{color:#0b57d0}code,pre,.hex{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #d0d0d0;padding:.2em .5em;text-align:left}
th{background:#f2f2f2}td.n{text-align:right}
.meta{color:#555}.verdict{font-weight:bold;font-size:1.05em}.bad{color:#b00020}.good{color:#13721d}
.o-pass{--c:#2e9b3a}.o-fail{--c:#c62828}.o-non-strict{--c:#e08a00}.o-not-judged{--c:#7b3fb5}.o-skipped{--c:#8a8a8a}
.badge{display:inline-block;min-width:4.4em;text-align:center;color:#fff;background:var(--c);border-radius:3px;
padding:0 .4em;font-size:12px;font-weight:bold}
details.case{scroll-margin-top:4.5em;
border:1px solid #ddd;border-left:6px solid var(--c);margin:.5em 0;border-radius:3px;background:#fff}
details.case>summary{padding:.35em .6em;cursor:pointer}details.case[open]>summary{border-bottom:1px solid #eee}
.why{color:var(--c);margin-left:.4em}.body{padding:.4em .8em .6em}
.reason{color:var(--c);font-weight:bold;white-space:pre-wrap}.note{color:#245;white-space:pre-wrap}
ul.list{margin:.3em 0;padding-left:1.2em}ul.list li{margin:.1em 0}
.controls{position:sticky;top:0;background:#fafafa;border:1px solid #ddd;padding:.4em .6em;z-index:2;
display:flex;gap:.4em;flex-wrap:wrap;align-items:center}
.controls button{border:1px solid #bbb;background:#fff;border-radius:3px;padding:.15em .6em;cursor:pointer}
.controls button[aria-pressed=true]{background:#1d1d1f;color:#fff}
.controls input{flex:1;min-width:12em;padding:.2em .4em}
.conn{margin:.6em 0;border-top:1px dashed #ccc;padding-top:.4em}
table.frames{width:100%;font-size:12px}table.frames td{vertical-align:top}
table.frames td:first-child{white-space:nowrap;color:#444}table.frames td:nth-child(2){font-weight:bold}
tr.rx td:nth-child(2){color:#0b57d0}tr.tx td:nth-child(2){color:#8a3b00}
table.segs td{text-align:right;padding:0 .5em}
.ft{font-weight:bold}.fd{color:#555}
.fs{display:flex;flex-wrap:wrap;gap:3px;margin-top:2px}
.fs>span{border:1px solid #c9d3e0;border-radius:3px;padding:1px 4px;background:#f5f8fc;
display:inline-flex;flex-direction:column}
.fs i{font-style:normal;font-size:10px;color:#667}.fs code{font-size:11px;color:#333}.fs b{font-weight:600}
.fs>span.chg{background:#ffe3e0;border-color:#c62828}.chg i{color:#c62828}
.frame-chg td{background:#fff0ee}.notes{color:#8a3b00}
pre{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:12px;line-height:1.3;
white-space:pre-wrap;word-break:break-all}
table.matrix td.o{text-align:center;background:var(--c)}
table.matrix td.o a{color:#fff;font-weight:bold;text-decoration:none;display:block}
table.matrix tr.area th{background:#e6e6e6}tr.diff th:first-child{border-left:4px solid #7b3fb5}
[hidden]{display:none!important}section{scroll-margin-top:4.5em}
"""

_REPORT_JS = """
(function(){
var cases=[].slice.call(document.querySelectorAll('details.case'));
var groups=[].slice.call(document.querySelectorAll('.group'));
var buttons=[].slice.call(document.querySelectorAll('[data-filter]'));
var q=document.getElementById('q'),shown=document.getElementById('shown');
var want={all:null,failed:['fail','not-judged'],'non-strict':['non-strict'],skipped:['skipped'],passed:['pass']};
var filter='all';
document.querySelector('.controls').hidden=false;
function apply(){
  var text=q.value.trim().toLowerCase(),n=0;
  cases.forEach(function(c){
    var ok=(!want[filter]||want[filter].indexOf(c.dataset.o)>=0)&&(!text||c.dataset.k.indexOf(text)>=0);
    c.hidden=!ok;if(ok)n++;
  });
  groups.forEach(function(g){
    g.hidden=!cases.some(function(c){return c.dataset.g===g.dataset.g&&!c.hidden;});
  });
  shown.textContent=n+' of '+cases.length+' shown';
}
function choose(name){
  filter=name;
  buttons.forEach(function(b){b.setAttribute('aria-pressed',b.dataset.filter===name?'true':'false');});
  apply();
}
buttons.forEach(function(b){b.addEventListener('click',function(){choose(b.dataset.filter);});});
q.addEventListener('input',apply);
function reveal(){
  var id=decodeURIComponent(location.hash.slice(1)),el=id&&document.getElementById(id);
  if(!el)return;
  var box=el.closest('details.case');
  if(box&&box.hidden){q.value='';choose('all');}
  for(var d=el;d;d=d.parentElement){if(d.tagName==='DETAILS')d.open=true;}
  el.scrollIntoView();
}
window.addEventListener('hashchange',reveal);
apply();
if(location.hash)reveal();
})();
"""

_COMPARE_JS = """
(function(){
var rows=[].slice.call(document.querySelectorAll('tr.c'));
var heads=[].slice.call(document.querySelectorAll('tr.area'));
var buttons=[].slice.call(document.querySelectorAll('[data-filter]'));
var q=document.getElementById('q'),shown=document.getElementById('shown');
var filter='all';
document.querySelector('.controls').hidden=false;
function apply(){
  var text=q.value.trim().toLowerCase(),n=0;
  rows.forEach(function(r){
    var ok=(filter==='all'||(filter==='differ'&&r.dataset.diff==='1')||(filter==='failed'&&r.dataset.bad==='1'))
      &&(!text||r.dataset.k.indexOf(text)>=0);
    r.hidden=!ok;if(ok)n++;
  });
  heads.forEach(function(h){h.hidden=!rows.some(function(r){return r.dataset.g===h.dataset.g&&!r.hidden;});});
  shown.textContent=n+' of '+rows.length+' cases shown';
}
buttons.forEach(function(b){b.addEventListener('click',function(){
  filter=b.dataset.filter;
  buttons.forEach(function(x){x.setAttribute('aria-pressed',x===b?'true':'false');});
  apply();
});});
q.addEventListener('input',apply);
function reveal(){
  var id=decodeURIComponent(location.hash.slice(1)),el=id&&document.getElementById(id);
  if(!el)return;
  for(var d=el;d;d=d.parentElement){if(d.tagName==='DETAILS')d.open=true;}
  el.scrollIntoView();
}
window.addEventListener('hashchange',reveal);
apply();
if(location.hash)reveal();
})();
"""


def _e(text: object) -> str:
    """``text`` for HTML: control characters made visible, then escaped."""
    return html.escape(multiline(str(text)), quote=True)


def _page(title: str, body: Sequence[str], script: str) -> str:
    head = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
    )
    return head + "\n" + "\n".join(body) + f"\n<script>{script}</script>\n</body></html>\n"


# -- the dissected transcript ----------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"+{seconds * 1000:.1f}&nbsp;ms"


def _field_html(f: Frame, index: int) -> str:
    field = f.fields[index]
    raw = field.raw[:12].hex(" ") + (" &hellip;" if field.size > 12 else "")
    if not field.size:
        raw = "(none)"
    if field.changed_by:
        return (
            f'<span class="chg" title="changed by fault {_e(field.changed_by)}"><i>{_e(field.name)} &middot; '
            f"changed by {_e(field.changed_by)}</i><code>{raw}</code><b>{_e(field.value)}</b></span>"
        )
    return f"<span><i>{_e(field.name)}</i><code>{raw}</code><b>{_e(field.value)}</b></span>"


def _frame_row(frame: Frame, d: Dissection, previous: float | None) -> str:
    if frame.last_at is not None and d.origin is not None:
        when = _ms(frame.last_at - d.origin)
        if previous is not None:
            when += f"<br><small>&Delta; {(frame.last_at - previous) * 1000:.1f}&nbsp;ms</small>"
    else:
        when = ""
    where = f"bytes {frame.start}..{frame.end - 1}" if frame.size else f"byte {frame.start}"
    if frame.segments > 1 and frame.first_at is not None and frame.last_at is not None:
        where += f", in {frame.segments} segments over {(frame.last_at - frame.first_at) * 1000:.1f} ms"
    elif frame.segments == 1:
        where += ", 1 segment"
    arrow = "&rarr;" if frame.direction == "received" else "&larr;"
    cls = "rx" if frame.direction == "received" else "tx"
    if frame.changed_by:
        cls += " frame-chg"
    extra = ""
    if frame.detail:
        extra += f' <span class="fd">{_e(frame.detail)}</span>'
    if frame.changed_by:
        extra += f' <span class="notes">changed by fault {_e(frame.changed_by)}</span>'
    notes = "".join(f'<div class="notes">{_e(n)}</div>' for n in frame.notes)
    fields = "".join(_field_html(frame, i) for i in range(len(frame.fields)))
    return (
        f'<tr class="{cls}"><td>{when}</td><td>{arrow}</td>'
        f'<td><span class="ft">{_e(frame.title)}</span> <small>({where})</small>{extra}{notes}'
        f'<div class="fs">{fields}</div></td></tr>'
    )


def _connection_html(t: ConnectionTranscript, max_frames: int) -> str:
    d = dissect(t, max_frames)
    label = f"broker {t.broker + 1}, " if t.broker else ""
    head = (
        f"<b>{label}connection {t.id}</b> from {_e(t.peer)}: {t.total('received')} bytes client&rarr;broker, "
        f"{t.total('sent')} bytes broker&rarr;client"
    )
    if t.close_reason:
        head += f"; {_e(t.close_reason)}"
    parts = [f'<div class="conn"><div>{head}</div>']
    if t.faults:
        parts.append(f'<div class="notes">faults: {_e("; ".join(str(f) for f in t.faults))}</div>')
    parts.extend(f'<div class="notes">{_e(n)}</div>' for n in d.notes)
    if not d.timed:
        parts.append('<div class="meta">segment times not recorded: frames in request/answer order</div>')
    if d.frames:
        rows = []
        previous: float | None = None
        for frame in d.frames:
            rows.append(_frame_row(frame, d, previous))
            if frame.last_at is not None:
                previous = frame.last_at
        parts.append(
            '<table class="frames"><tr><th>time</th><th title="&rarr; client to broker, &larr; broker to client">'
            "</th><th>frame and fields</th></tr>" + "".join(rows) + "</table>"
        )
    else:
        parts.append('<div class="meta">no bytes either way</div>')
    for direction, count in d.frames_left_out.items():
        side = "client&rarr;broker" if direction == "received" else "broker&rarr;client"
        why = f"a passing case shows its first {max_frames}" if max_frames < WIRE_FRAMES else "see the raw bytes"
        parts.append(f'<div class="meta">{count} more frames {side} not shown ({why})</div>')
    for direction, count in d.bytes_not_kept.items():
        side = "client&rarr;broker" if direction == "received" else "broker&rarr;client"
        parts.append(f'<div class="meta">{count} more bytes {side} went over the wire and were not kept</div>')
    if d.segments:
        shown = d.segments[:SEGMENT_ROWS]
        segment_rows = "".join(
            f"<tr><td>{s.since_open * 1000:.1f}</td><td>{s.gap * 1000:.1f}</td>"
            f"<td>{'&rarr;' if s.direction == 'received' else '&larr;'}</td>"
            f"<td>{s.length}</td><td>{s.start}..{s.start + s.length - 1}</td></tr>"
            for s in shown
        )
        more = (
            f"<div class='meta'>{len(d.segments) - len(shown)} more not shown</div>"
            if len(d.segments) > len(shown)
            else ""
        )
        parts.append(
            f"<details><summary>{len(d.segments)} segments (each read and write, with its time)</summary>"
            '<table class="segs"><tr><th>ms since open</th><th>ms after the previous</th>'
            "<th>&rarr; client to broker, &larr; broker to client</th><th>bytes</th>"
            f"<th>range</th></tr>{segment_rows}</table>{more}</details>"
        )
    parts.append(
        "<details><summary>raw bytes (hex)</summary>"
        f"<div>client &rarr; broker</div><pre>{_e(hexdump(t.received, HEXDUMP_BYTES) or '(nothing)')}</pre>"
        f"<div>broker &rarr; client</div><pre>{_e(hexdump(t.sent, HEXDUMP_BYTES) or '(nothing)')}</pre></details>"
    )
    parts.append("</div>")
    return "".join(parts)


def case_body(c: CaseView, *, wire: bool = True) -> str:
    """What a case's box shows inside: description, reason, note, wire, conversation, stderr."""
    parts = [f"<div>{_e(c.description)}</div>"]
    parts.append(
        f'<div class="meta">{_e(c.level)} &middot; clauses {_e(", ".join(c.clauses))} &middot; {c.duration:.2f} s'
        + (f" &middot; tags {_e(' '.join(c.tags))}" if c.tags else "")
        + "</div>"
    )
    if c.reason:
        parts.append(f'<div class="reason">reason: {_e(c.reason)}</div>')
    if c.note:
        parts.append(f'<div class="note">note: {_e(c.note)}</div>')
    if wire:
        # A passing case shows the shape of its exchange; one that did not pass, as much as is kept.
        most = WIRE_FRAMES_PASSED if c.outcome == "pass" else WIRE_FRAMES
        parts.extend(_connection_html(t, most) for t in c.connections)
        if not c.connections and c.duration:
            parts.append('<div class="meta">no connection reached the broker</div>')
    if c.conversation:
        log = "\n".join(f"{line.at:8.3f} {line.direction} {line.text}" for line in c.conversation)
        summary = f"driver conversation ({len(c.conversation)} lines)"
        parts.append(f"<details><summary>{summary}</summary><pre>{_e(log)}</pre></details>")
    if c.stderr:
        parts.append(f"<details><summary>driver stderr</summary><pre>{_e(c.stderr)}</pre></details>")
    return "".join(parts)


# -- the report -------------------------------------------------------------------------------------


def _summary_table(cases: Sequence[CaseView]) -> str:
    head = "".join(f'<th class="o-{o}">{o}</th>' for o in _OUTCOME_COLUMNS)
    rows = [f"<table><tr><th>area</th><th>cases</th><th>MUST</th><th>SHOULD</th>{head}</tr>"]
    for area, n in summary_rows(cases):
        cells = "".join(f'<td class="n">{n[k]}</td>' for k in ("cases", "MUST", "SHOULD", *_OUTCOME_COLUMNS))
        rows.append(f"<tr><th>{_e(area)}</th>{cells}</tr>")
    rows.append("</table>")
    return "".join(rows)


def _case_list(cases: Sequence[CaseView], outcome: str, title: str) -> str:
    picked = [c for c in cases if c.outcome == outcome]
    if not picked:
        return ""
    items = "".join(
        f'<li><a href="#{_e(c.id)}">{_e(c.id)}</a> <span class="meta">{_e(c.level)} {_e(" ".join(c.clauses))}</span>'
        f" &mdash; {_e(c.reason[:160])}</li>"
        for c in picked
    )
    return f'<h3 class="o-{outcome}">{title} ({len(picked)})</h3><ul class="list">{items}</ul>'


def _case_box(c: CaseView, group: str) -> str:
    key = " ".join([c.id, *c.clauses]).lower()
    opened = " open" if c.outcome in ("fail", "not-judged") else ""
    why = f'<span class="why">{_e(c.reason[:200])}</span>' if c.reason and c.outcome != "pass" else ""
    return (
        f'<details class="case o-{c.outcome}" id="{_e(c.id)}" data-o="{c.outcome}" data-g="{_e(group)}" '
        f'data-k="{_e(key)}"{opened}><summary><span class="badge">{_LABELS[c.outcome]}</span> '
        f"<code>{_e(c.id)}</code> <small>{_e(c.level)} &middot; {_e(', '.join(c.clauses))}</small>{why}</summary>"
        f'<div class="body">{case_body(c)}</div></details>'
    )


def _controls(buttons: Sequence[tuple[str, str]], placeholder: str) -> str:
    first = buttons[0][0]
    html_buttons = "".join(
        f'<button type="button" data-filter="{name}" aria-pressed="{"true" if name == first else "false"}">'
        f"{label}</button>"
        for name, label in buttons
    )
    return (
        f'<div class="controls" hidden><span>Show:</span>{html_buttons}'
        f'<input id="q" type="search" placeholder="{_e(placeholder)}" aria-label="{_e(placeholder)}">'
        '<span id="shown" class="meta"></span></div>'
    )


def html_report(view: RunView, *, subject_label: str | None = None) -> str:
    """The report page of one run: summary and failed-case links, filter and search, then every case."""
    cases = view.cases
    title = view.title or (
        "MEGA broker conformance report" if view.subject == "broker" else "MEGA client conformance report"
    )
    label = subject_label or ("broker" if view.subject == "broker" else "driver")
    counts = {o: sum(1 for c in cases if c.outcome == o) for o in _OUTCOME_COLUMNS}
    duration = f" &middot; {view.duration:.1f} s" if view.duration is not None else ""
    body = [
        f"<header><h1>{_e(title)}</h1>",
        f'<p class="meta">{_e(label)}: <code>{_e(view.target)}</code> &middot; '
        f"{'strict' if view.strict else 'not strict'} &middot; {_e(view.started)} &middot; {len(cases)} cases"
        f"{duration}</p>",
    ]
    if view.unusable:
        body.append(f'<p class="verdict bad">Driver unusable: {_e(view.unusable)}. The run ended there.</p>')
    bad = counts["fail"] + counts["not-judged"]
    if bad:
        parts = [f"{counts['fail']} case(s) failed"]
        if counts["not-judged"]:
            parts.append(f"{counts['not-judged']} not judged")
        body.append(f'<p class="verdict bad">{", ".join(parts)}.</p>')
    else:
        body.append('<p class="verdict good">Every MUST case passed.</p>')
    body.extend(f'<p class="meta">{_e(line)}</p>' for line in view.verdicts)
    body.append("</header>")
    body.append('<nav id="summary"><h2>Summary</h2>' + _summary_table(cases))
    body.append(_case_list(cases, "fail", "Failed cases"))
    body.append(_case_list(cases, "not-judged", "Not judged"))
    body.append(_case_list(cases, "non-strict", "Non-strict (SHOULD not met)"))
    body.append("</nav>")
    body.append(
        _controls(
            [
                ("all", f"all ({len(cases)})"),
                ("failed", f"failed ({bad})"),
                ("non-strict", f"non-strict ({counts['non-strict']})"),
                ("skipped", f"skipped ({counts['skipped']})"),
                ("passed", f"passed ({counts['pass']})"),
            ],
            "search case id or clause",
        )
    )
    body.append('<main id="cases">')
    for outcome, heading in _GROUPS.items():
        picked = [c for c in cases if c.outcome == outcome]
        if picked:
            body.append(f'<h2 class="group o-{outcome}" data-g="{outcome}">{heading} ({len(picked)})</h2>')
            body.extend(_case_box(c, outcome) for c in picked)
    rest = [c for c in cases if c.outcome not in _GROUPS]
    for area in areas_in_order(c.area for c in rest):
        picked = [c for c in rest if c.area == area]
        body.append(f'<h2 class="group" data-g="area-{_e(area)}">{_e(area)} ({len(picked)})</h2>')
        body.extend(_case_box(c, f"area-{area}") for c in picked)
    body.append("</main>")
    return _page(title, body, _REPORT_JS)


def write_html(path: str | Path, view: RunView, **kwargs: str | None) -> None:
    Path(path).write_text(html_report(view, **kwargs), encoding="utf-8")


# -- the comparison page -------------------------------------------------------------------------


def _verdict_text(counts: dict[str, int], unusable: str | None) -> str:
    if unusable:
        return "driver unusable"
    if counts["fail"] or counts["not-judged"]:
        return "FAILED"
    return "every MUST case passed"


def compare_page(runs: Sequence[tuple[str, RunView]], *, title: str = "MEGA conformance comparison") -> str:
    """One page comparing runs (Autobahn style): a summary row per client, a matrix of cases by client
    with a coloured cell per verdict linking to its details, then the details."""
    labels = [label for label, _ in runs]
    by_run = [{c.id: c for c in view.cases} for _, view in runs]
    # Runs may hold different cases (another selection, another release): each case where it first appears.
    first: dict[str, CaseView] = {}
    for cases in by_run:
        for case_id, c in cases.items():
            first.setdefault(case_id, c)
    body = [f"<header><h1>{_e(title)}</h1>", f'<p class="meta">{len(runs)} runs, {len(first)} cases</p></header>']
    body.extend(_clients_table(runs))
    body.append(
        _controls(
            [("all", "all cases"), ("differ", "where the clients differ"), ("failed", "failed by any client")],
            "search case id or clause",
        )
    )
    body.extend(_matrix(first, labels, by_run))
    body.append("<h2>Details</h2>")
    for case_id, c in first.items():
        body.extend(_case_details(case_id, c, labels, by_run))
    return _page(title, body, _COMPARE_JS)


def _clients_table(runs: Sequence[tuple[str, RunView]]) -> list[str]:
    """A row per run: its client, target, counts per outcome and verdict."""
    head = "".join(f'<th class="o-{o}">{o}</th>' for o in _OUTCOME_COLUMNS)
    rows = [
        '<h2>Clients</h2><table class="clients">'
        f"<tr><th>client</th><th>target</th><th>cases</th>{head}<th>verdict</th></tr>"
    ]
    for i, (label, view) in enumerate(runs):
        counts = {o: sum(1 for c in view.cases if c.outcome == o) for o in _OUTCOME_COLUMNS}
        verdict = _verdict_text(counts, view.unusable)
        cls = "bad" if verdict != "every MUST case passed" else "good"
        cells = "".join(f'<td class="n">{counts[o]}</td>' for o in _OUTCOME_COLUMNS)
        rows.append(
            f'<tr id="client-{i}"><th>{_e(label)}</th><td><code>{_e(view.target)}</code></td>'
            f'<td class="n">{len(view.cases)}</td>{cells}<td class="{cls}">{_e(verdict)}</td></tr>'
        )
    rows.append("</table>")
    return rows


def _matrix(first: dict[str, CaseView], labels: Sequence[str], by_run: Sequence[dict[str, CaseView]]) -> list[str]:
    """The cases by client, area by area: a cell per verdict, linking to its details."""
    matrix = ['<h2>Cases by client</h2><table class="matrix"><thead><tr><th>case</th><th>level</th><th>clauses</th>']
    matrix.extend(f'<th><a href="#client-{i}">{_e(label)}</a></th>' for i, label in enumerate(labels))
    matrix.append("</tr></thead><tbody>")
    for area in areas_in_order(c.area for c in first.values()):
        matrix.append(f'<tr class="area" data-g="{_e(area)}"><th colspan="{3 + len(labels)}">{_e(area)}</th></tr>')
        matrix.extend(_matrix_row(case_id, c, labels, by_run) for case_id, c in first.items() if c.area == area)
    matrix.append("</tbody></table>")
    return matrix


def _matrix_row(case_id: str, c: CaseView, labels: Sequence[str], by_run: Sequence[dict[str, CaseView]]) -> str:
    """One case's row; ``data-diff`` and ``data-bad`` are what the page's filters look at."""
    outcomes = [cases[case_id].outcome if case_id in cases else None for cases in by_run]
    differ = len(set(outcomes)) > 1
    bad = any(o in ("fail", "not-judged") for o in outcomes)
    key = " ".join([case_id, *c.clauses]).lower()
    cells: list[str] = []
    for i, outcome in enumerate(outcomes):
        if outcome is None:
            cells.append('<td class="o">&ndash;</td>')
        else:
            cells.append(
                f'<td class="o o-{outcome}"><a href="#d{i}-{_e(case_id)}" '
                f'title="{_e(labels[i])}: {_e(outcome)}">{_LABELS[outcome]}</a></td>'
            )
    return (
        f'<tr class="c{" diff" if differ else ""}" data-g="{_e(c.area)}" data-k="{_e(key)}" '
        f'data-diff="{int(differ)}" data-bad="{int(bad)}"><th><a href="#c-{_e(case_id)}">{_e(case_id)}</a></th>'
        f"<td>{_e(c.level)}</td><td><small>{_e(' '.join(c.clauses))}</small></td>{''.join(cells)}</tr>"
    )


def _case_details(case_id: str, c: CaseView, labels: Sequence[str], by_run: Sequence[dict[str, CaseView]]) -> list[str]:
    """One case's section: what it checks, then each run's verdict box (opened where it failed)."""
    parts = [
        f'<section id="c-{_e(case_id)}"><h3><code>{_e(case_id)}</code> <small class="meta">{_e(c.level)} '
        f"&middot; {_e(', '.join(c.clauses))}</small></h3><div>{_e(c.description)}</div>"
    ]
    for i, cases in enumerate(by_run):
        r = cases.get(case_id)
        if r is None:
            continue
        opened = " open" if r.outcome in ("fail", "not-judged") else ""
        why = f'<span class="why">{_e(r.reason[:200])}</span>' if r.reason and r.outcome != "pass" else ""
        parts.append(
            f'<details class="case o-{r.outcome}" id="d{i}-{_e(case_id)}"{opened}><summary>'
            f'<span class="badge">{_LABELS[r.outcome]}</span> {_e(labels[i])}{why}</summary>'
            f'<div class="body">{case_body(r, wire=r.outcome != "pass")}</div></details>'
        )
    parts.append("</section>")
    return parts


def write_compare(path: str | Path, runs: Sequence[tuple[str, RunView]]) -> None:
    Path(path).write_text(compare_page(runs), encoding="utf-8")
