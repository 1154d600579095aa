"""`make mutate`'s report: mutants named stably, located by line, scored with equivalents left out."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from devkit import mutation
from devkit.mutation import (
    EQUIVALENTS,
    Equivalent,
    Mutant,
    function_of,
    load_equivalents,
    locate,
    parse_diff,
    repo_path,
    score,
    select,
    staged_path,
)

DIFF = """--- queue_scaler/scaling/services/scaling.py
+++ queue_scaler/scaling/services/scaling.py
@@ -2,7 +2,7 @@
     \"\"\"Drop the scale event.\"\"\"
     undone = history.without_event(now)
     try:
-        self._held[pool] = VersionedHistory(undone, version)
+        self._held[pool] = VersionedHistory(None, version)
     except AwsCallError:
         pass"""

SOURCE = """class Other:
    def _undo_event(self):
        self._held[pool] = VersionedHistory(undone, version)


class ScaleService:
    def _undo_event(self, pool, history, version, now):
        \"\"\"Drop the scale event.\"\"\"
        undone = history.without_event(now)
        try:
            self._held[pool] = VersionedHistory(undone, version)
        except AwsCallError:
            pass
""".splitlines()


def test_given_a_mutant_diff_when_parsed_then_its_offset_and_lines_are_read() -> None:
    assert parse_diff(DIFF) == (
        5,
        "self._held[pool] = VersionedHistory(undone, version)",
        "self._held[pool] = VersionedHistory(None, version)",
    )


def test_given_a_method_when_located_then_the_line_is_in_its_own_class() -> None:
    offset, original, _ = parse_diff(DIFF)
    assert locate(SOURCE, "ScaleService._undo_event", original, offset) == 11
    assert locate(SOURCE, "Other._undo_event", original, offset) == 3
    assert locate(SOURCE, "Missing._undo_event", "nowhere", offset) == 0


@pytest.mark.parametrize(
    ("name", "function"),
    [
        ("queue_scaler.scaling.services.scaling.xǁScaleServiceǁ_undo_event__mutmut_4", "ScaleService._undo_event"),
        ("queue_scaler.scaling.domain.decision.x_clamps__mutmut_12", "clamps"),
        ("queue_scaler.scaling.domain.decision.x__tolerance__mutmut_3", "_tolerance"),
    ],
)
def test_function_of(name: str, function: str) -> None:
    assert function_of(name) == function


def test_given_repository_paths_then_staged_paths_map_both_ways() -> None:
    assert (
        staged_path("layers/core/queue_scaler/scaling/domain/decision.py") == "queue_scaler/scaling/domain/decision.py"
    )
    assert staged_path("workers/queue_worker") == "queue_worker"
    assert staged_path("devkit/cli.py") is None
    assert repo_path("queue_worker/worker.py") == "workers/queue_worker/worker.py"


def mutant(
    name: str, status: str, original: str = "a < b", path: str = "layers/core/queue_scaler/scaling/domain/x.py"
) -> Mutant:
    return Mutant(name, path, "f", 3, original, original.replace("<", "<="), status)


def test_given_an_equivalent_when_scored_then_it_counts_neither_as_caught_nor_as_survivor() -> None:
    equivalent = Equivalent("layers/core/queue_scaler/scaling/domain/x.py", "f", "a < c", "a <= c", "same for ints")
    mutants = [
        mutant("m.x_f__mutmut_1", "killed", "a < b"),
        mutant("m.x_f__mutmut_2", "survived", "a < c"),
        mutant("m.x_f__mutmut_3", "survived", "a < d"),
        mutant("m.x_f__mutmut_4", "no tests", "a < e"),
        mutant("m.x_f__mutmut_5", "timeout", "a < f"),
    ]
    [module], survivors = score(mutants, [equivalent])
    assert (module.total, module.caught, module.survived, module.no_tests, module.equivalent) == (5, 2, 1, 1, 1)
    assert module.score == 50.0
    assert [m.name for m in survivors] == ["m.x_f__mutmut_3", "m.x_f__mutmut_4"]


def test_given_a_seed_when_sampling_then_the_same_mutants_are_drawn_under_the_paths() -> None:
    names = [f"queue_scaler.scaling.domain.a.x_f__mutmut_{i}" for i in range(50)] + [
        "queue_worker.worker.x_g__mutmut_1"
    ]
    first = select(names, ["queue_scaler/scaling/domain"], 10, seed=3)
    assert first == select(names, ["queue_scaler/scaling/domain"], 10, seed=3)
    assert len(first) == 10 and all(n.startswith("queue_scaler.scaling.domain.a.") for n in first)
    assert select(names, ["queue_worker/worker.py"], None, seed=3) == ["queue_worker.worker.x_g__mutmut_1"]


def test_the_committed_equivalents_each_give_a_reason_and_name_a_file_that_exists() -> None:
    root = EQUIVALENTS.parents[2]
    for entry in load_equivalents():
        assert entry.reason and (root / entry.file).is_file(), entry


def test_given_an_entry_without_a_reason_then_loading_fails_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "equivalents.toml"
    bad.write_text('[[equivalent]]\nfile = "x.py"\nfunction = "f"\noriginal = "a"\nmutated = "b"\n')
    with pytest.raises(SystemExit, match="entry 1 lacks reason"):
        load_equivalents(bad)


def test_only_the_files_that_exist_are_copied_and_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool]\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("a")
    (tmp_path / "mutants").mkdir()
    mutation.copy_existing([Path("docs"), Path("pyproject.toml"), Path("uv.lock"), Path("poetry.lock")])
    assert capsys.readouterr().out == "mutate: copied beside the mutants: docs, pyproject.toml\n"
    assert (tmp_path / "mutants" / "docs" / "a.md").exists() and not (tmp_path / "mutants" / "uv.lock").exists()


ESTIMATES = [
    # (name, mutants, last run's durations, jobs, line)
    ("first run", ["m1", "m2"], {}, 2, "mutate: no earlier run to estimate the time from"),
    ("all timed", ["m1", "m2"], {"m1": 1800.0, "m2": 5400.0}, 2, "mutate: estimated 1 h 00 min for the mutants"),
    ("new ones at the mean", ["m1", "m3"], {"m1": 120.0, "m2": 0.0}, 1, "mutate: estimated 4 min for the mutants"),
    ("mean shown", ["m1", "m3"], {"m1": 120.0, "m2": 0.0}, 1, "1 of 2 measured, mean 120.0 s each"),
    ("nothing to run", [], {"m1": 1.0}, 2, "mutate: nothing to run"),
]


@pytest.mark.parametrize(("name", "names", "durations", "jobs", "says"), ESTIMATES, ids=[e[0] for e in ESTIMATES])
def test_the_estimate_comes_from_the_last_runs_times(
    name: str, names: list[str], durations: dict[str, float], jobs: int, says: str
) -> None:
    assert says in mutation.estimate(names, durations, jobs), name


def test_the_last_runs_times_are_read_from_mutmuts_meta_files(tmp_path: Path) -> None:
    (tmp_path / "queue_scaler").mkdir()
    meta = {"exit_code_by_key": {}, "durations_by_key": {"queue_scaler.x__mutmut_1": 2.5}}
    (tmp_path / "queue_scaler" / "x.py.meta").write_text(json.dumps(meta))
    (tmp_path / "queue_scaler" / "y.py.meta").write_text("{")  # cut short by a stopped run
    assert mutation.previous_durations(tmp_path) == {"queue_scaler.x__mutmut_1": 2.5}
    assert mutation.previous_durations(tmp_path / "none") == {}


def test_given_tests_then_they_replace_the_selections_paths_and_keep_its_options() -> None:
    configured = ["tests/unit", "tests/functional", "--ignore=tests/x.py", "--deselect=tests/y.py::z"]
    config = SimpleNamespace(pytest_add_cli_args_test_selection=list(configured))
    mutation.use_tests(config, None)
    assert config.pytest_add_cli_args_test_selection == configured
    args = mutation.parse_args(["--tests", "tests/unit/test_a.py", "tests/unit/test_b.py", "--sample", "3"])
    mutation.use_tests(config, args.tests)
    assert config.pytest_add_cli_args_test_selection == [
        "tests/unit/test_a.py",
        "tests/unit/test_b.py",
        "--ignore=tests/x.py",
        "--deselect=tests/y.py::z",
    ]
