"""soravid's command line. Each submodule registers its commands on `app`."""

from soravid.cli import batch, extend, generate, presets, train, world  # noqa: F401  (registers the commands)
from soravid.cli.app import app, main

__all__ = ["app", "main"]
