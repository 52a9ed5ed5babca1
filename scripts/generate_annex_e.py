"""Regenerate ``src/kaapana/operators/annex_e.json`` from a machine-readable copy of DICOM
PS3.15 Table E.1-1.

The source is ``idiscore/_public_dicom.py`` from the PyPI package ``idiscore`` (scraped from the
published standard); it is read as Python syntax and never imported, so none of idiscore's
dependencies are needed:

    pip download --no-deps idiscore==1.2.0 -d /tmp/idiscore
    unzip -o /tmp/idiscore/idiscore-1.2.0-py3-none-any.whl -d /tmp/idiscore
    python scripts/generate_annex_e.py /tmp/idiscore/idiscore/_public_dicom.py
"""

import ast
import json
import sys
from pathlib import Path

_ACTIONS = {
    "DUMMY": "D",
    "EMPTY": "Z",
    "REMOVE": "X",
    "KEEP": "K",
    "CLEAN": "C",
    "UID": "U",
    "EMPTY_OR_DUMMY": "Z/D",
    "REMOVE_OR_EMPTY": "X/Z",
    "REMOVE_OR_DUMMY": "X/D",
    "REMOVE_OR_EMPTY_OR_DUMMY": "X/Z/D",
    "REMOVE_OR_EMPTY_OR_UID": "X/Z/U*",
}
_TARGET = Path(__file__).parents[1] / "src" / "kaapana" / "operators" / "annex_e.json"


def _identifier(call: ast.Call) -> str:
    kind = call.func.id  # type: ignore[attr-defined]
    if kind == "PrivateTags":
        return "private"
    return str(call.args[0].value).lower()  # type: ignore[attr-defined]


def main(source: Path) -> None:
    tree = ast.parse(source.read_text())
    docstring = ast.get_docstring(tree) or ""
    profiles: dict[str, dict[str, object]] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        keywords = {keyword.arg: keyword.value for keyword in node.value.keywords}
        rules = {
            _identifier(rule.elts[0]): _ACTIONS[rule.elts[1].attr]  # type: ignore[attr-defined]
            for rule in keywords["rules"].elts  # type: ignore[attr-defined]
        }
        profiles[node.targets[0].id] = {  # type: ignore[attr-defined]
            "name": keywords["name"].value,  # type: ignore[attr-defined]
            "code": keywords["code"].value,  # type: ignore[attr-defined]
            "rules": dict(sorted(rules.items())),
        }
    table = {
        "source": "DICOM PS3.15 Table E.1-1 from idiscore 1.2.0 (idiscore/_public_dicom.py)",
        "scraped": docstring.strip().splitlines()[-1],
        "profiles": profiles,
    }
    _TARGET.write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
