"""The `gatewayz` command. Each group lives in its own module."""

from __future__ import annotations

import typer

from gatewayz.cli import db, keys, models, providers, serve, users

app = typer.Typer(help="Gatewayz: one API key, every AI model, one bill.", no_args_is_help=True)
app.command(name="serve")(serve.serve)
app.add_typer(db.app, name="db")
app.add_typer(users.app, name="users")
app.add_typer(keys.app, name="keys")
app.add_typer(providers.app, name="providers")
app.add_typer(models.app, name="models")

if __name__ == "__main__":
    app()
