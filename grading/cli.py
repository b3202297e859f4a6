"""The `kata` command line: status, check, grade, milestone, stubs, hint, watch.

    kata status                 where you are: 20 modules and 6 milestones
    kata check 01               run module 01's checks on your kata and explain failures
    kata hint 01 [--all]        a hint for the first failing check (--all: every hint)
    kata watch                  re-run the checks of the module whose file you save
    kata milestone perceptron   train a historical model on your framework
    kata grade                  everything, as course staff grade it (--json/--gradescope/...)
    kata stubs [--check]        (re)generate pristine stubs; never overwrites your work
    kata release --out DIR      (course staff) write the student repository: no reference/
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections import OrderedDict
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from grading import assembly, grade as _grade, integrity, reports, runner, sandbox, state
from grading import curriculum as _curriculum
from grading import stubs as _stubs

ROOT = _curriculum.PROJECT_ROOT
# In CI logs and autograders (no terminal) rich would wrap tables at 80 columns.
_LOG_WIDTH = None if sys.stdout.isatty() else 140
console = Console(highlight=False, width=_LOG_WIDTH)

STYLE = {
    "passed": ("passed", "bold green"), "failing": ("failing", "bold red"), "stale": ("stale", "yellow"),
    "not_started": ("not started", "dim"), "in_progress": ("in progress", "cyan"), "missing": ("missing", "red"),
    "locked": ("locked", "magenta"), "not_available": ("not yet available", "dim italic"),
    "rejected": ("rejected", "bold red"), "error": ("error", "bold red"), "missed": ("missed target", "red"),
    "ready": ("ready", "cyan"),
}


def styled(status: str) -> Text:
    word, style = STYLE.get(status, (status, ""))
    return Text(word, style=style)


def katas_option(fn):
    return click.option("--katas", "katas", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="your katas folder (default: $TINYTORCH_KATAS or <project>/katas)")(fn)


def impl_option(fn):
    return click.option("--impl", default="katas", show_default=True,
                        help="katas, reference, or a mix such as 'katas,05=reference'")(fn)


def _katas_dir(path: Path | None) -> Path:
    return (path or _grade.default_katas_dir()).resolve()


def _validate_impl(impl: str) -> str:
    try:
        assembly.parse_impl(impl)
    except assembly.ImplSpecError as err:
        raise click.BadParameter(str(err), param_hint="--impl") from None
    return impl


def _module(ref: str) -> _curriculum.Module:
    try:
        return _curriculum.load().module(ref)
    except _curriculum.CurriculumError as err:
        raise click.BadParameter(str(err)) from None


def _memory(text: str | None) -> int | None:
    return sandbox.parse_size(text) if text else None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """TinyTorch Katas: build a PyTorch-like framework one tested kata at a time."""


# -- status ------------------------------------------------------------------------


@main.command()
@katas_option
def status(katas: Path | None) -> None:
    """A board of every module and milestone (from the cached results of check/grade)."""
    katas_dir = _katas_dir(katas)
    cur = _curriculum.load()
    states = state.module_states(katas_dir)
    cached_ms = state.load(katas_dir).get("milestones", {})
    for tier, tier_title in cur.tiers.items():
        table = Table(title=tier_title, title_justify="left", expand=True)
        table.add_column("#", justify="right", width=3)
        table.add_column("module")
        table.add_column("status")
        table.add_column("checks", justify="right")
        table.add_column("points", justify="right")
        table.add_column("note", overflow="fold")
        for module in (m for m in cur.modules if m.tier == tier):
            s = states[module.number]
            checks = f"{s.passed}/{s.total}" if s.total else ""
            table.add_row(f"{module.number:02d}", module.title, styled(s.status), checks, board_points(module, s),
                          s.detail)
        console.print(table)
    table = Table(title="Milestones", title_justify="left", expand=True)
    for column in ("year", "milestone", "status", "target", "note"):
        table.add_column(column)
    for milestone in cur.milestones:
        note, status_ = "", "ready"
        if not milestone.is_available():
            status_, note = "not_available", ""
        else:
            blockers = [f"{n:02d}" for n in milestone.requires if states[n].status != "passed"]
            cached = cached_ms.get(milestone.slug)
            if blockers:
                status_, note = "locked", (f"needs {state.span(blockers)} passed (or `kata milestone "
                                           f"{milestone.slug} --fallback reference`)")
            if cached and not blockers:
                status_, note = cached["status"], cached.get("message", "")
        table.add_row(str(milestone.year), milestone.title, styled(status_),
                      milestone.target_text(), note)
    console.print(table)
    console.print(points_total(states, cached_ms))
    nxt = state.current_module(katas_dir)
    if nxt is not None:
        console.print(f"Next: [bold]kata check {nxt.number:02d}[/] ({nxt.title}) - [dim]results cached in {state.cache_dir()}[/]")


def board_points(module: _curriculum.Module, s: state.ModuleState) -> str:
    """'7.5/10' (earned by the cached result / the module's points), '0/0' when not yet available."""
    if s.status == "not_available":
        return "0/0"
    earned = s.points if s.points is not None and s.status in ("passed", "failing") else 0.0
    return f"{earned:g}/{module.points:g}"


def points_total(states: dict[int, state.ModuleState], cached_ms: dict) -> str:
    """The board's total: points earned by the cached (fresh) results out of what is available now."""
    cur = _curriculum.load()
    earned = sum((s.points or 0.0) for s in states.values() if s.status in ("passed", "failing"))
    available = sum(m.points for m in cur.modules if m.is_available())
    for milestone in cur.milestones:
        if milestone.is_available():
            available += milestone.points
            if (cached_ms.get(milestone.slug) or {}).get("status") == "passed":
                earned += milestone.points
    return (f"Points: {round(earned, 2):g}/{available:g} available now ({cur.total_points:g} when the course is "
            "complete); checks only - `kata grade` also measures the performance thresholds")


# -- check -------------------------------------------------------------------------


def _grouped_failures(checks: list[runner.CheckResult]) -> list[tuple[str, str, int]]:
    """(first check id, explanation, how many variants) with parametrized variants folded."""
    groups: "OrderedDict[tuple[str, str], list[str]]" = OrderedDict()
    for c in checks:
        if c.ok or c.outcome == "skipped":
            continue
        base = c.id.split("[")[0]
        groups.setdefault((base, c.message), []).append(c.id)
    return [(ids[0], message, len(ids)) for (base, message), ids in groups.items()]


def show_run(module: _curriculum.Module, run: runner.ModuleRun, *, limit: int = 30, verbose: bool = False,
             selected: str | None = None) -> None:
    """The result table of a check run; `selected` is the -k expression when only some checks ran."""
    title = f"{module.key}: {run.passed}/{run.total} checks passed"
    if selected:
        title = f"{module.key}: {run.passed}/{run.total} checks selected by -k {selected!r} passed"
    if run.ok:
        verdict = (" (only these ran and nothing was recorded: run without -k to check the module)" if selected
                   else " - module passed")
        console.print(Panel(Text(title + verdict, style="bold green"), expand=False))
        if run.reason:
            console.print(f"[yellow]{run.reason}[/]")
        return
    console.print(Panel(Text(title, style="bold red"), expand=False))
    if run.reason:
        console.print(f"[bold red]The check run itself failed:[/] {escape(run.reason)}")
        if run.reason.startswith("import error") or "exited early" in run.reason or "crashed" in run.reason:
            tail = "\n".join(run.output_tail.strip().splitlines()[-15:])
            if tail:
                console.print(Panel(Text(tail), title="last output", border_style="dim"))
    groups = _grouped_failures(run.checks)
    if groups and not (run.reason and all(c.outcome == "missing" for c in run.checks)):
        table = Table(show_lines=False, expand=True)
        table.add_column("failing check", overflow="fold", ratio=2)
        table.add_column("why", overflow="fold", ratio=3)
        for check_id, message, count in groups[:limit]:
            label = check_id + (f"  (+{count - 1} more variants)" if count > 1 else "")
            table.add_row(Text(label), Text(message))
        console.print(table)
        if len(groups) > limit:
            console.print(f"... and {len(groups) - limit} more failing checks (use --all)")
    if verbose:
        shown = [c for c in run.checks if not c.ok and c.detail]
        seen: set[tuple[str, str]] = set()
        for c in shown:
            key = (c.id.split("[")[0], c.message)
            if key in seen:
                continue
            seen.add(key)
            console.print(Panel(Text(c.detail[-3000:]), title=escape(c.id), border_style="red"))
            if limit < 10_000:
                if len(seen) < len({(x.id.split("[")[0], x.message) for x in shown}):
                    console.print("[dim]tracebacks of the other failing checks: add --all[/]")
                break
    console.print("[dim]Stuck? `kata hint " + f"{module.number:02d}" + "` gives a hint for the first failing check.[/]")


def run_module_checks(module: _curriculum.Module, katas_dir: Path, impl: str, *, workers=None, select=None,
                      timeout=None, memory=None, quiet=False) -> tuple[runner.ModuleRun, dict]:
    """Run checks for the CLI (check/watch/hint) and record the result in the cache."""
    if impl == "katas":
        passed = state.passed_modules(katas_dir)
        from grading import release as _release

        # A student copy lends only the prerequisites whose solution is released (grading/release.py).
        run_impl = _release.without_unreleased(_grade.module_impl(module, _grade.GradeOptions(), passed))
        lent, unreleased = _release.lending(module, passed)
        if lent and not quiet:
            console.print(f"[yellow]Checked with {state.span(lent)} lent from the reference (prerequisites you have "
                          "not passed yet; see the README's learner's loop).[/]")
        if unreleased and not quiet:
            console.print(f"[yellow]{escape(_release.unreleased_message(unreleased))}[/]")
    else:
        run_impl = assembly.parse_impl(impl).render()
    report = integrity.static_check(katas_dir, module)
    if not quiet:
        for f in report.rejections:
            console.print(f"[bold red]The grader would reject this kata:[/] {f}")
    work = state.cache_dir() / "work"  # keeps the Hypothesis example database between runs
    work.mkdir(parents=True, exist_ok=True)
    status_ctx = console.status(f"running the checks of {module.key}...") if not quiet else contextlib.nullcontext()
    with status_ctx:
        run = runner.run_checks(module, katas_dir, run_impl, timeout=timeout, memory=memory, select=select,
                                workers=workers, hypothesis_profile=os.environ.get("HYPOTHESIS_PROFILE", "dev"),
                                cwd=work)
    entry = {"key": module.key, "status": run.status, "checks_passed": run.passed, "checks_total": run.total,
             "reason": run.reason, "impl": impl, "kata_files": integrity.kata_hashes(katas_dir, module),
             "checks": [{"id": c.id, "outcome": c.outcome, "message": c.message} for c in run.checks],
             "lent": state.lent_prerequisites(module, run_impl),
             "points": state.checks_points(module, run.passed, run.total)}
    if report.rejected and run.ok:
        entry["status"] = "rejected"
    if not select and impl == "katas":
        state.record_module(katas_dir, entry)
    return run, entry


@main.command()
@click.argument("module")
@impl_option
@katas_option
@click.option("-n", "--workers", default=None, help="run checks in parallel with pytest-xdist (e.g. 2 or auto)")
@click.option("-k", "select", default=None, help="only checks matching this pytest -k expression")
@click.option("--timeout", type=float, default=None, help="override the module's time limit (seconds)")
@click.option("--memory-limit", "memory", default=None, help="address-space limit, e.g. 4G (default 4G)")
@click.option("--all", "show_all", is_flag=True, help="list every failing check")
@click.option("-v", "--verbose", is_flag=True, help="show the traceback of the first failure")
def check(module, impl, katas, workers, select, timeout, memory, show_all, verbose) -> None:
    """Run one module's checks (MODULE: 1, 01, tensor or 01_tensor) and explain the failures."""
    mod = _module(module)
    impl = _validate_impl(impl)
    if not mod.is_available():
        console.print(f"{mod.key} ({mod.title}) is not yet available in this course.")
        sys.exit(2)
    katas_dir = _katas_dir(katas)
    run, entry = run_module_checks(mod, katas_dir, impl, workers=workers, select=select, timeout=timeout,
                                   memory=_memory(memory))
    show_run(mod, run, limit=10_000 if show_all else 30, verbose=verbose, selected=select)
    sys.exit(0 if run.ok and entry["status"] == "passed" else 1)


# -- hint --------------------------------------------------------------------------


@main.command()
@click.argument("module")
@katas_option
@click.option("--rerun", is_flag=True, help="run the checks even if a fresh cached result exists")
@click.option("--all", "show_all", is_flag=True, help="every hint for every failing check")
def hint(module, katas, rerun, show_all) -> None:
    """A hint for the first failing check of MODULE (chosen from what fails now; --all for every hint)."""
    from grading import hints

    mod = _module(module)
    if not mod.is_available():
        console.print(f"{mod.key} is not yet available in this course.")
        sys.exit(2)
    katas_dir = _katas_dir(katas)
    cached = state.load(katas_dir).get("modules", {}).get(mod.key)
    fresh = (cached and cached.get("hashes") == integrity.kata_hashes(katas_dir, mod)
             and cached.get("impl", "katas") != "reference")
    messages: dict[str, str] = {}
    if fresh and not rerun:
        failing = cached.get("failing", [])
        messages = cached.get("messages", {})
        passed = cached["status"] == "passed"
    elif _stubs.kata_state(katas_dir, mod) == "pristine" and not rerun:
        failing, passed = list(runner.expected_checks(mod.key)), False  # a pristine stub fails every check
        messages = {c: "not implemented yet (pristine stub)" for c in failing}
    else:
        run, entry = run_module_checks(mod, katas_dir, "katas")
        failing = [c.id for c in run.checks if not c.ok]
        messages = {c.id: c.message for c in run.checks if not c.ok}
        passed = run.ok
    if passed or not failing:
        console.print(f"[green]{mod.key} passes every check: no hint needed.[/]")
        return
    chosen = hints.choose(mod, failing, katas_dir, show_all=show_all, messages=messages)
    for h in chosen:
        where = f"hint {h.index}/{h.count}" if h.count else "no written hint"
        console.print(Panel(Text(h.text), title=f"{where} for {h.check} (from {h.source})", expand=False))
    if not show_all and chosen and chosen[0].count > 1:
        console.print(f"[dim]{chosen[0].count - 1} more hint(s) for this check: `kata hint {mod.number:02d} --all`[/]")


# -- watch -------------------------------------------------------------------------


def _mtimes(folder: Path) -> dict[str, float]:
    out = {}
    if folder.is_dir():
        for path in folder.glob("*.py"):
            try:
                out[path.name] = path.stat().st_mtime_ns
            except OSError:
                pass
    return out


def _all_mtimes(katas_dir: Path) -> dict[str, dict[str, float]]:
    """{module key: {file name: mtime}} for every available module's kata folder."""
    return {m.key: _mtimes(katas_dir / m.key) for m in _curriculum.load().modules if m.is_available()}


def changed_module(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]):
    """The module whose kata files changed between two `_all_mtimes` (the newest change wins), or None."""
    changed = [(max(after[key].values(), default=0), key) for key in after if after[key] != before.get(key)]
    if not changed:
        return None
    return _curriculum.load().module(max(changed)[1])


@main.command()
@click.argument("module", required=False)
@katas_option
@click.option("--interval", type=float, default=0.5, show_default=True, help="polling interval in seconds")
@click.option("--once", is_flag=True, hidden=True, help="run once and exit (tests)")
def watch(module, katas, interval, once) -> None:
    """Re-run checks whenever you save a kata file: of the module you saved (or of MODULE only)."""
    katas_dir = _katas_dir(katas)
    fixed = _module(module) if module else None
    fixed_now = None  # without MODULE: the module whose file changed last
    try:
        while True:
            mod = fixed or fixed_now or state.current_module(katas_dir)
            if mod is None:
                console.print("[bold green]Every available module passes. Well done![/]")
                return
            if not mod.is_available():
                console.print(f"{mod.key} is not yet available in this course.")
                return
            console.rule(f"{mod.key}: {mod.title}")
            run, _ = run_module_checks(mod, katas_dir, "katas")
            show_run(mod, run, limit=10)
            if once:
                return
            if run.ok and fixed is None and fixed_now is None:
                console.print(f"[green]{mod.key} passed: moving on.[/]")
                continue
            if fixed is not None:
                console.print(f"[dim]watching {katas_dir / mod.key} for changes (Ctrl-C to stop)...[/]")
                before = _mtimes(katas_dir / mod.key)
                while _mtimes(katas_dir / mod.key) == before:
                    time.sleep(interval)
                continue
            console.print(f"[dim]watching every kata in {katas_dir} for changes (Ctrl-C to stop)...[/]")
            before = _all_mtimes(katas_dir)
            while (changed := changed_module(before, _all_mtimes(katas_dir))) is None:
                time.sleep(interval)
            fixed_now = changed
    except KeyboardInterrupt:
        console.print("\nstopped watching.")


# -- stubs -------------------------------------------------------------------------


@main.command()
@click.argument("modules", nargs=-1)
@click.option("--check", "check_only", is_flag=True, help="report drift, write nothing (non-zero exit on drift)")
@click.option("--strict", is_flag=True, help="with --check: every kata must be a pristine stub (the course's CI)")
@click.option("--force", is_flag=True, help="overwrite kata files even if you edited them")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None, hidden=True,
              help="another project root (tests)")
def stubs(modules, check_only, strict, force, root) -> None:
    """(Re)generate kata stubs from the reference; never overwrites your work unless --force."""

    selected = [_module(m) for m in modules] or None
    if check_only:
        report = _stubs.check(root or ROOT, modules=selected, strict=strict)
        for line in report.drift:
            console.print(f"[red]{line}[/]")
        console.print("katas in sync with reference" if report.in_sync else f"{len(report.drift)} problem(s)")
        sys.exit(0 if report.in_sync else 1)
    report = _stubs.generate(root or ROOT, modules=selected, force=force)
    for path in report.written:
        console.print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    for path in report.refused:
        console.print(f"[yellow]refused {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: you edited "
                      "it since it was generated (use --force to overwrite - your work would be lost)[/]")
    if not report.written and not report.refused:
        console.print(f"{len(report.unchanged)} kata file(s) already up to date")
    sys.exit(1 if report.refused else 0)


# -- release -----------------------------------------------------------------------


@main.command()
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="the student copy: an empty folder, or an earlier copy to update")
@click.option("--solutions", default=None,
              help="also release these modules' reference solutions, e.g. 01-04 or 1,2,5 (kept on update)")
def release(out, solutions) -> None:
    """Write the repository a course hands out: stubs, lessons, checks, milestones, the tool; no reference."""
    from grading import release as _release

    try:
        report = _release.release(out, solutions)
    except _release.ReleaseError as err:
        console.print(f"[bold red]release failed:[/] {escape(str(err))}")
        sys.exit(1)
    verb = "updated" if report.update else "wrote"
    console.print(f"{verb} the student copy in {escape(str(report.out))}: {len(report.written)} files, "
                  f"{len(report.modules)} available modules ({', '.join(report.modules)})")
    console.print("released solutions: " + (", ".join(report.solutions) or "none (no reference/ in the copy)"))
    for rel in report.kept:
        console.print(f"[yellow]kept {escape(rel)}: edited by a learner (not overwritten)[/]")


# -- milestone ---------------------------------------------------------------------


@main.command()
@click.argument("slug")
@impl_option
@katas_option
@click.option("--fallback", type=click.Choice(["reference"]), default=None,
              help="lend the reference for required modules you have not passed")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="datasets (also TINYTORCH_DATA)")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="plots and logs")
@click.option("--timeout", type=float, default=None)
@click.option("--memory-limit", "memory", default=None)
@click.option("--seed", type=int, default=0)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
def milestone(slug, impl, katas, fallback, data_dir, out_dir, timeout, memory, seed, json_path) -> None:
    """Train a milestone model (SLUG: perceptron, xor, mnist-mlp, ... or a year) on your framework."""
    cur = _curriculum.load()
    try:
        ms = cur.milestone(slug)
    except _curriculum.CurriculumError as err:
        raise click.BadParameter(str(err)) from None
    impl = _validate_impl(impl)
    if not ms.is_available():
        console.print(f"Milestone {ms.year} ({ms.title}) is not yet available in this course.")
        sys.exit(2)
    katas_dir = _katas_dir(katas)
    if impl == "katas":
        states = state.module_states(katas_dir)
        modules = {n: {"status": "passed" if s.status == "passed" else s.status} for n, s in states.items()}
        plan = _grade.milestone_assembly(ms, modules, _grade.GradeOptions(fallback=fallback))
    elif impl == "reference":
        plan = _grade.milestone_assembly(ms, {}, _grade.GradeOptions(impl="reference"))
    else:
        plan = {"impl": assembly.parse_impl(impl).render(), "from_learner": [], "from_reference": [], "locked_by": []}
    if plan["locked_by"]:
        console.print(f"[magenta]Milestone {ms.slug} is locked:[/] it needs {', '.join(plan['locked_by'])}.")
        console.print("Pass those modules (`kata check NN`), or run with --fallback reference to borrow them.")
        sys.exit(1)
    console.print(f"[bold]{ms.year}: {ms.title}[/]  (tinytorch: {plan['impl']})")
    if plan["from_reference"]:
        console.print(f"[yellow]from the reference: {', '.join(plan['from_reference'])}[/]")
    out = out_dir or state.milestones_dir() / ms.slug  # the folder `kata grade` writes to as well
    result = runner.run_milestone(ms, katas_dir, plan["impl"], out_dir=out, data_dir=data_dir, timeout=timeout,
                                  memory=_memory(memory), seed=seed,
                                  on_output=lambda text: console.out(text, end="", highlight=False))
    entry = {"slug": ms.slug, "status": result.status, "value": result.value, "message": result.message,
             "assembly": plan}
    if impl == "katas" and not plan["from_reference"]:
        state.record_milestone(katas_dir, entry)
    style = "bold green" if result.status == "passed" else "bold red"
    console.print(Panel(Text(f"{result.status.upper()}: {result.message}", style=style), expand=False))
    for artifact in result.artifacts:
        console.print(f"plot: {artifact}")
    if json_path:
        json_path.write_text(json.dumps({**entry, "duration": result.duration, "artifacts": result.artifacts}, indent=2))
    sys.exit(0 if result.status == "passed" else 1)


# -- grade -------------------------------------------------------------------------


def _grade_table(result: dict) -> Table:
    table = Table(title=f"Grade: {result['score']:g}/{result['max_score']:g} points", expand=True)
    table.add_column("item")
    table.add_column("status")
    table.add_column("checks", justify="right")
    table.add_column("points", justify="right")
    table.add_column("time", justify="right")
    table.add_column("note", overflow="fold", ratio=2)
    for m in result["modules"]:
        checks = f"{m.get('checks_passed', 0)}/{m.get('checks_total', 0)}" if m.get("available") else "0/0"
        note = m.get("reason", "") if m.get("available") else "not yet available (not counted)"
        for t in m.get("thresholds", []):
            note += f"{'; ' if note else ''}{t['name']}: {t['message']}"
        table.add_row(f"{m['key']}", styled(m["status"]), checks,
                      f"{m['points']:g}/{m['points_max']:g}" if m.get("available") else "0/0",
                      f"{m.get('duration', 0):.1f}s" if m.get("available") else "", note)
    for s in result.get("milestones", []):
        note = s.get("message", "")
        a = s.get("assembly") or {}
        if a.get("from_reference"):
            note += f" [from the reference: {', '.join(a['from_reference'])}]"
        table.add_row(f"{s['year']} {s['slug']}", styled(s["status"]), "",
                      f"{s['points']:g}/{s['points_max']:g}" if s.get("available") else "0/0",
                      f"{s.get('duration', 0):.1f}s" if s.get("duration") else "", note)
    return table


def _milestone_slugs(refs: str | None) -> list[str] | None:
    """'lenet,1986' -> ['lenet', 'mnist-mlp'] (slugs or years); None keeps every milestone."""
    if not refs:
        return None
    try:
        return [_curriculum.load().milestone(part.strip()).slug for part in refs.split(",") if part.strip()]
    except _curriculum.CurriculumError as err:
        raise click.BadParameter(str(err)) from None


def _options(impl, fallback, no_milestones, modules, timeout, memory, select, data_dir, out_dir, profile,
             no_static_check, no_thresholds, run_pristine, seed, milestones=None) -> _grade.GradeOptions:
    numbers = None
    if modules:
        numbers = [_module(part).number for part in modules.split(",") if part.strip()]
    return _grade.GradeOptions(impl=impl, fallback=fallback, milestones=not no_milestones, modules=numbers,
                               milestone_slugs=_milestone_slugs(milestones),
                               timeout=timeout, memory=_memory(memory), select=select, data_dir=data_dir,
                               out_dir=out_dir, hypothesis_profile=profile, static_check=not no_static_check,
                               thresholds=not no_thresholds, run_pristine=run_pristine, seed=seed)


def write_outputs(result: dict, json_path, gradescope_path, junit_path, report_dir, report_format) -> None:
    if json_path:
        reports.write_json(result, Path(json_path))
    if gradescope_path:
        reports.write_json(reports.gradescope(result), Path(gradescope_path))
    if junit_path:
        Path(junit_path).parent.mkdir(parents=True, exist_ok=True)
        Path(junit_path).write_text(reports.junit_xml(result))
    if report_dir:
        reports.write_report(result, Path(report_dir), report_format)


@main.command()
@impl_option
@katas_option
@click.option("--fallback", type=click.Choice(["reference"]), default=None,
              help="milestones borrow the reference for required modules not passed (the report says so)")
@click.option("--no-milestones", is_flag=True, help="grade modules only")
@click.option("--modules", default=None, help="only these modules, e.g. 1,2,3")
@click.option("--milestones", "milestone_refs", default=None,
              help="only these milestones, by slug or year, e.g. lenet,1986 (the others are not graded)")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="the full machine-readable result")
@click.option("--gradescope", "gradescope_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Gradescope results.json")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="write a self-contained report (with plots) into this folder")
@click.option("--report-format", type=click.Choice(["html", "md"]), default="html", show_default=True)
@click.option("--submissions", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="batch mode: one learner checkout per subdirectory (each with a katas/ folder)")
@click.option("--jobs", "-j", type=int, default=2, show_default=True, help="batch mode: submissions graded at once")
@click.option("--out", "out_dir_batch", type=click.Path(file_okay=False, path_type=Path), default=Path("grades"),
              show_default=True, help="batch mode: where result JSONs and summary.csv go")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--milestone-out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="where milestone plots go (default .kata/milestones, as `kata milestone`)")
@click.option("--timeout", type=float, default=None, help="override every time limit (seconds)")
@click.option("--memory-limit", "memory", default=None, help="address-space limit per process, e.g. 4G")
@click.option("-k", "select", default=None, hidden=True, help="only checks matching -k (debugging, tests)")
@click.option("--hypothesis-profile", "profile", default="ci", show_default=True)
@click.option("--no-static-check", is_flag=True, help="do not reject katas on the static import/escape check")
@click.option("--no-thresholds", is_flag=True, help="skip the performance thresholds (they then score 0)")
@click.option("--run-pristine", is_flag=True, help="run checks even on untouched stubs (they always fail)")
@click.option("--no-tamper-check", is_flag=True,
              help="do not fail a module when course files change during its run (live author checkouts)")
@click.option("--seed", type=int, default=0)
def grade(impl, katas, fallback, no_milestones, modules, milestone_refs, json_path, gradescope_path, junit_path, report_dir,
          report_format, submissions, jobs, out_dir_batch, data_dir, out_dir, timeout, memory, select, profile,
          no_static_check, no_thresholds, run_pristine, no_tamper_check, seed) -> None:
    """Grade every available module, then the milestones, in isolated processes."""
    impl = _validate_impl(impl)
    options = _options(impl, fallback, no_milestones, modules, timeout, memory, select, data_dir,
                       out_dir if out_dir is not None or submissions is not None else state.milestones_dir(), profile,
                       no_static_check, no_thresholds, run_pristine, seed, milestones=milestone_refs)
    if no_tamper_check:
        options.tamper_check = False
    if submissions is not None:
        from grading import batch

        summary = batch.grade_many(submissions, out_dir_batch, options, jobs=jobs, console=console)
        console.print(f"graded {summary['count']} submission(s): results in {out_dir_batch}, "
                      f"class summary {summary['csv']}")
        if summary["skipped"]:
            console.print(f"[yellow]skipped {len(summary['skipped'])} entr{'y' if len(summary['skipped']) == 1 else 'ies'}"
                          " (listed above and in the summary CSV)[/]")
        for stem in summary["errors"]:
            failed = summary["results"][stem]
            console.print(f"[red]could not grade[/] {escape(failed['submission_name'])}: {escape(failed['error'])}")
        sys.exit(0 if not summary["errors"] and not summary["leaderboard_error"] else 1)
    katas_dir = _katas_dir(katas)
    if not katas_dir.is_dir() and impl != "reference":
        raise click.BadParameter(f"{katas_dir} is not a folder", param_hint="--katas")
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task("grading...", total=None)

        def on_event(kind: str, data: dict) -> None:
            if kind == "module_start":
                progress.update(task, description=f"checking {data['key']}...")
            elif kind == "milestone_start":
                progress.update(task, description=f"milestone {data['slug']}...")
            elif kind == "module_done":
                console.print(f"  {data['key']}: ", styled(data["status"]), f" {data.get('checks_passed', 0)}/"
                              f"{data.get('checks_total', 0)}" if data.get("available") else "")

        result = _grade.grade_submission(katas_dir, options, on_event)
    console.print(_grade_table(result))
    write_outputs(result, json_path, gradescope_path, junit_path, report_dir, report_format)
    if impl == "katas" and not select and katas_dir.is_dir():
        try:
            state.record_grade(katas_dir, result)
        except OSError:
            pass
    for path, label in ((json_path, "result JSON"), (gradescope_path, "Gradescope results"), (junit_path, "JUnit XML"),
                        (report_dir, "report")):
        if path:
            console.print(f"{label}: {path}")
    if result.get("aborted"):
        console.print(f"[bold red]INTEGRITY VIOLATION[/]: {result['aborted']}", markup=True)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
