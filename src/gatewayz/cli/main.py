"""The `gatewayz` command. Each group lives in its own module."""

from __future__ import annotations

import typer

from gatewayz import __version__
from gatewayz.cli import (
    breakers,
    db,
    keys,
    models,
    plans,
    providers,
    routing,
    secrets,
    serve,
    users,
)

app = typer.Typer(help="Gatewayz: one API key, every AI model, one bill.", no_args_is_help=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gatewayz {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Gatewayz: one API key, every AI model, one bill."""


app.command(name="serve")(serve.serve)
app.add_typer(db.app, name="db")
app.add_typer(secrets.app, name="secrets")
app.add_typer(users.app, name="users")
app.add_typer(keys.app, name="keys")
app.add_typer(providers.app, name="providers")
app.add_typer(models.app, name="models")
app.add_typer(breakers.app, name="breakers")
app.add_typer(plans.app, name="plans")
app.add_typer(routing.app, name="routing")

if __name__ == "__main__":
    app()
