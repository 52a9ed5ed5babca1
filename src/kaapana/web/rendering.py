"""Jinja templates of the UI: autoescaped, strict about undefined names, one context per page."""

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from kaapana.web.assets import StaticAssets
from kaapana.web.contexts import Page


def human_bytes(count: int) -> str:
    """``1536`` -> ``1.5 KiB``: sizes as people read them."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"


class Renderer:
    def __init__(self, assets: StaticAssets) -> None:
        self.assets = assets
        self._env = Environment(
            loader=PackageLoader("kaapana.web", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.globals["static"] = assets.url
        self._env.filters["bytes"] = human_bytes

    def html(self, page: Page) -> str:
        return self._env.get_template(page.template).render(page=page, layout=page.layout)

    def response(self, page: Page, *, status_code: int = 200) -> HTMLResponse:
        """Pages show one user's data, so no shared cache may keep them."""
        return HTMLResponse(
            self.html(page), status_code=status_code, headers={"Cache-Control": "no-store"}
        )


__all__ = ["Renderer", "human_bytes"]
