"""The command-line entry point, ``ledger``: one typer app per group of verbs."""
