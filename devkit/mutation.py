"""`make mutate`: mutation testing of domain/, services/, the worker, the ledger adapter, the producer and the
job envelope (pyproject.toml's [tool.mutmut] only_mutate), with mutmut, and a report.

mutmut names each mutant after its file's path and matches it against the module the code runs as, so
it runs in a staging folder, .mutate/ (ignored by git), whose top holds links to the packages as they
are imported (queue_scaler, queue_worker), to the tests, and to pyproject.toml, which configures it
([tool.mutmut]). mutmut copies them into .mutate/mutants/, mutates the copies, records which tests
reach which function, and runs only those tests for each mutant.

Modes (combinable): everything (the default, from scratch: cached results would hide a test change),
--paths (files or folders), --changed BASE (files changed since the merge base with BASE), --sample N
(N mutants drawn with --seed). The report lists every surviving mutant by file and line, and the score
per module; mutants listed as equivalent in tests/mutation/equivalents.toml (reviewed, with a reason
each) are left out of the score, and an entry that matches no mutant any more is reported as stale.

Run it from the repository's root, in a fresh process: mutmut reads its configuration when imported,
and the mutated copies must be the first queue_scaler and queue_worker that get imported.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / ".mutate"
EQUIVALENTS = ROOT / "tests" / "mutation" / "equivalents.toml"
REPORT_DIR = ROOT / "out" / "mutation"
# Where each staged package lives in the repository: the staging folder's links, and the way back
# from a mutant's file to the file a developer opens.
PACKAGES = {"queue_scaler": "layers/core/queue_scaler", "queue_worker": "workers/queue_worker"}
LINKS = {**PACKAGES, "tests": "tests", "pyproject.toml": "pyproject.toml"}
# Statuses that count as caught. A timeout is a mutant that made the tests hang: they noticed.
CAUGHT = {"killed", "timeout", "caught by type check", "segfault"}


@dataclass(frozen=True)
class Mutant:
    """One mutant, named as mutmut names it, with what it changed."""

    name: str
    path: str  # the repository path of the mutated file
    function: str  # Class.method or function
    line: int  # the first changed line in the repository's file (0 when not found)
    original: str  # the changed lines before the mutation, stripped, " / "-joined
    mutated: str  # and after
    status: str

    @property
    def module(self) -> str:
        return self.path

    def identity(self) -> tuple[str, str, str, str]:
        """What names the mutant across runs: mutmut's ordinals shift whenever a function changes."""
        return (self.path, self.function, self.original, self.mutated)


@dataclass(frozen=True)
class Equivalent:
    file: str
    function: str
    original: str
    mutated: str
    reason: str

    def identity(self) -> tuple[str, str, str, str]:
        return (self.file, self.function, self.original, self.mutated)


def load_equivalents(path: Path = EQUIVALENTS) -> list[Equivalent]:
    """The reviewed list; every entry must give a reason."""
    if not path.exists():
        return []
    entries = tomllib.loads(path.read_text()).get("equivalent", [])
    result = []
    for index, entry in enumerate(entries):
        missing = [key for key in ("file", "function", "original", "mutated", "reason") if not entry.get(key)]
        if missing:
            raise SystemExit(f"{path}: entry {index + 1} lacks {', '.join(missing)}")
        result.append(Equivalent(**{key: str(entry[key]).strip() for key in entry}))
    return result


def repo_path(staged: str) -> str:
    """queue_scaler/scaling/domain/x.py -> layers/core/queue_scaler/scaling/domain/x.py."""
    top, _, rest = staged.partition("/")
    return f"{PACKAGES[top]}/{rest}" if top in PACKAGES else staged


def staged_path(repository: str) -> str | None:
    """The inverse of repo_path, or None for a file outside the staged packages."""
    for top, where in PACKAGES.items():
        if repository == where or repository.startswith(where + "/"):
            return top + repository[len(where) :]
    return None


def parse_diff(diff: str) -> tuple[int, str, str]:
    """(offset of the first changed line in the function's code, original lines, mutated lines)."""
    removed: list[str] = []
    added: list[str] = []
    offset = 0
    for line in diff.splitlines():
        if line.startswith(("---", "+++")):
            continue
        if match := re.match(r"@@ -(\d+)", line):
            offset = int(match.group(1))
            continue
        if line.startswith("-"):
            removed.append(line[1:].strip())
        elif line.startswith("+"):
            added.append(line[1:].strip())
        elif not removed and not added:
            offset += 1
    return offset, " / ".join(removed), " / ".join(added)


def locate(source_lines: Sequence[str], function: str, original: str, offset: int) -> int:
    """The line of the mutation in the source file: the original line's text inside the function."""
    first = original.split(" / ", maxsplit=1)[0]
    cls, _, name = function.rpartition(".")
    begin = 0
    if cls:
        begin = next((i for i, text in enumerate(source_lines) if re.match(rf"class {re.escape(cls)}\b", text)), 0)
    pattern = re.compile(rf"(\s*)(async\s+)?def {re.escape(name)}\b")
    start = next((i for i in range(begin, len(source_lines)) if pattern.match(source_lines[i])), None)
    if start is None:
        return 0
    indent = len(source_lines[start]) - len(source_lines[start].lstrip())
    end = start + 1
    while end < len(source_lines) and (
        not source_lines[end].strip() or len(source_lines[end]) - len(source_lines[end].lstrip()) > indent
    ):
        end += 1
    candidates = [i + 1 for i in range(start, end) if source_lines[i].strip() == first]
    if not candidates:
        return 0
    # Several lines alike (two `return None`): the one nearest the diff's own offset (1 = the def line).
    return min(candidates, key=lambda line: abs(line - (start + offset)))


def function_of(name: str) -> str:
    """mutmut's mangled name -> Class.method or function."""
    mangled = name.rpartition(".")[2].partition("__mutmut_")[0]
    if mangled.startswith("xǁ"):
        _, cls, method = mangled.split("ǁ")
        return f"{cls}.{method}"
    return mangled.removeprefix("x_")


@dataclass
class ModuleScore:
    path: str
    total: int = 0
    caught: int = 0
    survived: int = 0
    no_tests: int = 0
    equivalent: int = 0
    other: int = 0

    @property
    def counted(self) -> int:
        return self.total - self.equivalent

    @property
    def score(self) -> float | None:
        return 100.0 * self.caught / self.counted if self.counted else None


def score(mutants: Iterable[Mutant], equivalents: Sequence[Equivalent]) -> tuple[list[ModuleScore], list[Mutant]]:
    """Per-module scores and the survivors, equivalents excluded (from both)."""
    known = {entry.identity() for entry in equivalents}
    modules: dict[str, ModuleScore] = {}
    survivors = []
    for mutant in mutants:
        module = modules.setdefault(mutant.path, ModuleScore(mutant.path))
        module.total += 1
        if mutant.identity() in known:
            module.equivalent += 1
        elif mutant.status in CAUGHT:
            module.caught += 1
        elif mutant.status == "survived":
            module.survived += 1
            survivors.append(mutant)
        elif mutant.status == "no tests":
            module.no_tests += 1
            survivors.append(mutant)
        else:
            module.other += 1
            survivors.append(mutant)
    return sorted(modules.values(), key=lambda m: m.path), sorted(survivors, key=lambda m: (m.path, m.line))


#: The report's groups: queue_scaler's areas (scaling, lifecycle, credits, shared), then the worker.
AREAS = ("scaling", "lifecycle", "credits", "shared")


def area(path: str) -> str:
    for prefix in (*(f"layers/core/queue_scaler/{name}" for name in AREAS), "workers/queue_worker"):
        if path.startswith(prefix + "/"):
            return prefix
    return path


def render(modules: Sequence[ModuleScore], survivors: Sequence[Mutant], stale: Sequence[Equivalent]) -> str:
    lines = ["Surviving mutants (file:line function: original -> mutated) [status]"]
    lines += [
        f"  {m.path}:{m.line} {m.function}: {m.original!r} -> {m.mutated!r} [{m.status}] ({m.name})" for m in survivors
    ] or ["  none"]
    header = (
        f"{'module':<52} {'mutants':>7} {'caught':>6} {'surv':>5} {'untested':>8} {'equiv':>5} {'other':>5} "
        f"{'score':>7}"
    )
    lines += ["", "Score per module (caught / (mutants - equivalent))", header]

    def row(name: str, ms: Sequence[ModuleScore]) -> str:
        total = ModuleScore(name)
        for m in ms:
            for key in ("total", "caught", "survived", "no_tests", "equivalent", "other"):
                setattr(total, key, getattr(total, key) + getattr(m, key))
        shown = f"{total.score:6.1f}%" if total.score is not None else "      -"
        return (
            f"{name:<52} {total.total:>7} {total.caught:>6} {total.survived:>5} {total.no_tests:>8} "
            f"{total.equivalent:>5} {total.other:>5} {shown}"
        )

    lines += [row(m.path, [m]) for m in modules]
    areas: dict[str, list[ModuleScore]] = {}
    for m in modules:
        areas.setdefault(area(m.path), []).append(m)
    # An area is one of queue_scaler's (scaling/, lifecycle/, credits/, shared/), the worker, or a single file.
    names = {name: name if name.endswith(".py") else name + "/" for name in areas}
    lines += ["", "Score per area"] + [row(names[name], ms) for name, ms in sorted(areas.items())]
    lines.append(row("all", modules))
    if stale:
        lines += ["", f"Stale entries in {EQUIVALENTS.relative_to(ROOT)} (no such mutant any more: review them)"]
        lines += [f"  {e.file} {e.function}: {e.original!r} -> {e.mutated!r}" for e in stale]
    return "\n".join(lines)


def stage() -> None:
    """The staging folder: links to the packages, the tests and pyproject.toml."""
    STAGE.mkdir(exist_ok=True)
    for name, target in LINKS.items():
        link = STAGE / name
        if not link.is_symlink():
            link.symlink_to(Path("..") / target)
    for name in _config()["also_copy"]:
        link = STAGE / name
        if not link.is_symlink():
            link.symlink_to(Path("..") / name)


def _config() -> dict[str, Any]:
    config: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return config


def changed_files(base: str) -> list[str]:
    """Files changed since the merge base with `base`: commits, the working tree and new files."""

    def git(*args: str) -> list[str]:
        out = subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout
        return [line for line in out.splitlines() if line]

    merge_base = git("merge-base", base, "HEAD")[0]
    return sorted(set(git("diff", "--name-only", merge_base)) | set(git("ls-files", "--others", "--exclude-standard")))


def select(names: Sequence[str], prefixes: Sequence[str] | None, sample: int | None, seed: int) -> list[str]:
    """The mutants to run: those under the given staged paths, then a seeded sample of them."""
    chosen = sorted(names)
    if prefixes is not None:
        modules = [p.removesuffix(".py").replace("/", ".") for p in prefixes]
        chosen = [n for n in chosen if any(n == m or n.startswith(m + ".") for m in modules)]
    if sample is not None and sample < len(chosen):
        chosen = sorted(random.Random(seed).sample(chosen, sample))  # noqa: S311 (a reproducible draw, not a secret)
    return chosen


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make mutate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", nargs="+", metavar="PATH", help="only these files or folders (repository paths)")
    parser.add_argument("--changed", metavar="BASE", help="only files changed since the merge base with BASE")
    parser.add_argument("--sample", type=int, metavar="N", help="N mutants drawn at random (see --seed)")
    parser.add_argument("--seed", type=int, default=17, help="the sample's seed (default 17)")
    parser.add_argument(
        "--tests",
        nargs="+",
        metavar="TEST",
        help="run and trace only these tests (files or node ids), not [tool.mutmut]'s unit and functional "
        "tiers: a quicker run whose score is a lower bound of the whole one",
    )
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once (default 2: CI has 2 cores)")
    parser.add_argument("--keep", action="store_true", help="reuse .mutate/mutants (faster; may hide test changes)")
    parser.add_argument("--report-only", action="store_true", help="run nothing: report the last run's results")
    parser.add_argument(
        "--retry-survivors",
        action="store_true",
        help="rerun only the chosen mutants not caught last time (keeps .mutate/mutants)",
    )
    parser.add_argument("--fail-under", type=float, help="exit 1 when an area's score is below this percentage")
    return parser.parse_args(argv)


def scope(args: argparse.Namespace) -> list[str] | None:
    """The staged paths to mutate, or None for everything."""
    prefixes: list[str] | None = None
    if args.paths:
        prefixes = []
        for path in args.paths:
            staged = staged_path(str(Path(path).resolve().relative_to(ROOT)).rstrip("/"))
            if staged is None:
                raise SystemExit(f"--paths: {path} is outside {', '.join(PACKAGES.values())}")
            prefixes.append(staged)
    if args.changed:
        changed = [s for f in changed_files(args.changed) if f.endswith(".py") and (s := staged_path(f))]
        prefixes = changed if prefixes is None else [p for p in changed if any(p.startswith(q) for q in prefixes)]
    return prefixes


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    prefixes = scope(args)
    if prefixes == []:
        print("mutate: no Python file in scope (nothing changed in queue_scaler or the worker)")
        return 0
    equivalents = load_equivalents()
    stage()
    # Read before a fresh start wipes them: the last run's times are the estimate's only measure.
    durations = previous_durations(STAGE / "mutants")
    if not args.keep and not args.report_only and not args.retry_survivors:
        shutil.rmtree(STAGE / "mutants", ignore_errors=True)
    os.chdir(STAGE)
    # Tests that start workers as processes (python -m queue_worker) run the mutated copy too.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(STAGE / "mutants"), os.environ.get("PYTHONPATH")]))
    mutants = run_mutmut(
        prefixes,
        args.sample,
        args.seed,
        args.jobs,
        report_only=args.report_only,
        retry_survivors=args.retry_survivors,
        durations=durations,
        tests=args.tests,
    )
    modules, survivors = score(mutants, equivalents)
    seen = {m.identity() for m in mutants}
    # An entry is stale only when its file was in this run, whole (a sample proves nothing missing).
    in_run = {m.path for m in mutants} if args.sample is None else set()
    stale = [e for e in equivalents if e.file in in_run and e.identity() not in seen]
    text = render(modules, survivors, stale)
    print("\n" + text)
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / "report.txt").write_text(text + "\n")
    (REPORT_DIR / "mutants.json").write_text(json.dumps([asdict(m) for m in mutants], indent=1) + "\n")
    print(f"\nmutate: report in {(REPORT_DIR / 'report.txt').relative_to(ROOT)}, every mutant in mutants.json")
    if args.fail_under is not None:
        areas: dict[str, list[ModuleScore]] = {}
        for m in modules:
            areas.setdefault(area(m.path), []).append(m)
        low = []
        for name, ms in areas.items():
            caught, counted = sum(m.caught for m in ms), sum(m.counted for m in ms)
            if counted and 100.0 * caught / counted < args.fail_under:
                low.append(name)
        if low:
            print(f"mutate: below {args.fail_under}%: {', '.join(sorted(low))}")
            return 1
    return 0


def previous_durations(mutants_dir: Path) -> dict[str, float]:
    """Seconds each mutant's tests took in the last run (mutmut's `.meta` files), by mutant name."""
    durations: dict[str, float] = {}
    for meta in mutants_dir.rglob("*.meta") if mutants_dir.is_dir() else ():
        try:
            durations.update(json.loads(meta.read_text()).get("durations_by_key", {}))
        except (OSError, ValueError):
            continue  # a file the last run was writing when it stopped
    return durations


def estimate(names: Sequence[str], durations: Mapping[str, float], jobs: int) -> str:
    """The run's expected length from the last run's measured times (mutants it did not time count at
    their mean), before mutmut's own timing of the tests; nothing to go by on a first run."""
    known = [durations[name] for name in names if name in durations]
    if not names:
        return "mutate: nothing to run"
    if not known:
        return "mutate: no earlier run to estimate the time from (this one measures it; expect hours for all)"
    mean = sum(known) / len(known)
    seconds = sum(durations.get(name, mean) for name in names) / max(jobs, 1)
    return (
        f"mutate: estimated {_duration(seconds)} for the mutants, after timing the tests "
        f"(the last run's times: {len(known)} of {len(names)} measured, mean {mean:.1f} s each)"
    )


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{max(minutes, 1)} min"


def copy_existing(paths: Iterable[Path]) -> None:
    """mutmut's `also_copy`, into mutants/: its defaults name lock files of other tools (uv.lock,
    poetry.lock ...) that this project does not have, so only what exists is copied, and listed."""
    copied = []
    for path in map(Path, paths):
        if not path.exists():
            continue
        destination = Path("mutants") / path
        if path.is_dir():
            shutil.copytree(path, destination, dirs_exist_ok=True)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
        copied.append(str(path))
    print(f"mutate: copied beside the mutants: {', '.join(copied)}")


def use_tests(config: Any, tests: Sequence[str] | None) -> None:
    """Run and trace only `tests` (all of [tool.mutmut]'s selection when None): they replace its paths,
    and its options (--ignore, --deselect) still apply."""
    if tests:
        options = [arg for arg in config.pytest_add_cli_args_test_selection if arg.startswith("-")]
        config.pytest_add_cli_args_test_selection = [*tests, *options]


def run_mutmut(
    prefixes: Sequence[str] | None,
    sample: int | None,
    seed: int,
    jobs: int,
    *,
    report_only: bool = False,
    retry_survivors: bool = False,
    durations: Mapping[str, float] | None = None,
    tests: Sequence[str] | None = None,
) -> list[Mutant]:
    """Generate the mutants, run the chosen ones, and read back what happened to each (cwd: .mutate).

    With `report_only`, nothing runs: the chosen mutants that have a result from an earlier run are read.
    With `retry_survivors`, only the chosen mutants not caught by an earlier run run again. With `tests`, only
    those tests run (and are traced): mutmut keeps the selection's fingerprint, so changing it starts afresh."""
    # mutmut reads pyproject.toml from the working directory when imported: import it here, not above.
    from mutmut import __main__ as mm
    from mutmut.configuration import config
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import copy_src_dir, setup_source_paths, walk_mutatable_files

    if any(name in sys.modules for name in PACKAGES):
        raise SystemExit("mutate: the packages were imported before mutmut staged its copies")
    use_tests(config(), tests)
    if not report_only:
        Path("mutants").mkdir(exist_ok=True)
        copy_src_dir()
        copy_existing(config().also_copy)
        setup_source_paths()
        mm.create_mutants(jobs)

    def all_data() -> dict[str, Any]:
        found = {}
        for path in walk_mutatable_files():
            data = SourceFileMutationData(path=path)
            data.load()
            found[str(path)] = data
        return found

    names = [
        name
        for data in all_data().values()
        for name, code in data.exit_code_by_key.items()
        if code is not None or not report_only
    ]
    chosen = select(names, prefixes, sample, seed)
    if not chosen:
        print("mutate: no mutant in scope")
        return []
    print(f"mutate: {len(chosen)} of {len(names)} mutants" + ("" if report_only else f", {jobs} at a time"))
    everything = prefixes is None and sample is None and not retry_survivors
    to_run = chosen
    if retry_survivors:
        caught = {
            name
            for data in all_data().values()
            for name, code in data.exit_code_by_key.items()
            if code is not None and status_by_exit_code[code] in CAUGHT
        }
        to_run = [name for name in chosen if name not in caught]
        print(f"mutate: retrying {len(to_run)} of them, not caught before")
    if not report_only:
        print(estimate(to_run, durations or {}, jobs))
    try:
        # No names: mutmut runs every mutant without a result (all of them after a fresh start) and
        # does not list each one; names: it reruns those, even with a cached result.
        if not report_only and to_run:
            mm._run(() if everything else to_run, jobs)
    except SystemExit as stop:
        if stop.code not in (None, 0):
            raise
    wanted = set(chosen)
    result = []
    for path, data in all_data().items():
        source_lines = Path(path).read_text().splitlines()
        for name, code in data.exit_code_by_key.items():
            if name not in wanted:
                continue
            offset, original, mutated = parse_diff(get_diff_for_mutant(name, path=path))
            function = function_of(name)
            result.append(
                Mutant(
                    name=name,
                    path=repo_path(path),
                    function=function,
                    line=locate(source_lines, function, original, offset),
                    original=original,
                    mutated=mutated,
                    status=status_by_exit_code[code],
                )
            )
    counts = Counter(m.status for m in result)
    print("mutate: " + ", ".join(f"{n} {s}" for s, n in counts.most_common()))
    return result


if __name__ == "__main__":
    sys.exit(main())
