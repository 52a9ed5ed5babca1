"""The built-in operator workflows load without the `workflows` extra: each missing one is a
load error of its own, and the core workflows and de-identify still load."""

import sys
from collections.abc import Callable

import pytest

from kaapana.config import Settings
from kaapana.workflows.registry import Registry

_EXTRA_MODULES = ("scipy", "nibabel", "skimage", "dcm2niix")


def test_operator_workflows_without_the_extra_are_load_errors(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in _EXTRA_MODULES or name.startswith(
            ("kaapana.operators.", "kaapana.workflows.builtin.")
        ):
            monkeypatch.delitem(sys.modules, name)
    for name in _EXTRA_MODULES:
        monkeypatch.setitem(sys.modules, name, None)  # importing it raises ImportError
    registry = Registry(make_settings(workflow_entry_points=False))
    assert [w.name for w in registry.all()] == [
        "de-identify",
        "federated-radiomics",
        "federated-statistics",
        "noop",
        "series-metadata",
    ]
    errors = {e.source: e.error for e in registry.errors}
    assert set(errors) == {"builtin nifti", "builtin segmentation", "builtin import_nifti"}
    assert all(error.startswith("ModuleNotFoundError") for error in errors.values())


def test_all_operator_workflows_load_with_the_extra(make_settings: Callable[..., Settings]) -> None:
    registry = Registry(make_settings(workflow_entry_points=False))
    assert registry.errors == []
    names = {w.name for w in registry.all()}
    operators = {"convert-to-nifti", "de-identify", "import-nifti", "segment-ct", "segment-otsu"}
    assert operators <= names
    assert registry.source("segment-ct") == "builtin segmentation"
