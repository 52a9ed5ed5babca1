"""``python -m kaapana`` is the ``kaapana`` command."""

from kaapana.cli import main

main()
