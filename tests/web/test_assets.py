"""Static files: one content hash over all of them, so any change moves every URL."""

from pathlib import Path

import pytest

from kaapana.errors import NotFound
from kaapana.web.assets import CACHE_FOREVER, StaticAssets
from kaapana.web.rendering import human_bytes


def _folder(root: Path, script: str) -> Path:
    (root / "pages").mkdir(parents=True)
    (root / "api.js").write_text(script)
    (root / "pages" / "home.js").write_text('import { api } from "../api.js";\n')
    return root


def test_a_change_to_any_file_changes_the_version(tmp_path: Path) -> None:
    before = StaticAssets(_folder(tmp_path / "one", "export const api = 1;\n"))
    after = StaticAssets(_folder(tmp_path / "two", "export const api = 2;\n"))
    same = StaticAssets(_folder(tmp_path / "three", "export const api = 1;\n"))
    assert before.version != after.version
    assert before.version == same.version
    assert before.url("pages/home.js") == f"/static/{before.version}/pages/home.js"


def test_served_from_memory_with_the_right_type(tmp_path: Path) -> None:
    assets = StaticAssets(_folder(tmp_path, "export const api = 1;\n"))
    response = assets.response(assets.version, "pages/home.js")
    assert response.body == b'import { api } from "../api.js";\n'
    assert response.media_type == "text/javascript"
    assert response.headers["cache-control"] == CACHE_FOREVER
    with pytest.raises(NotFound):
        assets.response("0" * 12, "pages/home.js")
    with pytest.raises(KeyError, match=r"no static file 'pages/none\.js'"):
        assets.url("pages/none.js")


def test_the_package_ships_no_inline_markup_helpers() -> None:
    """Scripts build the DOM from text; no module assigns markup."""
    static = Path(__file__).parents[2] / "src" / "kaapana" / "web" / "static"
    for script in static.rglob("*.js"):
        text = script.read_text()
        for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):
            assert forbidden not in text, f"{script.name} uses {forbidden}"


@pytest.mark.parametrize(
    ("count", "shown"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 1024**3, "5.0 GiB")],
)
def test_human_bytes(count: int, shown: str) -> None:
    assert human_bytes(count) == shown
