"""The built-in operator workflows load without the `workflows` extra: each missing one is a
load error of its own, and the core workflows and de-identify still load."""

import sys
from collections.abc import Callable

import pytest

from kaapana.config import Settings
from kaapana.workflows.registry import Registry

# The `workflows` extra, and the `radiomics` one.
_EXTRA_MODULES = ("scipy", "nibabel", "skimage", "dcm2niix", "pyarrow", "radiomics", "SimpleITK")


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
        "delete-series",
        "federated-statistics",
        "federated-training",
        "noop",
        "predict-segmentation",
        "query-pacs",
        "retrieve-from-pacs",
        "send-dicom",
        "series-metadata",
        "tag-dataset",
        "train-segmentation",
        "train-test-split",
    ]
    errors = {e.source: e.error for e in registry.errors}
    assert set(errors) == {
        f"builtin {module}"
        for module in (
            "nifti",
            "segmentation",
            "import_nifti",
            "radiomics",
            "evaluation",
            "metadata",
            "federated_radiomics",
        )
    }
    assert all(error.startswith("ModuleNotFoundError") for error in errors.values())


def test_all_operator_workflows_load_with_the_extra(make_settings: Callable[..., Settings]) -> None:
    registry = Registry(make_settings(workflow_entry_points=False))
    assert registry.errors == []
    names = {w.name for w in registry.all()}
    operators = {
        "convert-to-nifti",
        "de-identify",
        "import-nifti",
        "segment-ct",
        "segment-otsu",
        "radiomics",
        "evaluate-segmentation",
        "collect-metadata",
    }
    assert operators | {"train-segmentation", "predict-segmentation"} <= names
    assert registry.source("segment-ct") == "builtin segmentation"
    assert registry.source("train-segmentation") == "builtin ml"


def test_the_ml_workflows_without_the_ml_extra_are_one_load_error(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "kaapana.workflows.builtin.ml", raising=False)
    monkeypatch.setitem(sys.modules, "torch", None)
    registry = Registry(make_settings(workflow_entry_points=False))
    assert {e.source: e.error for e in registry.errors} == {
        "builtin ml": "ImportError: ['torch'] not installed: pip install 'kaapana[ml]'"
    }
    assert "segment-ct" in {w.name for w in registry.all()}
