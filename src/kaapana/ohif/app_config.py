"""OHIF's ``app-config.js`` for one user: a DICOMweb data source per project the user sees.

Each source is the project's DICOMweb root (``/dicomweb/projects/<project>``), named after the
project (project names are letters, digits, ``_``, ``.`` and ``-``, so they are safe in OHIF's
routes ``/viewer/<source>`` and ``?datasources=<source>``). The requests go to the same origin,
so the browser sends the login session cookie with them: no credential is written into the file.
"""

import json
from collections.abc import Sequence
from typing import Any

from kaapana.ohif.mount import MOUNT


def data_source(name: str, root: str) -> dict[str, Any]:
    return {
        "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
        "sourceName": name,
        "configuration": {
            "friendlyName": f"kaapana {name}",
            "name": name,
            "qidoRoot": root,
            "wadoRoot": root,
            "wadoUriRoot": root,
            "qidoSupportsIncludeField": True,
            "imageRendering": "wadors",
            "thumbnailRendering": "wadors",
            "enableStudyLazyLoad": True,
            "supportsFuzzyMatching": False,
            "supportsWildcard": True,
            "supportsReject": False,
            "staticWado": False,
            "singlepart": "bulkdata,video",
            "bulkDataURI": {"enabled": True, "relativeResolution": "studies"},
            "omitQuotationForMultipartRequest": True,
        },
    }


def app_config(projects: Sequence[str], *, public_root: str) -> dict[str, Any]:
    """``public_root`` ends with ``/``; the study list opens with the first project."""
    sources = [data_source(name, f"{public_root}dicomweb/projects/{name}") for name in projects]
    return {
        "routerBasename": MOUNT.rstrip("/"),
        "showStudyList": True,
        "extensions": [],
        "modes": [],
        "customizationService": {},
        "maxNumberOfWebWorkers": 3,
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": True,
        "showLoadingIndicator": True,
        "strictZSpacingForVolumeViewport": True,
        "investigationalUseDialog": {"option": "never"},
        "maxNumRequests": {"interaction": 100, "thumbnail": 5, "prefetch": 25},
        "defaultDataSourceName": projects[0] if projects else None,
        "dataSources": sources,
    }


def app_config_script(config: dict[str, Any]) -> str:
    """JSON is a JavaScript expression; ``ensure_ascii`` and escaped ``<`` keep it inert."""
    text = json.dumps(config, ensure_ascii=True, indent=2).replace("<", "\\u003c")
    return f"window.config = {text};\n"


__all__ = ["app_config", "app_config_script", "data_source"]
