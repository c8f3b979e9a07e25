"""``python -m uisbench.cli``."""

from uisbench.cli import main

main()
