"""Lifecycle: launch and terminate hooks, drains, Spot notices and the commands sent to instances."""
