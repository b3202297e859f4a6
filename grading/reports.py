"""Render a grade result (grading/grade.py) as JSON, Gradescope results.json, JUnit XML,
an HTML or Markdown report, and (batch mode) a class summary CSV."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
import statistics
import xml.etree.ElementTree as ET
from pathlib import Path

STATUS_WORDS = {
    "passed": "passed", "failing": "failing", "rejected": "rejected", "error": "error",
    "not_available": "not yet available", "locked": "locked", "missed": "missed target",
}


def write_json(result: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")


def points_cell(entry: dict) -> str:
    """'7.5/10'; an item not yet available in the course counts as 0/0 (docs/GRADING.md)."""
    if not entry.get("available", True) or entry.get("status") == "not_available":
        return "0/0"
    return f"{entry['points']:g}/{entry['points_max']:g}"


def module_line(entry: dict) -> str:
    status = entry.get("status")
    if status == "not_available":
        return "not yet available: 0/0 points (not counted)"
    counts = f"{entry.get('checks_passed', 0)}/{entry.get('checks_total', 0)} checks"
    text = f"{STATUS_WORDS.get(status, status)}: {counts}, {entry['points']:g}/{entry['points_max']:g} points"
    if entry.get("reason"):
        text += f" - {entry['reason']}"
    return text


# -- Gradescope ------------------------------------------------------------------


def gradescope(result: dict) -> dict:
    """Gradescope's results.json: one test per module, threshold and milestone (available ones)."""
    tests = []
    for m in result["modules"]:
        if not m.get("available"):
            continue
        threshold_points = sum(t["points"] for t in m.get("thresholds", []))
        lines = [module_line(m)]
        failing = [c for c in m.get("checks", []) if c.get("outcome") != "passed"]
        for c in failing[:25]:
            lines.append(f"  x {c['id']}: {c.get('message', '')}")
        if len(failing) > 25:
            lines.append(f"  ... and {len(failing) - 25} more")
        for f in m.get("static_check", {}).get("rejections", []):
            lines.append(f"  static check: {f}")
        for name, digest in m.get("kata_files", {}).items():
            lines.append(f"  sha256 katas/{name}: {digest or 'missing'}")
        check_points = round(m["points"] - sum(t.get("earned", 0) for t in m.get("thresholds", [])), 2)
        tests.append({
            "name": f"Module {m['key']}: {m['title']}",
            "number": f"{m['number']}",
            "score": check_points,
            "max_score": round(m["points_max"] - threshold_points, 2),
            "status": "passed" if m.get("status") == "passed" else "failed",
            "output": "\n".join(lines),
            "tags": [m.get("tier", ""), "module"],
            "visibility": "visible",
        })
        for i, t in enumerate(m.get("thresholds", []), start=1):
            tests.append({
                "name": f"Module {m['key']} threshold: {t['name']}",
                "number": f"{m['number']}.{i}",
                "score": t.get("earned", 0.0),
                "max_score": t["points"],
                "status": "passed" if t.get("passed") else "failed",
                "output": t.get("message", ""),
                "tags": ["threshold"],
                "visibility": "visible",
            })
    for i, s in enumerate(result.get("milestones", []), start=1):
        if not s.get("available"):
            continue
        assembly = s.get("assembly") or {}
        output = [f"{STATUS_WORDS.get(s['status'], s['status'])}: {s.get('message', '')}"]
        if assembly:
            output.append(f"  your modules: {', '.join(assembly.get('from_learner', [])) or 'none'}")
            output.append(f"  lent from the reference: {', '.join(assembly.get('from_reference', [])) or 'none'}")
        tests.append({
            "name": f"Milestone {s['year']}: {s['title']}",
            "number": f"M{i}",
            "score": s["points"],
            "max_score": s["points_max"],
            "status": "passed" if s["status"] == "passed" else "failed",
            "output": "\n".join(output),
            "tags": ["milestone"],
            "visibility": "visible",
        })
    unavailable = [m["key"] for m in result["modules"] if not m.get("available")]
    summary = [f"TinyTorch Katas: {result['score']:g}/{result['max_score']:g} points"]
    if unavailable:
        summary.append(f"Not yet available in the course (not counted): {', '.join(unavailable)}")
    if result.get("fallback"):
        summary.append(f"Milestones may use the {result['fallback']} for modules you have not passed (see each milestone).")
    return {
        "score": result["score"],
        "max_score": result["max_score"],
        "execution_time": round(result["duration"], 2),
        "output": "\n".join(summary),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {"schema": result["schema"], "kata_sha256": result["integrity"]["kata_sha256"]},
        "tests": tests,
    }


# -- JUnit -------------------------------------------------------------------------


def junit_xml(result: dict) -> str:
    suites = ET.Element("testsuites", name="tinytorch-katas", time=f"{result['duration']:.3f}")
    for m in result["modules"]:
        checks = m.get("checks", [])
        suite = ET.SubElement(suites, "testsuite", name=m["key"], tests=str(max(len(checks), 1)),
                              time=f"{m.get('duration', 0):.3f}")
        if not m.get("available"):
            case = ET.SubElement(suite, "testcase", classname=m["key"], name="module")
            ET.SubElement(case, "skipped", message="not yet available")
            continue
        failures = 0
        if not checks or m.get("status") in ("rejected", "error"):
            case = ET.SubElement(suite, "testcase", classname=m["key"], name="module")
            if m.get("status") != "passed":
                ET.SubElement(case, "failure", message=m.get("reason") or m.get("status", "failed"))
                failures += 1
        for c in checks:
            case = ET.SubElement(suite, "testcase", classname=m["key"], name=c["id"], time=f"{c.get('duration', 0):.3f}")
            if c["outcome"] == "skipped":
                ET.SubElement(case, "skipped", message=c.get("message", ""))
            elif c["outcome"] != "passed":
                failure = ET.SubElement(case, "failure", message=c.get("message", "") or "failed")
                failure.text = c.get("detail", "") or m.get("reason", "")
                failures += 1
        for t in m.get("thresholds", []):
            case = ET.SubElement(suite, "testcase", classname=f"{m['key']}.thresholds", name=t["name"])
            if not t.get("passed"):
                ET.SubElement(case, "failure", message=t.get("message", "failed"))
                failures += 1
        suite.set("failures", str(failures))
    ms = ET.SubElement(suites, "testsuite", name="milestones", tests=str(len(result.get("milestones", []))))
    for s in result.get("milestones", []):
        case = ET.SubElement(ms, "testcase", classname="milestones", name=s["slug"], time=f"{s.get('duration', 0):.3f}")
        if s["status"] in ("not_available", "locked"):
            ET.SubElement(case, "skipped", message=s.get("message", s["status"]))
        elif s["status"] != "passed":
            ET.SubElement(case, "failure", message=s.get("message", s["status"]))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


# -- HTML / Markdown report -----------------------------------------------------------


def points_chart(result: dict) -> bytes:
    """A PNG bar chart: points earned vs available per module and milestone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = [(m["key"], m["points"], m["points_max"]) for m in result["modules"] if m.get("available")]
    items += [(f"M:{s['slug']}", s["points"], s["points_max"]) for s in result.get("milestones", []) if s.get("available")]
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(items) + 2), 3.6))
    labels = [i[0] for i in items]
    ax.bar(labels, [i[2] for i in items], color="#dddddd", label="available")
    ax.bar(labels, [i[1] for i in items], color="#3b7dd8", label="earned")
    ax.set_ylabel("points")
    ax.set_title(f"Points per module: {result['score']:g}/{result['max_score']:g}")
    ax.legend(loc="upper right")
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _img_tag(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def html_report(result: dict) -> str:
    esc = html.escape
    rows = []
    for m in result["modules"]:
        rows.append(f"<tr class='{esc(m['status'])}'><td>{esc(m['key'])}</td><td>{esc(m['title'])}</td>"
                    f"<td>{esc(STATUS_WORDS.get(m['status'], m['status']))}</td>"
                    f"<td>{m.get('checks_passed', 0)}/{m.get('checks_total', 0)}</td>"
                    f"<td>{points_cell(m)}</td><td>{esc(m.get('reason', ''))}</td></tr>")
    details = []
    for m in result["modules"]:
        failing = [c for c in m.get("checks", []) if c.get("outcome") != "passed"]
        if failing:
            items = "".join(f"<li><code>{esc(c['id'])}</code>: {esc(c.get('message', ''))}</li>" for c in failing[:40])
            details.append(f"<details><summary>{esc(m['key'])}: {len(failing)} failing checks</summary><ul>{items}</ul></details>")
        for t in m.get("thresholds", []):
            details.append(f"<p>{esc(m['key'])} threshold <b>{esc(t['name'])}</b>: {esc(t['message'])}"
                           f" ({t.get('earned', 0):g}/{t['points']:g} points)</p>")
    ms_rows, plots = [], []
    for s in result.get("milestones", []):
        a = s.get("assembly") or {}
        ms_rows.append(f"<tr class='{esc(s['status'])}'><td>{s['year']}</td><td>{esc(s['title'])}</td>"
                       f"<td>{esc(STATUS_WORDS.get(s['status'], s['status']))}</td><td>{esc(s.get('message', ''))}</td>"
                       f"<td>{points_cell(s)}</td>"
                       f"<td>{esc(', '.join(a.get('from_learner', [])))}</td>"
                       f"<td>{esc(', '.join(a.get('from_reference', [])))}</td></tr>")
        for artifact in s.get("artifacts", []):
            path = Path(artifact)
            if path.suffix.lower() == ".png" and path.is_file():
                plots.append(f"<figure>{_img_tag(path.read_bytes(), path.name)}<figcaption>{esc(s['slug'])}: "
                             f"{esc(path.name)}</figcaption></figure>")
    hashes = "".join(f"<tr><td><code>katas/{esc(k)}</code></td><td><code>{esc(v or 'missing')}</code></td></tr>"
                     for k, v in result["integrity"]["kata_sha256"].items())
    staff = "".join(f"<li>{esc(line)}</li>" for line in integrity_lines(result))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>TinyTorch Katas grade report</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;width:100%;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:14px}}
tr.passed td:nth-child(3){{color:#176f2c}}tr.failing td:nth-child(3),tr.rejected td:nth-child(3),tr.error td:nth-child(3),tr.missed td:nth-child(3){{color:#b00020}}
tr.not_available,tr.locked{{color:#888}}img{{max-width:100%}}code{{font-size:12px}}
</style></head><body>
<h1>TinyTorch Katas: {result['score']:g}/{result['max_score']:g} points</h1>
<p>Submission <code>{esc(result['submission'])}</code>, implementation <code>{esc(result['impl'])}</code>,
graded {esc(result['graded_at'])} in {result['duration']:.1f} s. Learner files unchanged by grading:
<b>{result['integrity']['learner_files_unchanged']}</b>.</p>
{_img_tag(points_chart(result), 'points per module')}
<h2>Modules</h2>
<table><tr><th>module</th><th>title</th><th>status</th><th>checks</th><th>points</th><th>reason</th></tr>{''.join(rows)}</table>
{''.join(details)}
<h2>Milestones</h2>
<table><tr><th>year</th><th>milestone</th><th>status</th><th>measured</th><th>points</th><th>your modules</th><th>from the reference</th></tr>{''.join(ms_rows)}</table>
{''.join(plots)}
<h2>Integrity</h2>
<ul>{staff}</ul>
<table><tr><th>kata file</th><th>sha256</th></tr>{hashes}</table>
</body></html>
"""


def integrity_lines(result: dict) -> list[str]:
    """What course staff should know about how this submission was graded (grading/integrity.py)."""
    found = result.get("integrity", {})
    lines = [f"learner code isolation: {found.get('isolation', 'unknown')} (docs/GRADING.md, 'What is enforced where')",
             f"learner files unchanged by grading: {found.get('learner_files_unchanged')}"]
    if result.get("aborted"):
        lines.insert(0, f"ABORTED: {result['aborted']}")
    for m in result.get("modules", []):
        checked = m.get("static_check", {})
        for finding in checked.get("rejections", []):
            lines.append(f"{m['key']} rejected: {finding}")
        for finding in checked.get("warnings", []):
            lines.append(f"{m['key']}: {finding}")
        if m.get("status") == "rejected" and not checked.get("rejections"):
            lines.append(f"{m['key']} rejected: {m.get('reason', '')}")
    return lines


def markdown_report(result: dict, chart_name: str = "points.png") -> str:
    lines = [f"# TinyTorch Katas: {result['score']:g}/{result['max_score']:g} points", "",
             f"![points per module]({chart_name})", "", "| module | status | checks | points | reason |",
             "|---|---|---|---|---|"]
    for m in result["modules"]:
        lines.append(f"| {m['key']} | {STATUS_WORDS.get(m['status'], m['status'])} | {m.get('checks_passed', 0)}/"
                     f"{m.get('checks_total', 0)} | {points_cell(m)} | {m.get('reason', '')} |")
    lines += ["", "| milestone | status | measured | points | your modules | from the reference |", "|---|---|---|---|---|---|"]
    for s in result.get("milestones", []):
        a = s.get("assembly") or {}
        lines.append(f"| {s['year']} {s['slug']} | {STATUS_WORDS.get(s['status'], s['status'])} | {s.get('message', '')} | "
                     f"{points_cell(s)} | {', '.join(a.get('from_learner', []))} | "
                     f"{', '.join(a.get('from_reference', []))} |")
    lines += ["", "## Integrity", ""] + [f"- {line}" for line in integrity_lines(result)]
    lines += ["", "## Kata files graded (sha256)", ""]
    lines += [f"- `katas/{k}`: `{v or 'missing'}`" for k, v in result["integrity"]["kata_sha256"].items()]
    return "\n".join(lines) + "\n"


def write_report(result: dict, folder: Path, fmt: str = "html") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "md":
        (folder / "points.png").write_bytes(points_chart(result))
        for s in result.get("milestones", []):
            for artifact in s.get("artifacts", []):
                path = Path(artifact)
                if path.suffix.lower() == ".png" and path.is_file():
                    (folder / f"{s['slug']}-{path.name}").write_bytes(path.read_bytes())
        text = markdown_report(result)
        for s in result.get("milestones", []):
            for artifact in s.get("artifacts", []):
                if artifact.lower().endswith(".png"):
                    text += f"\n![{s['slug']}]({s['slug']}-{Path(artifact).name})\n"
        target = folder / "report.md"
        target.write_text(text)
        return target
    target = folder / "report.html"
    target.write_text(html_report(result))
    return target


# -- batch summary -------------------------------------------------------------------


class ClassSummary:
    """The batch's summary CSV, written as it goes: one row per submission, on disk when added.

    Columns: submission (its folder name; undecodable bytes as \\xNN), score, max_score, error
    (or "skipped: <reason>" for an entry that was not graded), output (the stem of its result
    files), then the points of each module and milestone. `finish()` rewrites the file in name
    order with the pass rate and median seconds of each column; until then (or if the batch
    crashes) it holds every row finished so far, in the order they finished.
    """

    def __init__(self, path: Path, modules: list[str], milestones: list[str]):
        self.path, self.modules, self.milestones = Path(path), list(modules), list(milestones)
        self.rows: list[tuple[str, str, dict]] = []  # (name, output stem, result)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerow(self.header())
            handle.flush()
            os.fsync(handle.fileno())

    def header(self) -> list[str]:
        return ["submission", "score", "max_score", "error", "output", *self.modules,
                *[f"M:{s}" for s in self.milestones]]

    def _row(self, name: str, stem: str, r: dict) -> list:
        by_key = {m["key"]: m for m in r.get("modules", [])}
        by_slug = {s["slug"]: s for s in r.get("milestones", [])}
        skipped = r.get("skipped")
        return [name, "" if skipped else r.get("score", 0), "" if skipped else r.get("max_score", 0),
                f"skipped: {skipped}" if skipped else r.get("error", ""), stem,
                *[by_key.get(k, {}).get("points", "") for k in self.modules],
                *[by_slug.get(s, {}).get("points", "") for s in self.milestones]]

    def _append(self, row: list) -> None:
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerow(row)
            handle.flush()
            os.fsync(handle.fileno())

    def add(self, name: str, stem: str, result: dict) -> None:
        self.rows.append((name, stem, result))
        self._append(self._row(name, stem, result))

    def skip(self, name: str, reason: str) -> None:
        self.add(name, "", {"skipped": reason})

    def finish(self) -> None:
        """Rewrite the file in name order (graded first, then skipped) with rates and medians."""
        graded = sorted((r for r in self.rows if not r[2].get("skipped")), key=lambda r: r[0])
        skipped = sorted((r for r in self.rows if r[2].get("skipped")), key=lambda r: r[0])
        complete = [r for _, _, r in graded if "modules" in r]
        pass_rates, medians = [], []
        for k in self.modules:
            entries = [m for r in complete for m in r["modules"] if m["key"] == k]
            durations = [m["duration"] for m in entries if "duration" in m]
            pass_rates.append(f"{sum(m.get('status') == 'passed' for m in entries) / max(len(entries), 1):.2f}")
            medians.append(f"{statistics.median(durations):.1f}" if durations else "")
        for slug in self.milestones:
            entries = [s for r in complete for s in r.get("milestones", []) if s["slug"] == slug]
            durations = [s["duration"] for s in entries if "duration" in s]
            pass_rates.append(f"{sum(s.get('status') == 'passed' for s in entries) / max(len(entries), 1):.2f}")
            medians.append(f"{statistics.median(durations):.1f}" if durations else "")
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(self.header())
            for name, stem, r in graded + skipped:
                writer.writerow(self._row(name, stem, r))
            writer.writerow(["#pass_rate", "", "", "", "", *pass_rates])
            writer.writerow(["#median_seconds", "", "", "", "", *medians])
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)


def class_summary_csv(results: dict[str, dict], path: Path) -> None:
    """The whole summary at once (columns from the results): one row per submission, then rates."""
    modules, milestones = [], []
    for r in results.values():
        for m in r.get("modules", []):
            if m.get("available") and m["key"] not in modules:
                modules.append(m["key"])
        for s in r.get("milestones", []):
            if s.get("available") and s["slug"] not in milestones:
                milestones.append(s["slug"])
    summary = ClassSummary(path, modules, milestones)
    for name in sorted(results):
        summary.rows.append((name, results[name].get("output_name", ""), results[name]))
    summary.finish()
