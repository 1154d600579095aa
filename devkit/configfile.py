"""Loads a scaler configuration from a JSON or YAML file, or from its SSM parameter."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic import ValidationError

from queue_scaler import bootstrap
from queue_scaler.scaling.config import ScalerConfig
from queue_scaler.shared.errors import ConfigError
from queue_scaler.shared.validation import describe_validation_error

SHAPE = '{"pools": [...]} (JSON, or the same shape as YAML in a .yaml/.yml file)'


def load_file(path: Path) -> ScalerConfig:
    """A config file: `{"pools": [...]}` as JSON, or the same shape as YAML (.yaml/.yml)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from error
    is_yaml = path.suffix in {".yaml", ".yml"}
    data = _parse_yaml(path, text) if is_yaml else _parse_json(path, text)
    if data is None:
        raise ConfigError(f"{path} is empty: a configuration is {SHAPE}")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected {SHAPE}, found a {_kind(data)} at the top")
    try:
        return ScalerConfig.model_validate(data) if is_yaml else ScalerConfig.model_validate_json(text)
    except ValidationError as error:
        raise ConfigError(f"{path} is not a valid configuration:\n{describe_validation_error(error)}") from error


def _parse_yaml(path: Path, text: str) -> object:
    try:
        return yaml.safe_load(text)  # None for an empty file or one of comments only
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or "cannot be parsed"
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path} is not valid YAML{where}: {problem}") from error


def _parse_json(path: Path, text: str) -> object:
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as error:
        raise ConfigError(f"{path} is not valid JSON: {error}") from error


def _kind(value: object) -> str:
    """A parsed value's kind in the file's own terms, not Python's."""
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, int | float) else "value"


def load_parameter(name: str, endpoint_url: str | None) -> ScalerConfig:
    """The configuration the deployed scaler reads, from SSM Parameter Store."""
    return bootstrap.config_source(name, max_age_seconds=0, endpoint_url=endpoint_url).load()


def localize_config(config: ScalerConfig, stack: str) -> ScalerConfig:
    """`config` with the dev stack's names (`queue-scaler-dev-*`, as examples/ has them) mapped to the
    local cloud's `stack`: what explain and submit do with a `--config` file and `--local`."""
    from devkit.localenv import localize

    return ScalerConfig.model_validate(localize(config.model_dump(mode="json", exclude_unset=True), stack))
