"""The rewrites that let OHIF's prebuilt release live under ``/ohif/`` with a strict CSP.

OHIF's build assumes the site root: webpack's runtime loads chunks, workers and WebAssembly from
``__webpack_require__.p = "/"``, the app reads ``window.PUBLIC_URL = "/"``, and ``index.html``
and the stylesheets link ``/...``. Its inline scripts are moved into files next to it, in
order, so the page runs without ``'unsafe-inline'``.
"""

import re

MOUNT = "/ohif/"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_ROOT_LINK = re.compile(r'(\s(?:href|src)=")/(?!/)')
_PUBLIC_URL = re.compile(r"""(window\.PUBLIC_URL\s*=\s*)(["'])/\2""")
_CSS_ROOT_URL = re.compile(r"""(url\(\s*["']?)/(?!/)""")
_WEBPACK_PUBLIC_PATH = re.compile(r"""(__webpack_require__\.p\s*=\s*)(["'])/\2""")
INLINE_SCRIPT_NAME = "kaapana-inline-{}.js"


def rewrite_index(html: str) -> tuple[str, dict[str, str]]:
    """The page for ``/ohif/`` and the inline scripts it now loads, by file name."""
    if not _PUBLIC_URL.search(html):
        raise ValueError("index.html does not set window.PUBLIC_URL; unknown OHIF build layout")
    scripts: dict[str, str] = {}

    def externalise(match: re.Match[str]) -> str:
        name = INLINE_SCRIPT_NAME.format(len(scripts))
        scripts[name] = _PUBLIC_URL.sub(rf'\1"{MOUNT}"', match.group(1))
        return f'<script src="/{name}"></script>'

    page = _INLINE_SCRIPT.sub(externalise, html)
    return _ROOT_LINK.sub(rf"\1{MOUNT}", page), scripts


def rewrite_public_path(script: str) -> tuple[str, int]:
    """A webpack bundle loading its chunks from ``/ohif/``, and how many runtimes were changed."""
    return _WEBPACK_PUBLIC_PATH.subn(rf'\1"{MOUNT}"', script)


def rewrite_stylesheet(css: str) -> str:
    return _CSS_ROOT_URL.sub(rf"\1{MOUNT}", css)


__all__ = [
    "INLINE_SCRIPT_NAME",
    "MOUNT",
    "rewrite_index",
    "rewrite_public_path",
    "rewrite_stylesheet",
]
