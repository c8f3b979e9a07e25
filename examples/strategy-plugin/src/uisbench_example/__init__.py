"""An example uisbench strategy plugin (see uisbench's docs/PLUGINS.md)."""

from uisbench_example.cheapest import CheapestEnough

__all__ = ["CheapestEnough"]
