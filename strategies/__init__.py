"""Built-in strategies, registered as plugins under the ``uisbench.strategies`` entry points."""
