"""The pool configuration from SSM Parameter Store, through Powertools Parameters (cached)."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from pydantic import ValidationError

from queue_scaler.scaling.config import ScalerConfig
from queue_scaler.shared.adapters import clients
from queue_scaler.shared.errors import ConfigError
from queue_scaler.shared.validation import describe_validation_error


class SsmConfigSource:
    """Reads and validates the ScalerConfig JSON held in one SSM parameter, caching it for `max_age` s."""

    def __init__(self, name: str, max_age: int = 60, provider: SSMProvider | None = None) -> None:
        self._name = name
        self._max_age = max_age
        self._provider = provider or SSMProvider(boto3_client=clients.ssm())

    def load(self) -> ScalerConfig:
        try:
            raw = self._provider.get(self._name, max_age=self._max_age)
        except GetParameterError as error:
            raise ConfigError(f"SSM parameter {self._name}: {error}") from error
        try:
            return ScalerConfig.model_validate_json(str(raw))
        except ValidationError as error:
            raise ConfigError(
                f"SSM parameter {self._name} is not a valid configuration:\n" + describe_validation_error(error)
            ) from error
