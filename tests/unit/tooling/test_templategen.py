"""The templates' generated parts equal what devkit/templategen.py writes (`make generate`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devkit import template, templategen
from queue_scaler.scaling.config import RECOMMENDED


@pytest.mark.parametrize("path", sorted(templategen.GENERATED), ids=lambda p: p.name)
def test_each_template_is_its_generated_form(path: Path) -> None:
    current = path.read_text(encoding="utf-8")
    assert templategen.GENERATED[path](current) == current, f"{path.name} differs: run `make generate`"


def test_the_pool_template_states_the_recommended_policy_once() -> None:
    text = templategen.POOL_TEMPLATE.read_text(encoding="utf-8")
    fields = templategen.recommended_fields()
    assert text.count(fields) == 1
    assert json.loads("{" + fields + "}") == RECOMMENDED


def test_a_change_of_the_recommended_setting_is_written_into_the_template(monkeypatch: pytest.MonkeyPatch) -> None:
    changed = RECOMMENDED | {"stabilize_queue_part": False}
    monkeypatch.setattr(templategen, "RECOMMENDED", changed)
    text = templategen.pool_template(templategen.POOL_TEMPLATE.read_text(encoding="utf-8"))
    assert '"stabilize_queue_part":false' in text and '"stabilize_queue_part":true' not in text


def test_a_template_without_the_place_is_refused() -> None:
    with pytest.raises(templategen.GenerationFailed, match="found 0"):
        templategen.pool_template("Outputs: {}\n")


def test_a_pool_added_to_the_template_joins_every_generated_pool_list() -> None:
    text = templategen.ROOT_TEMPLATE.read_text(encoding="utf-8")
    pools = template.pools(template.loads(text))
    toy = template.PoolDefinition("GpuPool", "gpu", ("jobs",), (1.0,), 0)
    generated = templategen.root_template(text, [*pools, toy])
    markers = text.count("# each pool: ") + text.count("# all pools: ")
    assert markers >= 10
    added = [line for line in generated.splitlines() if "GpuPool" in line or "-gpu" in line or "GpuDrain" in line]
    assert len(added) == markers  # one line (or one segment of a line) per marker
    assert [p.name for p in template.pools(template.loads(generated))] == [p.name for p in pools]
    # Generation is stable: the toy's lists, generated again for the toy, stay as they are.
    assert templategen.root_template(generated, [*pools, toy]) == generated


def test_a_marker_without_its_list_is_refused() -> None:
    text = templategen.ROOT_TEMPLATE.read_text(encoding="utf-8")
    broken = text.replace(
        "# each pool: - !GetAtt {Pool}.Outputs.GroupName\n", "# each pool: - !GetAtt {Pool}.Outputs.Nothing\n", 1
    )
    with pytest.raises(templategen.GenerationFailed, match="no pool list follows"):
        templategen.root_template(broken)
