"""TEMPORARY stand-in so that `sam build` has the handler the template names; replaced at merge.

The real ScalerFunction handler is written on another branch. This one fails loudly if it is ever
deployed.
"""

from __future__ import annotations

from typing import Any


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Refuse to run: this branch does not carry the scaler yet."""
    raise RuntimeError("queue-scaler: temporary ScalerFunction stand-in; the real handler was not merged")
