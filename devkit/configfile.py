"""Loads a scaler configuration from a JSON or YAML file, or from its SSM parameter."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from queue_scaler import bootstrap
from queue_scaler.config import ScalerConfig
from queue_scaler.errors import ConfigError
from queue_scaler.validation import describe_validation_error


def load_file(path: Path) -> ScalerConfig:
    """A config file: `{"pools": [...]}` as JSON, or the same shape as YAML (.yaml/.yml)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from error
    try:
        data = yaml.safe_load(text) if path.suffix in {".yaml", ".yml"} else None
        if data is not None:
            return ScalerConfig.model_validate(data)
        return ScalerConfig.model_validate_json(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from error
    except ValidationError as error:
        raise ConfigError(f"{path} is not a valid configuration:\n{describe_validation_error(error)}") from error


def load_parameter(name: str, endpoint_url: str | None) -> ScalerConfig:
    """The configuration the deployed scaler reads, from SSM Parameter Store."""
    return bootstrap.config_source(name, max_age_seconds=0, endpoint_url=endpoint_url).load()
