"""`fixed`: a constant fleet, the design's other option (no autoscaling).

The group holds the pool's `fixed_size` instances (max_size when the scenario gives none), in
service from the start of the run; nothing ever changes it.
"""

from __future__ import annotations

from devkit.sim.engine import Controller
from devkit.sim.policies.registry import Role, register


class Fixed(Controller):
    def initial_size(self) -> int:
        return self.pool.spec.constant_size

    def rest_size(self) -> int:
        return self.pool.spec.constant_size

    def on_loop(self, index: int, now: float) -> int | None:
        return None


register(
    "fixed",
    lambda scenario, workload: Fixed,
    Role.STATIC_PEER,
    "a constant fleet of the pool's fixed_size (no autoscaling)",
)
