"""`make demo` (first version): a burst scales a pool out from zero and back in, losing nothing."""

from __future__ import annotations

import io

from rich.console import Console

from devkit.demo import run


def test_given_the_scripted_burst_when_the_demo_runs_then_it_scales_out_from_zero_and_back() -> None:
    out = io.StringIO()
    result = run(Console(file=out, soft_wrap=True), pace_seconds=0)
    assert result.ok
    assert result.completed == result.jobs == 270
    assert result.peak_desired == 20 and result.first_scale_out_at == 20.0
    # The default scale-down window holds the fleet for 300 s after the last high recommendation.
    assert result.back_to_zero_at is not None and result.back_to_zero_at >= 300
    text = out.getvalue()
    assert "desired 0 -> 20 (MaxSize)" in text
    assert "demo: jobs=270 completed=270" in text
