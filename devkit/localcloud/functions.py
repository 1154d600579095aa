"""The template's functions, loaded in-process with the environment the template gives them locally."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from types import ModuleType

from devkit import template
from devkit.lambdas import load_handler_module
from devkit.localcloud.stack import LocalSettings, template_refs

# Handlers read their environment when first invoked; loading two at once must not mix them up.
_ENV_LOCK = threading.Lock()


def compressed_time(logical_id: str, settings: LocalSettings) -> dict[str, str]:
    """The local cloud's seconds for what the template sets in minutes (the only values it changes)."""
    if logical_id == "ScalerFunction":
        return {
            "TICK_SECONDS": str(settings.tick_seconds),
            # End before the next scheduled invocation, as the deployed function does (55 of 60 s).
            "RUN_SECONDS": str(max(0.0, settings.schedule_seconds - settings.tick_seconds - 0.5)),
            "SAFETY_MARGIN_SECONDS": "0.5",
            "CONFIG_MAX_AGE_SECONDS": "5",
        }
    if logical_id == "LifecycleFunction":
        # The reconciler runs every few seconds; commands are retried and health checked sooner.
        return {
            "RECONCILE_PERIOD_SECONDS": str(settings.reconcile_seconds),
            "HEALTH_WAIT_SECONDS": "10",
            "COMMAND_RETRY_SECONDS": "3",
            "DRAIN_GRACE_SECONDS": "5",
            # The template plans heartbeats on its shortest terminate hook; the local hooks are shorter.
            "TERMINATE_HOOK_TIMEOUT_SECONDS": str(settings.terminate_hook_timeout),
        }
    return {}


def environment(logical_id: str, settings: LocalSettings, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The function's environment from template.yaml, references resolved to the local cloud's names,
    time compressed as the local cloud runs it, then `overrides`."""
    loaded = template.load()
    spec = template.function(loaded, logical_id)
    # A template parameter takes its default, as in a deploy that does not override it.
    refs = {
        name: str(parameter["Default"])
        for name, parameter in loaded.get("Parameters", {}).items()
        if "Default" in parameter
    }
    refs.update(template_refs(settings))
    env = {name: template.resolve(value, refs) for name, value in spec.environment.items()}
    # Declared empty only for `sam local invoke --env-vars`: in-process, the handler's clients use this
    # process's endpoint (the local cloud's), which an empty value would replace with AWS's.
    env.pop("AWS_ENDPOINT_URL", None)
    env["POWERTOOLS_TRACE_DISABLED"] = "true"  # no X-Ray daemon here
    env.update(compressed_time(logical_id, settings))
    env.update(overrides or {})
    return env


def load(logical_id: str, env: Mapping[str, str]) -> tuple[ModuleType, template.FunctionSpec]:
    """Import the function's handler module fresh, with `env` applied to this process."""
    spec = template.function(template.load(), logical_id)
    with _ENV_LOCK:
        os.environ.update(env)
        module = load_handler_module(spec.code_dir, spec.module)
    return module, spec
