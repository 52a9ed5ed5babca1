"""What every command shares: the settings, a console, and one way to report failures."""

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console

from kaapana.config import Settings
from kaapana.errors import KaapanaError
from kaapana.platform import Platform


def settings_of(ctx: typer.Context) -> Settings:
    settings: Settings = ctx.ensure_object(dict)["settings"]
    return settings


def console() -> Console:
    """Created per call so output goes to whatever ``sys.stdout`` is now (tests capture it)."""
    return Console(highlight=False, soft_wrap=True)


def error_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def reported_errors() -> Iterator[None]:
    """A ``KaapanaError`` becomes a red message and exit code 1, never a traceback."""
    try:
        yield
    except KaapanaError as exc:
        error_console().print(f"[red]error:[/red] {exc.detail}", markup=True)
        raise typer.Exit(1) from exc


def announce_admin_password(password: str | None) -> None:
    """Shown once, on the first start; on stderr, so machine-readable output stays clean."""
    if password:
        error_console().print(
            f"[bold yellow]created user 'admin' with password: {password}[/bold yellow]\n"
            "It is shown only now; change it with `kaapana users passwd admin`.",
            markup=True,
        )


@contextmanager
def platform_of(ctx: typer.Context) -> Iterator[Platform]:
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    with reported_errors(), Platform(settings_of(ctx)) as platform:
        announce_admin_password(platform.initial_admin_password)
        yield platform


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


__all__ = [
    "announce_admin_password",
    "console",
    "error_console",
    "platform_of",
    "print_json",
    "reported_errors",
    "settings_of",
]
