"""The ``augane`` command. Each subcommand lives in its own module of this package."""
