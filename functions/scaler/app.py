"""ScalerFunction: on each schedule or alarm event, tick every pool about every 10 s for about 55 s, or
once when every pool is idle."""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from queue_scaler import bootstrap
from queue_scaler.scaling.adapters.parameters import SsmConfigSource
from queue_scaler.scaling.services.scaling import PoolOutcome, ScaleService, carry_applied, idle, run_ticks
from queue_scaler.settings import ScalerSettings
from queue_scaler.shared.events import ScalerTrigger
from queue_scaler.shared.observability import EmfMetrics

logger = Logger()
tracer = Tracer()
metrics = Metrics()
# The services log through stdlib loggers; give them Powertools' JSON format and Lambda context.
copy_config_to_registered_loggers(source_logger=logger, include={"queue_scaler"})


@cache
def _wiring() -> tuple[ScalerSettings, SsmConfigSource, ScaleService]:
    settings = ScalerSettings()
    emf = EmfMetrics(metrics.namespace or "QueueScaler", metrics.service or "scaler", settings.environment)
    source = bootstrap.config_source(settings.pool_config_parameter, settings.config_max_age_seconds)
    return settings, source, bootstrap.scale_service(settings, emf)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    trigger = parse(event=event, model=ScalerTrigger)
    if not trigger.known:  # still ticks: what a tick does never depends on its trigger
        logger.warning("unrecognised trigger", extra={"trigger": trigger.describe()})
    settings, source, service = _wiring()
    pools = source.load().pools
    logger.info("scaler invoked", extra={"trigger": trigger.describe(), "pools": [p.name for p in pools]})
    last: list[PoolOutcome] = []

    def tick(now: float) -> None:
        last[:] = carry_applied(last, service.tick(pools, now))

    try:
        ticks = run_ticks(
            tick=tick,
            clock=time.time,
            sleep=time.sleep,
            remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000,
            tick_seconds=settings.tick_seconds,
            run_seconds=settings.run_seconds,
            margin_seconds=settings.safety_margin_seconds,
            stop=lambda: settings.stop_when_idle and idle(last),
        )
    finally:
        # The recommendations the ticks held in memory, for the stabilization windows of the next invocation.
        service.flush()
    return {"ticks": ticks, "pools": [outcome.as_dict() for outcome in last]}
