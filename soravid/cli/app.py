"""The Typer application and the single place where errors become exit codes."""

import typer

app = typer.Typer(
    name="soravid",
    help="Turn a sentence into a video.",
    no_args_is_help=True,
    add_completion=False,
)


def main() -> None:
    app()
