"""Command modules of the `stretchc` CLI; see stretchc/cli.py."""
