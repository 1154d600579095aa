"""The launch template's user data is workers/userdata.sh, embedded by scripts/embed-userdata.py."""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType
from typing import Any

import pytest

from devkit.stackmodel import ROOT, Stack, root_stack
from queue_scaler.lifecycle.domain.commands import STOP_NOTICE_DIR
from queue_scaler.lifecycle.domain.deadlines import RELEASE_MARGIN_SECONDS

from . import invariants as inv

SCRIPT = ROOT / "workers" / "userdata.sh"
TEMPLATE = ROOT / "templates" / "pool.yaml"
# Every Fn::Sub form a shell script may contain: braces, indirection, defaults, and none at all.
SAMPLE = """#!/usr/bin/env bash
set -euo pipefail

log() { echo "[$(date -Is)] $*" >&2; }
name="QS_POOL"; log "pool ${!name} image ${QS_IMAGE} drain ${QS_DRAIN_SECONDS:-30}"
registry="${QS_IMAGE%%/*}"
aws ecr get-login-password --region "$AWS_REGION" | docker login -u AWS --password-stdin "$registry"
"""


def _embedder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("embed_userdata", ROOT / "scripts" / "embed-userdata.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pool_stack(templates: dict[str, Any], samconfig: dict[str, Any]) -> Stack:
    deploy = inv.environments(samconfig)["dev"]
    root = root_stack(templates, inv.parameter_overrides(deploy), deploy["stack_name"], deploy["region"])
    return root.child("VideoPool")


def test_given_the_worker_script_then_the_pool_template_embeds_it_unchanged() -> None:
    assert _embedder().extract(TEMPLATE.read_text()) == SCRIPT.read_text(), "run scripts/embed-userdata.py"


def test_given_a_script_when_embedded_then_fn_sub_renders_the_preamble_and_the_script_verbatim(
    templates: dict[str, Any], samconfig: dict[str, Any]
) -> None:
    embedder = _embedder()
    embedded = embedder.embed(TEMPLATE.read_text(), SAMPLE)
    assert embedder.extract(embedded) == SAMPLE
    # What CloudFormation's Fn::Sub makes of the block: the pool's settings, then the script as written.
    lines = embedded.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Fn::Base64: !Sub |") + 1
    end = next(i for i, line in enumerate(lines) if line.strip() == embedder.END)
    indent = len(lines[start]) - len(lines[start].lstrip())
    block = "\n".join(line[indent:] for line in lines[start : end + 1])
    rendered = _pool_stack(templates, samconfig).sub(block)
    assert rendered.startswith("#!/bin/bash\nexport QS_POOL='video'\n")
    assert "export QS_DRAIN_SECONDS='900'\n" in rendered  # the video pool's own drain window
    assert SAMPLE in rendered


def test_given_an_unescaped_script_when_rendered_then_fn_sub_would_mangle_it(
    templates: dict[str, Any], samconfig: dict[str, Any]
) -> None:
    # Why the escape exists: without it Fn::Sub substitutes (here fails on) the script's own variables.
    with pytest.raises(KeyError):
        _pool_stack(templates, samconfig).sub(SAMPLE)


def test_given_an_oversized_script_when_embedded_then_it_is_refused() -> None:
    embedder = _embedder()
    with pytest.raises(ValueError, match="user data allows"):
        embedder.embed(TEMPLATE.read_text(), "#" * 20_000 + "\n")


def test_given_the_worker_script_then_its_release_margin_and_notice_directory_are_the_domain_ones() -> None:
    # The script cannot import them: its copies must be the numbers the worker and the drain use.
    text = SCRIPT.read_text()
    margin = re.search(r"^release_margin=(\d+)$", text, re.MULTILINE)
    assert margin is not None and int(margin.group(1)) == RELEASE_MARGIN_SECONDS
    assert f'[ -n "$notice_dir" ] || notice_dir={STOP_NOTICE_DIR}\n' in text
    assert '--stop-timeout "$stop_timeout"' in text and "stop_timeout=$((QS_DRAIN_SECONDS + release_margin))" in text
