"""`python -m jobrelay_cli`, the same as the `jobrelay` command."""

from jobrelay_cli.main import run

run()
