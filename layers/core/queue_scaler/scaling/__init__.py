"""Scaling: pools, what a tick observes (signals), the decision and the fleet it changes."""
