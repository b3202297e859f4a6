"""The class leaderboard of the capstone (module 20), built from batch grading's grade JSONs.

`kata grade --submissions DIR --out OUT` calls `write_for_batch` when the batch ends: it reads
the top-level "capstone" key (schema "tinytorch-capstone/1", docs: docs/notes capstone spec)
of every learner's OUT/<name>.json and writes, beside OUT/summary.csv:

    OUT/leaderboard.md     Markdown (the plot linked as leaderboard.png)
    OUT/leaderboard.html   self-contained HTML (the plot embedded as a data: URL)
    OUT/leaderboard.png    accuracy vs p50 latency, marker area by model bytes, Pareto front joined

Staff can rebuild it from a finished batch folder: `python -m grading.leaderboard OUT`.

Sections, each learner in exactly one of them:
- Closed division: ranked by the better (smaller) of size ratio and latency ratio, then by
  accuracy (higher first).
- Open division: ranked by Pareto layer among the open submissions (layer 1 = dominated by no
  other open submission on accuracy up, p50 latency down, size down; layer 2 = dominated only by
  layer 1, ...), then by accuracy.
- Invalid submissions, with the harness's reason.
- No capstone result, with why: not graded (skipped entry), grading crashed or was aborted,
  module 20 not graded / not available / not passed, or a capstone result the grader wrote
  malformed.
Ranks compare the values as displayed (ratios to 3 decimals, accuracy to 0.01 %): equal
values share a rank ("1, 2, 2, 4") and are listed by display name, then output name.
The baseline (the harness's own model, median over every run that measured it) is a reference
row at the top of both division tables and a star in the plot. "front" marks the class Pareto
front over every valid (closed or open) submission; the plot joins it in latency order.

Every text that comes from a learner (folder names) or may quote learner code (reasons) is
escaped: HTML entities in the HTML, Markdown punctuation and HTML entities in the Markdown,
control and invisible formatting characters shown as \\xNN / \\uNNNN everywhere. The output
depends only on the grade JSONs (no clock, no machine state): the same inputs give the same
bytes.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import statistics
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from grading import reports

SCHEMA = "tinytorch-capstone/1"
MODULE_KEY = "20_capstone"
FILES = {"md": "leaderboard.md", "html": "leaderboard.html", "png": "leaderboard.png"}
RATIO_DIGITS = 3  # ratios shown and compared to 3 decimals
ACCURACY_DIGITS = 4  # accuracy shown and compared to 0.01 %
MAX_REASON = 300  # characters of a reason shown in a table


# -- reading the grade JSONs -------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One learner as the leaderboard sees them."""

    name: str  # display name (folder name, undecodable bytes as \xNN)
    output: str  # output stem of the learner's result files ("" for a skipped entry)
    status: str  # "closed", "open", "invalid" or "none" (no capstone result)
    reason: str = ""  # why invalid / why open / why no result
    accuracy: float | None = None
    latency_p50_ms: float | None = None
    latency_p90_ms: float | None = None
    throughput_per_s: float | None = None
    size_bytes: int | None = None
    size_ratio: float | None = None
    latency_ratio: float | None = None
    points_earned: bool = False

    @property
    def order(self) -> tuple[str, str]:
        return (self.name, self.output)

    @property
    def point(self) -> tuple[float, float, float]:
        """(accuracy, p50 latency, size) - the three Pareto axes."""
        return (float(self.accuracy), float(self.latency_p50_ms), float(self.size_bytes))

    @property
    def best_ratio(self) -> float:
        return min(self.size_ratio, self.latency_ratio)

    @property
    def best_axis(self) -> str:
        return "size" if self.size_ratio <= self.latency_ratio else "latency"


class Malformed(ValueError):
    """A capstone result that does not follow the schema (a grader bug, not the learner's)."""


def _number(section: dict, key: str, where: str, *, positive: bool = False, unit: bool = False,
            integer: bool = False, optional: bool = False) -> float | None:
    value = section.get(key) if isinstance(section, dict) else None
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Malformed(f"{where}.{key} is {value!r}, not a number")
    if integer and not (isinstance(value, int) or float(value).is_integer()):
        raise Malformed(f"{where}.{key} is {value!r}, not a whole number of bytes")
    if not math.isfinite(value):
        raise Malformed(f"{where}.{key} is {value!r}, not finite")
    if positive and value <= 0:
        raise Malformed(f"{where}.{key} is {value!r}, not > 0")
    if unit and not 0 <= value <= 1:
        raise Malformed(f"{where}.{key} is {value!r}, not in [0, 1]")
    return int(value) if integer else float(value)


def _measures(section: object, where: str, optional: bool) -> dict:
    if section is None and optional:
        section = {}
    if not isinstance(section, dict):
        raise Malformed(f"{where} is {type(section).__name__}, not an object")
    return {"accuracy": _number(section, "accuracy", where, unit=True, optional=optional),
            "latency_p50_ms": _number(section, "latency_p50_ms", where, positive=True, optional=optional),
            "latency_p90_ms": _number(section, "latency_p90_ms", where, positive=True, optional=True),
            "throughput_per_s": _number(section, "throughput_per_s", where, positive=True, optional=True),
            "size_bytes": _number(section, "size_bytes", where, positive=True, integer=True, optional=optional)}


def _baseline(capstone: dict) -> dict | None:
    """The baseline measured in this run, or None when it was not (fully) measured."""
    try:
        measured = _measures(capstone.get("baseline"), "baseline", optional=False)
    except Malformed:
        return None
    return measured


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _no_result_reason(result: dict) -> str:
    """Why a graded learner has no capstone result, from the rest of their grade JSON."""
    if result.get("unreadable"):
        return _text(result["unreadable"])
    if result.get("error"):
        return f"grading crashed: {result['error']}"
    if result.get("aborted"):
        return _text(result["aborted"])
    module = next((m for m in result.get("modules", []) if isinstance(m, dict) and m.get("key") == MODULE_KEY), None)
    if module is None:
        return "module 20 (capstone) was not graded in this run"
    if not module.get("available", True) or module.get("status") == "not_available":
        return "module 20 (capstone) is not yet available in the course"
    if module.get("status") != "passed":
        try:
            line = reports.module_line(module)
        except (KeyError, TypeError, ValueError):
            line = _text(module.get("status"))
        return f"module 20 not passed ({line})"
    messages = [_text(t.get("message")) for t in module.get("thresholds", []) if isinstance(t, dict) and t.get("message")]
    return "module 20 passed but the grader recorded no capstone result" + (f" ({messages[0]})" if messages else "")


def entry_from_result(result: dict, fallback_name: str = "") -> Entry:
    """Classify one learner's grade JSON (as batch grading writes it)."""
    name = _text(result.get("submission_name") or fallback_name)
    output = _text(result.get("output_name") or fallback_name)
    capstone = result.get("capstone")
    if capstone is None or result.get("error") or result.get("unreadable"):
        return Entry(name, output, "none", _no_result_reason(result))
    try:
        return _classify(name, output, capstone)
    except Malformed as err:
        return Entry(name, output, "none", f"the grader's capstone result is malformed: {err}")


def _classify(name: str, output: str, capstone: object) -> Entry:
    if not isinstance(capstone, dict):
        raise Malformed(f"it is {type(capstone).__name__}, not an object")
    if capstone.get("schema") != SCHEMA:
        raise Malformed(f"schema is {capstone.get('schema')!r}, expected {SCHEMA!r}")
    status = capstone.get("status")
    if status not in ("closed", "open", "invalid"):
        raise Malformed(f"status is {status!r}, not closed/open/invalid")
    reason = capstone.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise Malformed(f"reason is {type(reason).__name__}, not a string")
    valid = status != "invalid"
    measured = _measures(capstone.get("submission"), "submission", optional=not valid)
    ratios = capstone.get("ratios")
    if ratios is None and not valid:
        ratios = {}
    if not isinstance(ratios, dict):
        raise Malformed(f"ratios is {type(ratios).__name__}, not an object")
    size_ratio = _number(ratios, "size", "ratios", positive=True, optional=not valid)
    latency_ratio = _number(ratios, "latency", "ratios", positive=True, optional=not valid)
    if status == "invalid":
        reason = reason or "rejected by the capstone harness (no reason given)"
    return Entry(name, output, status, reason or "", size_ratio=size_ratio, latency_ratio=latency_ratio,
                 points_earned=capstone.get("points_earned") is True and status == "closed", **measured)


# -- Pareto front ----------------------------------------------------------------------


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether point a = (accuracy, latency, size) dominates b: no worse on every axis (accuracy
    higher or equal, latency and size lower or equal) and strictly better on at least one."""
    no_worse = a[0] >= b[0] and a[1] <= b[1] and a[2] <= b[2]
    return no_worse and (a[0] > b[0] or a[1] < b[1] or a[2] < b[2])


def pareto_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the points no other point dominates (equal points are all on the front)."""
    return [i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)]


def pareto_layers(points: Sequence[Sequence[float]]) -> list[int]:
    """Layer of every point: 1 for the front, 2 for the front of the rest, and so on."""
    layers = [0] * len(points)
    left = list(range(len(points)))
    layer = 0
    while left:
        layer += 1
        front = [i for i in left if not any(dominates(points[j], points[i]) for j in left)]
        for i in front:
            layers[i] = layer
        left = [i for i in left if layers[i] == 0]
    return layers


def competition_ranks(keys: Sequence[tuple]) -> list[int]:
    """Ranks of already-sorted keys: equal keys share a rank, the next rank skips ("1, 2, 2, 4")."""
    ranks: list[int] = []
    for i, key in enumerate(keys):
        ranks.append(ranks[-1] if i and key == keys[i - 1] else i + 1)
    return ranks


# -- the board -------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    rank: int
    entry: Entry
    layer: int | None = None  # open division only
    on_front: bool = False  # on the class Pareto front (all valid submissions)


@dataclass
class Board:
    closed: list[Row] = field(default_factory=list)
    open: list[Row] = field(default_factory=list)
    invalid: list[Entry] = field(default_factory=list)
    none: list[Entry] = field(default_factory=list)
    front: list[Entry] = field(default_factory=list)  # class front, in latency order
    baseline: dict | None = None  # median baseline: accuracy, latency_p50_ms, size_bytes, runs
    thresholds: list[dict] = field(default_factory=list)  # distinct thresholds seen
    machines: list[dict] = field(default_factory=list)  # distinct machines seen


def _closed_key(e: Entry) -> tuple:
    """Better ratio first; equal there, the other ratio decides (a slowed copy of the baseline ranks
    below the baseline); then accuracy."""
    worse = max(e.size_ratio, e.latency_ratio)
    return (round(e.best_ratio, RATIO_DIGITS), round(worse, RATIO_DIGITS), -round(e.accuracy, ACCURACY_DIGITS))


def _distinct(values: Iterable[object]) -> list:
    seen: dict[str, object] = {}
    for value in values:
        if isinstance(value, dict):
            seen.setdefault(json.dumps(value, sort_keys=True, default=str), value)
    return [seen[k] for k in sorted(seen)]


def build(results: Iterable[tuple[str, dict]], skipped: Iterable[tuple[str, str]] = ()) -> Board:
    """The leaderboard of `results` ((output name, grade JSON) pairs) plus the batch's skipped
    entries ((display name, reason) pairs)."""
    results = list(results)
    entries = [entry_from_result(r, stem) for stem, r in results]
    entries += [Entry(_text(name), "", "none", f"not graded: {reason}") for name, reason in skipped]
    board = Board()
    closed = sorted((e for e in entries if e.status == "closed"), key=lambda e: (_closed_key(e), e.order))
    board.closed = [Row(r, e) for r, e in zip(competition_ranks([_closed_key(e) for e in closed]), closed)]
    opened = [e for e in entries if e.status == "open"]
    layered = sorted(zip(pareto_layers([e.point for e in opened]), opened),
                     key=lambda le: (le[0], -round(le[1].accuracy, ACCURACY_DIGITS), le[1].order))
    open_keys = [(layer, -round(e.accuracy, ACCURACY_DIGITS)) for layer, e in layered]
    board.open = [Row(r, e, layer) for r, (layer, e) in zip(competition_ranks(open_keys), layered)]
    board.invalid = sorted((e for e in entries if e.status == "invalid"), key=lambda e: e.order)
    board.none = sorted((e for e in entries if e.status == "none"), key=lambda e: e.order)
    valid = [row.entry for row in board.closed + board.open]
    front = [valid[i] for i in pareto_front([e.point for e in valid])]
    board.front = sorted(front, key=lambda e: (e.latency_p50_ms, -e.accuracy, e.size_bytes, e.order))
    on_front = {id(e) for e in front}
    board.closed = [Row(r.rank, r.entry, r.layer, id(r.entry) in on_front) for r in board.closed]
    board.open = [Row(r.rank, r.entry, r.layer, id(r.entry) in on_front) for r in board.open]
    # Baselines, thresholds and machines from the well-formed results only.
    capstones = [r["capstone"] for (_, r), e in zip(results, entries) if e.status != "none"]
    baselines = [b for b in (_baseline(c) for c in capstones) if b is not None]
    if baselines:
        board.baseline = {key: statistics.median(b[key] for b in baselines)
                          for key in ("accuracy", "latency_p50_ms", "size_bytes")}
        board.baseline["runs"] = len(baselines)
    board.thresholds = _distinct(c.get("thresholds") for c in capstones)
    board.machines = _distinct(c.get("machine") for c in capstones)
    return board


# -- formatting -------------------------------------------------------------------------


def printable(text: str) -> str:
    """`text` with control, invisible-formatting and line/paragraph separator characters shown as
    \\xNN or \\uNNNN (a folder name cannot break a table row or reorder the text around it)."""
    out = []
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def _clip(text: str, limit: int = MAX_REASON) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


_MD_PUNCT = re.compile(r"([\\`*_\[\]|~$])")


def md_escape(text: str) -> str:
    """Learner text for a Markdown table cell: no link, emphasis, code, math, HTML or cell break."""
    escaped = _MD_PUNCT.sub(r"\\\1", printable(text))
    return escaped.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def html_escape(text: str) -> str:
    return html.escape(printable(text), quote=True)


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x * 100:.2f}%"


def _ratio(x: float | None) -> str:
    return "" if x is None else f"{x:.{RATIO_DIGITS}f}"


def _ms(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"


def _bytes(x: float | None) -> str:
    return "" if x is None else f"{int(x):,}"


def _describe_thresholds(t: dict) -> str:
    bits = []
    if "accuracy_band" in t:
        bits.append(f"closed: accuracy within {float(t['accuracy_band']) * 100:g} point(s) of the baseline")
    if "max_size_ratio" in t or "max_latency_ratio" in t:
        bits.append(f"points: size ratio \u2264 {t.get('max_size_ratio')} or latency ratio \u2264 "
                    f"{t.get('max_latency_ratio')}")
    if "open_floor" in t:
        bits.append(f"open: accuracy \u2265 {float(t['open_floor']) * 100:g}%")
    return "; ".join(bits) or json.dumps(t, sort_keys=True, default=str)


def _thresholds_line(board: Board) -> str:
    if not board.thresholds:
        return "thresholds: none recorded"
    parts = []
    for t in board.thresholds:
        try:
            parts.append(_describe_thresholds(t))
        except (TypeError, ValueError):  # not numbers: show them as they are
            parts.append(json.dumps(t, sort_keys=True, default=str))
    prefix = "thresholds" if len(parts) == 1 else "thresholds DIFFER between runs"
    return f"{prefix}: " + " | ".join(parts)


def _machines_line(board: Board) -> str:
    if not board.machines:
        return "machine: not recorded"
    described = [", ".join(f"{k}={m[k]}" for k in sorted(m)) for m in board.machines]
    return ("machine: " if len(described) == 1 else f"{len(described)} different machines: ") + " | ".join(described)


def _baseline_label(board: Board) -> str:
    runs = board.baseline["runs"]
    return f"baseline (reference, {'1 run' if runs == 1 else f'median of {runs} runs'})"


CLOSED_HEAD = ["rank", "learner", "score (better ratio)", "size ratio", "latency ratio", "accuracy",
               "latency p50 ms", "size bytes", "points", "front", "output"]
OPEN_HEAD = ["rank", "learner", "Pareto layer", "accuracy", "latency p50 ms", "size bytes", "size ratio",
             "latency ratio", "front", "why open", "output"]
INVALID_HEAD = ["learner", "reason", "output"]
NONE_HEAD = ["learner", "why", "output"]


def table_rows(board: Board) -> dict[str, list[list[tuple[str, bool]]]]:
    """Every table's cells as (text, is_learner_text) pairs: learner text still needs escaping."""
    base = board.baseline
    closed, opened = [], []
    if base and board.closed:
        closed.append([("ref", False), (_baseline_label(board), False), (_ratio(1.0), False), (_ratio(1.0), False),
                       (_ratio(1.0), False),
                       (_pct(base["accuracy"]), False), (_ms(base["latency_p50_ms"]), False),
                       (_bytes(base["size_bytes"]), False), ("", False), ("", False), ("", False)])
    if base and board.open:
        opened.append([("ref", False), (_baseline_label(board), False), ("", False), (_pct(base["accuracy"]), False),
                       (_ms(base["latency_p50_ms"]), False), (_bytes(base["size_bytes"]), False),
                       (_ratio(1.0), False), (_ratio(1.0), False), ("", False), ("", False), ("", False)])
    for row in board.closed:
        e = row.entry
        closed.append([(str(row.rank), False), (e.name, True), (f"{_ratio(e.best_ratio)} ({e.best_axis})", False),
                       (_ratio(e.size_ratio), False), (_ratio(e.latency_ratio), False), (_pct(e.accuracy), False),
                       (_ms(e.latency_p50_ms), False), (_bytes(e.size_bytes), False),
                       ("yes" if e.points_earned else "no", False), ("yes" if row.on_front else "", False),
                       (e.output, True)])
    for row in board.open:
        e = row.entry
        opened.append([(str(row.rank), False), (e.name, True), (str(row.layer), False), (_pct(e.accuracy), False),
                       (_ms(e.latency_p50_ms), False), (_bytes(e.size_bytes), False), (_ratio(e.size_ratio), False),
                       (_ratio(e.latency_ratio), False), ("yes" if row.on_front else "", False),
                       (_clip(e.reason), True), (e.output, True)])
    invalid = [[(e.name, True), (_clip(e.reason), True), (e.output, True)] for e in board.invalid]
    none = [[(e.name, True), (_clip(e.reason), True), (e.output, True)] for e in board.none]
    return {"closed": closed, "open": opened, "invalid": invalid, "none": none}


SECTIONS = [
    ("closed", "Closed division", CLOSED_HEAD,
     "Accuracy within the band of the baseline. Ranked by the better (smaller) of size ratio and latency "
     "ratio, then accuracy; equal values as shown share a rank and are listed by name."),
    ("open", "Open division", OPEN_HEAD,
     "Accuracy above the open floor but outside the closed band. Ranked by Pareto layer among the open "
     "submissions (1 = no other open submission is at least as accurate, as fast and as small, and better "
     "on one of them), then accuracy."),
    ("invalid", "Invalid submissions", INVALID_HEAD, "Rejected by the capstone harness, with its reason."),
    ("none", "No capstone result", NONE_HEAD,
     "Learners the capstone harness did not measure, and why (listed so that nobody is missing silently)."),
]


def markdown(board: Board, png_name: str = FILES["png"]) -> str:
    cells = table_rows(board)
    lines = ["# Capstone leaderboard", "",
             f"{len(board.closed)} closed, {len(board.open)} open, {len(board.invalid)} invalid, "
             f"{len(board.none)} without a capstone result.", "",
             f"- {md_escape(_thresholds_line(board))}", f"- {md_escape(_machines_line(board))}",
             "- front: on the Pareto front of all valid submissions (accuracy up, p50 latency down, size down)", "",
             f"![accuracy vs latency, marker area by model size, Pareto front joined]({png_name})", ""]
    for key, title, head, note in SECTIONS:
        lines += [f"## {title}", "", note, ""]
        if not cells[key]:
            lines += ["(none)", ""]
            continue
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in cells[key]:
            lines.append("| " + " | ".join(md_escape(t) if learner else t.replace("|", "\\|") for t, learner in row) + " |")
        lines.append("")
    return "\n".join(lines)


def html_page(board: Board, png: bytes) -> str:
    cells = table_rows(board)
    parts = []
    for key, title, head, note in SECTIONS:
        parts.append(f"<h2 id='{key}'>{html.escape(title)}</h2>\n<p>{html.escape(note)}</p>")
        if not cells[key]:
            parts.append("<p><i>(none)</i></p>")
            continue
        rows = ["<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
        for row in cells[key]:
            css = " class='ref'" if row[0][0] == "ref" else ""
            rows.append(f"<tr{css}>" + "".join(f"<td>{html_escape(t)}</td>" for t, _ in row) + "</tr>")
        parts.append(f"<table class='{key}'>\n" + "\n".join(rows) + "\n</table>")
    image = base64.b64encode(png).decode("ascii")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>TinyTorch Katas capstone leaderboard</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;width:100%;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:14px}}
tr.ref td{{background:#f3f3f3;font-style:italic}}img{{max-width:100%}}
</style></head><body>
<h1>Capstone leaderboard</h1>
<p>{len(board.closed)} closed, {len(board.open)} open, {len(board.invalid)} invalid, {len(board.none)} without a capstone result.</p>
<ul><li>{html_escape(_thresholds_line(board))}</li><li>{html_escape(_machines_line(board))}</li>
<li>front: on the Pareto front of all valid submissions (accuracy up, p50 latency down, size down)</li></ul>
<img alt="accuracy vs latency, marker area by model size, Pareto front joined" src="data:image/png;base64,{image}">
{chr(10).join(parts)}
</body></html>
"""


def _plot_label(name: str, limit: int = 24) -> str:
    """A name for the plot: ASCII only (no missing glyphs), short."""
    text = printable(name).encode("ascii", "backslashreplace").decode("ascii")
    return _clip(text, limit).replace("\u2026", "...")


def plot(board: Board) -> bytes:
    """PNG: accuracy vs p50 latency; marker area by size in bytes; the class Pareto front joined."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    valid = [r.entry for r in board.closed + board.open]
    sizes = [e.size_bytes for e in valid] + ([board.baseline["size_bytes"]] if board.baseline else [])
    biggest = max(sizes) if sizes else 1

    def area(size: float) -> float:
        return 30.0 + 470.0 * size / biggest

    for status, color in (("closed", "#3b7dd8"), ("open", "#e08a1e")):
        group = [e for e in valid if e.status == status]
        if group:
            ax.scatter([e.latency_p50_ms for e in group], [e.accuracy * 100 for e in group],
                       s=[area(e.size_bytes) for e in group], c=color, alpha=0.6, edgecolors="black",
                       linewidths=0.5, label=f"{status} ({len(group)})")
    if board.baseline:
        b = board.baseline
        ax.scatter([b["latency_p50_ms"]], [b["accuracy"] * 100], s=[area(b["size_bytes"])], marker="*",
                   c="black", label="baseline")
    if board.front:
        ax.plot([e.latency_p50_ms for e in board.front], [e.accuracy * 100 for e in board.front], "--",
                color="#b00020", linewidth=1.2, label="Pareto front (all valid)")
        for e in board.front:
            ax.annotate(_plot_label(e.name), (e.latency_p50_ms, e.accuracy * 100), textcoords="offset points",
                        xytext=(6, 6), fontsize=8, parse_math=False)
    if not valid:
        ax.text(0.5, 0.5, "no valid capstone submissions", transform=ax.transAxes, ha="center", va="center")
    ax.set_xlabel("single-image latency p50 (ms), lower is better")
    ax.set_ylabel("test accuracy (%), higher is better")
    ax.set_title("Capstone: accuracy vs latency (marker area by model bytes)")
    ax.grid(True, alpha=0.3)
    if valid or board.baseline:
        legend = ax.legend(loc="lower right", fontsize=8)
        for handle in legend.legend_handles:
            if hasattr(handle, "set_sizes"):
                handle.set_sizes([40.0])  # legend markers of one size: the area scale is per point
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


# -- writing -------------------------------------------------------------------------------


def write(results: Iterable[tuple[str, dict]], out_dir: Path, skipped: Iterable[tuple[str, str]] = ()) -> dict[str, Path]:
    """Write leaderboard.md, .html and .png into `out_dir`; returns their paths by format."""
    board = build(results, skipped)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png = plot(board)
    paths = {fmt: out_dir / name for fmt, name in FILES.items()}
    paths["png"].write_bytes(png)
    paths["md"].write_text(markdown(board), encoding="utf-8")
    paths["html"].write_text(html_page(board, png), encoding="utf-8")
    return paths


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return {"unreadable": f"its grade JSON {path.name} is unreadable ({type(err).__name__}: {err})"}
    if not isinstance(data, dict):
        return {"unreadable": f"its grade JSON {path.name} is {type(data).__name__}, not an object"}
    return data


def write_for_batch(out_dir: Path, stems: Iterable[str], skipped: Iterable[tuple[str, str]] = ()) -> dict[str, Path]:
    """The leaderboard of one batch: read OUT/<stem>.json for each graded learner."""
    out_dir = Path(out_dir)
    results = [(stem, _load(out_dir / f"{stem}.json")) for stem in sorted(stems)]
    return write(results, out_dir, skipped)


def write_from_folder(out_dir: Path) -> dict[str, Path]:
    """Rebuild the leaderboard of a finished batch folder from every grade JSON in it."""
    out_dir = Path(out_dir)
    stems = [p.name[: -len(".json")] for p in out_dir.glob("*.json") if not p.name.endswith(".gradescope.json")]
    return write_for_batch(out_dir, stems)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("usage: python -m grading.leaderboard OUT  (a `kata grade --submissions` output folder)", file=sys.stderr)
        return 2
    for path in write_from_folder(Path(args[0])).values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
