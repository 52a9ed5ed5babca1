"""Contract: every setting and every CLI command is documented where users look."""

from pathlib import Path

import typer.main

from kaapana.cli import app
from kaapana.config import Settings

DOCS = Path(__file__).parents[1] / "docs"


def test_every_setting_has_a_description_and_a_row_in_the_docs() -> None:
    text = (DOCS / "configuration.md").read_text()
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no description"
        assert f"| `{name}` | `KAAPANA_{name.upper()}` |" in text, f"{name} is not documented"


def _commands(group: typer.main.TyperGroup, prefix: str = "") -> list[tuple[str, object]]:
    found = []
    for name, command in group.commands.items():
        found.append((f"{prefix}{name}", command))
        if isinstance(command, typer.main.TyperGroup):
            found += _commands(command, f"{prefix}{name} ")
    return found


def test_every_command_and_option_has_help_and_docs() -> None:
    text = "\n".join(path.read_text() for path in sorted(DOCS.glob("*.md")))
    for name, command in _commands(typer.main.get_command(app)):
        assert command.help, f"`kaapana {name}` has no help"
        assert f"kaapana {name}" in text, f"`kaapana {name}` is not in docs/"
        for param in command.params:
            assert param.param_type_name == "argument" or param.help, f"{name} {param.name}"
