"""`python -m switchboard ...`: the same command line as `switchboard ...`."""

from .cli.main import main

main()
