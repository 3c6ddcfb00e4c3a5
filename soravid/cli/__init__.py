"""soravid's command line. Each submodule registers its commands on `app`."""

from soravid.cli.app import app, main

__all__ = ["app", "main"]
