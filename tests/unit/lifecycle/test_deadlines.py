"""The stop deadlines' arithmetic (queue_scaler/lifecycle/domain/deadlines.py), one named case per rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from queue_scaler.lifecycle.domain.deadlines import (
    RELEASE_MARGIN_SECONDS,
    SPOT_NOTICE_SECONDS,
    cannot_finish,
    gone_by,
    hook_floor_seconds,
    job_bound,
    stop_deadline,
    stop_timeout_seconds,
)

T0 = 1_000.0


def test_given_the_documented_margin_then_it_is_at_least_ten_seconds() -> None:
    assert RELEASE_MARGIN_SECONDS >= 10


@pytest.mark.parametrize(
    ("drain", "expected"),
    [
        pytest.param(60, 60 + RELEASE_MARGIN_SECONDS, id="given_a_whole_window_then_sigkill_comes_the_margin_later"),
        pytest.param(
            60.2, 61 + RELEASE_MARGIN_SECONDS, id="given_a_fractional_window_then_docker_whole_seconds_round_up"
        ),
        pytest.param(1800, 1800 + RELEASE_MARGIN_SECONDS, id="given_the_longest_template_window_then_the_same_rule"),
    ],
)
def test_stop_timeout(drain: float, expected: int) -> None:
    assert stop_timeout_seconds(drain) == expected
    assert stop_timeout_seconds(drain) - drain >= RELEASE_MARGIN_SECONDS


def test_given_a_drain_and_a_grace_then_the_hook_outlasts_the_sigkill_by_the_grace() -> None:
    assert hook_floor_seconds(60, 30) == 60 + RELEASE_MARGIN_SECONDS + 30


@pytest.mark.parametrize(
    ("signalled_at", "drain", "notice_ends_at", "expected"),
    [
        pytest.param(T0, 60, None, T0 + 60, id="given_no_notice_then_the_end_of_the_window"),
        pytest.param(
            T0,
            900,
            T0 + SPOT_NOTICE_SECONDS,
            T0 + SPOT_NOTICE_SECONDS - RELEASE_MARGIN_SECONDS,
            id="given_a_spot_notice_shorter_than_the_window_then_the_margin_before_its_end",
        ),
        pytest.param(
            T0, 30, T0 + SPOT_NOTICE_SECONDS, T0 + 30, id="given_a_window_inside_the_notice_then_the_window_still"
        ),
        pytest.param(
            T0,
            60,
            T0 + 5,
            T0 + 5 - RELEASE_MARGIN_SECONDS,
            id="given_a_notice_almost_over_when_signalled_then_a_deadline_already_past",
        ),
    ],
)
def test_stop_deadline(signalled_at: float, drain: float, notice_ends_at: float | None, expected: float) -> None:
    assert stop_deadline(signalled_at, drain, notice_ends_at) == expected


@pytest.mark.parametrize(
    ("kind", "by_kind", "default", "expected"),
    [
        pytest.param("video.transcode", {"video.transcode": 900.0}, 600.0, 900.0, id="given_its_kind_listed_then_that"),
        pytest.param("ai.caption", {"video.transcode": 900.0}, 600.0, 600.0, id="given_another_kind_then_the_pool_max"),
        pytest.param("ai.caption", {}, None, 45.0, id="given_no_maximum_then_the_drain_window"),
    ],
)
def test_job_bound(kind: str, by_kind: dict[str, float], default: float | None, expected: float) -> None:
    assert job_bound(kind, by_kind, default, drain_seconds=45.0) == expected


@pytest.mark.parametrize(
    ("started", "bound", "deadline", "expected"),
    [
        pytest.param(
            T0, 600, T0 + 105, True, id="given_a_600_s_job_just_started_and_a_spot_notice_then_it_cannot_finish"
        ),
        pytest.param(T0 - 550, 600, T0 + 105, False, id="given_a_600_s_job_nearly_done_then_it_may_finish"),
        pytest.param(T0, 105, T0 + 105, False, id="given_a_bound_ending_exactly_at_the_deadline_then_it_may_finish"),
        pytest.param(T0, 60, T0 + 60, False, id="given_a_normal_drain_of_a_job_bounded_by_the_window_then_it_waits"),
    ],
)
def test_cannot_finish(started: float, bound: float, deadline: float, expected: bool) -> None:
    assert cannot_finish(started, bound, deadline) is expected


def test_given_the_docs_then_they_state_the_margin_and_notice_the_code_uses() -> None:
    root = Path(__file__).resolve().parents[3]
    worker_doc = (root / "workers" / "README.md").read_text()
    section = worker_doc[worker_doc.index("## Stop deadlines") :]
    assert f"`DrainSeconds` + {RELEASE_MARGIN_SECONDS} s" in section
    assert f"The {RELEASE_MARGIN_SECONDS} s release margin" in section
    assert f"`DRAIN_SECONDS` + {RELEASE_MARGIN_SECONDS}" in worker_doc  # STOP_TIMEOUT_SECONDS's row
    readme = (root / "README.md").read_text()
    assert f"`docker stop --time <the pool's DrainSeconds + {RELEASE_MARGIN_SECONDS}> queue-worker`" in readme
    assert f"cannot finish {RELEASE_MARGIN_SECONDS} s before the end" in readme
    assert f"(the warning's `time` + {SPOT_NOTICE_SECONDS} s)" in readme


@pytest.mark.parametrize(
    ("stop_timeout", "notice_ends_at", "expected"),
    [
        (None, None, None),  # neither known: a released run keeps its lease to its expiry
        (45.0, None, 145.0),  # Docker's SIGKILL at the stop timeout
        (None, 220.0, 220.0),  # the instance reclaimed at the notice's end
        (45.0, 130.0, 130.0),  # whichever comes first
        (45.0, 220.0, 145.0),
    ],
)
def test_a_signalled_worker_is_gone_at_its_kill_or_its_notice_end_whichever_first(
    stop_timeout: float | None, notice_ends_at: float | None, expected: float | None
) -> None:
    assert gone_by(100.0, stop_timeout, notice_ends_at) == expected
