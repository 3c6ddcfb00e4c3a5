"""The Typer application and the single place where errors become exit codes.

Exit codes: 0 done; 1 failure during generation (`SoravidError`, `GenerationError`); 2 usage
error or bad input (Typer's own usage errors, `BadInputError`, `VideoReadError`), nothing
generated; 130 interrupted (Ctrl-C). A known error prints one `error: ...` line on stderr and
no traceback.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from soravid.cli.common import print_error
from soravid.errors import SoravidError

EXIT_INTERRUPTED = 130


class SoravidGroup(TyperGroup):
    """The root command group: every command runs inside its error mapping."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SoravidError as error:
            print_error(str(error))
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            from soravid.video import abort_unfinished_writes  # numpy and ffmpeg load lazily

            abort_unfinished_writes()
            print_error("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None


app = typer.Typer(
    name="soravid",
    cls=SoravidGroup,
    help="Turn a sentence into a video.",
    epilog='Example: soravid generate "a big red ball bouncing on a black background"',
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def main() -> None:
    app(prog_name="soravid")
