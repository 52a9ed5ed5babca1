"""Definitions are checked in their constructors; the hash names what decides a result."""

from pathlib import Path

import pytest
from pydantic import BaseModel

from kaapana.errors import InvalidInput
from kaapana.workflows import CommandOperator, ModeValues, Step, Workflow, WorkflowSpec
from kaapana.workflows.library import noop, series_metadata


def _workflow(*steps: Step, parameters: type[BaseModel] | None = None) -> Workflow:
    extra = {"parameters": parameters} if parameters else {}
    return Workflow(name="w", version="1", steps=list(steps), **extra)


def test_cycles_unknown_upstream_and_duplicates_are_refused_by_name() -> None:
    with pytest.raises(InvalidInput, match="cycle: a -> b -> a"):
        _workflow(
            Step(name="a", operator=noop, upstream=("b",)),
            Step(name="b", operator=noop, upstream=("a",)),
        )
    with pytest.raises(InvalidInput, match=r"unknown upstream steps \['missing'\]"):
        _workflow(Step(name="a", operator=noop, upstream=("missing",)))
    with pytest.raises(InvalidInput, match="two steps named 'a'"):
        _workflow(Step(name="a", operator=noop), Step(name="a", operator=series_metadata))
    with pytest.raises(InvalidInput, match="'step name' must be"):
        Step(name="Bad Name", operator=noop)
    with pytest.raises(InvalidInput, match="'retries' of step 'a' must be >= 0, got -1"):
        Step(name="a", operator=noop, retries=-1)
    with pytest.raises(InvalidInput, match="'mode' of step 'a'"):
        Step(name="a", operator=noop, mode="sometimes")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="reserved"):
        Step(name="get-input-data", operator=noop)


def test_order_follows_upstream() -> None:
    workflow = _workflow(
        Step(name="last", operator=noop, upstream=("first", "middle")),
        Step(name="middle", operator=noop, upstream=("first",)),
        Step(name="first", operator=noop),
    )
    assert workflow.order == ["first", "middle", "last"]


def test_definition_hash_is_stable_and_changes_with_code_graph_and_schema() -> None:
    class Loud(BaseModel):
        volume: int = 3

    base = _workflow(Step(name="a", operator=noop))
    assert base.definition_hash == _workflow(Step(name="a", operator=noop)).definition_hash
    assert len(base.definition_hash) == 64
    variants = [
        _workflow(Step(name="a", operator=series_metadata)),
        _workflow(Step(name="a", operator=noop, mode=ModeValues.per_run)),
        _workflow(Step(name="a", operator=noop), parameters=Loud),
        _workflow(Step(name="a", operator=CommandOperator(("true",)))),
    ]
    assert len({base.definition_hash, *(v.definition_hash for v in variants)}) == 5


def test_parameters_are_checked_with_field_errors() -> None:
    class Parameters(BaseModel):
        threshold: int
        label: str = "liver"

    workflow = _workflow(Step(name="a", operator=noop), parameters=Parameters)
    assert workflow.validate_params({"threshold": "7"}) == {"threshold": 7, "label": "liver"}
    with pytest.raises(InvalidInput, match=r"threshold: .*integer.*got 'many'"):
        workflow.validate_params({"threshold": "many"})
    with pytest.raises(InvalidInput, match="threshold: Field required"):
        workflow.validate_params({})
    assert workflow.parameters_schema()["required"] == ["threshold"]


def test_yaml_spec_becomes_a_command_workflow(tmp_path: Path) -> None:
    path = tmp_path / "nifti.yaml"
    path.write_text(
        """
name: nifti
version: "2.1"
description: convert
max_parallel: 2
parameters:
  compress: {type: string, enum: ["y", "n"], default: "y", description: gzip}
  level: {type: integer, minimum: 1, maximum: 9}
steps:
  - name: convert
    command: ["sh", "-c", "true"]
    timeout: 30
    retries: 2
    resources: {cpu: 2, memory_mb: 512}
    artifacts: ["*.nii.gz"]
  - name: summary
    mode: per_run
    upstream: [convert]
    command: ["true"]
"""
    )
    workflow = WorkflowSpec.from_file(path).to_workflow()
    assert (workflow.name, workflow.version, workflow.max_parallel) == ("nifti", "2.1", 2)
    convert = workflow.steps["convert"]
    assert isinstance(convert.operator, CommandOperator)
    assert (convert.timeout, convert.retries, convert.resources.cpu) == (30, 2, 2)
    assert workflow.steps["summary"].mode is ModeValues.per_run
    assert workflow.validate_params({"level": 3}) == {"compress": "y", "level": 3}
    with pytest.raises(InvalidInput, match="level"):
        workflow.validate_params({"level": 12})
    with pytest.raises(InvalidInput, match="compress"):
        workflow.validate_params({"level": 3, "compress": "maybe"})
    assert WorkflowSpec.from_file(path).to_workflow().definition_hash == workflow.definition_hash


def test_bad_yaml_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nversion: '1'\nsteps:\n  - name: a\n    comand: [true]\n")
    with pytest.raises(InvalidInput, match=r"steps\.0\.comand"):
        WorkflowSpec.from_file(path)
    path.write_text("name: bad\nversion: '1'\nsteps:\n  - name: a\n")
    with pytest.raises(InvalidInput, match="needs a 'command' or an 'image'"):
        WorkflowSpec.from_file(path).to_workflow()
