"""The YAML form of a workflow of command and container steps.

```yaml
name: nifti
version: "1.0"
description: DICOM to NIfTI with dcm2niix
max_parallel: 4
parameters:
  compress: {type: string, enum: ["y", "n"], default: "y", description: gzip the output}
steps:
  - name: dcm2niix
    command: ["sh", "-c", "dcm2niix -z $COMPRESS -o ... ..."]
    timeout: 600
```
Parameter types are JSON Schema's ``string``, ``integer``, ``number``, ``boolean``; ``enum``,
``default``, ``description``, ``minimum``/``maximum`` are honoured. A parameter without a default
is required.
"""

from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from kaapana.errors import InvalidInput
from kaapana.workflows.definitions import (
    CommandOperator,
    ContainerOperator,
    ModeValues,
    Resources,
    Step,
    Workflow,
    check_name,
)

_TYPES: dict[str, type] = {"string": str, "integer": int, "number": float, "boolean": bool}


class ParameterSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["string", "integer", "number", "boolean"] = "string"
    default: Any = None
    description: str = ""
    enum: list[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None


class ResourcesSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cpu: float = 1.0
    memory_mb: int = 0
    gpu: int = 0


class StepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    mode: ModeValues = ModeValues.per_series
    command: list[str] | None = None
    image: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    upstream: list[str] = Field(default_factory=list)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    retries: int = 0
    timeout: float | None = None
    artifacts: list[str] = Field(default_factory=list)


class WorkflowSpec(BaseModel):
    """A YAML workflow document, checked field by field before it becomes a ``Workflow``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    description: str = ""
    max_parallel: int | None = None
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict)
    steps: list[StepSpec]

    @classmethod
    def from_file(cls, path: Path) -> Self:
        try:
            document = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidInput(f"cannot read workflow file {path}: {exc}") from exc
        if not isinstance(document, dict):
            raise InvalidInput(f"workflow file {path} must hold a mapping, got {document!r}")
        try:
            return cls.model_validate(document)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise InvalidInput(f"invalid workflow file {path}: {problems}") from exc

    def to_workflow(self) -> Workflow:
        return Workflow(
            name=self.name,
            version=self.version,
            description=self.description,
            parameters=self._parameters_model(),
            max_parallel=self.max_parallel,
            steps=[_step(spec) for spec in self.steps],
        )

    def _parameters_model(self) -> type[BaseModel]:
        fields: dict[str, Any] = {}
        for name, spec in self.parameters.items():
            check_name("parameter name", name)
            annotation: Any = _TYPES[spec.type]
            if spec.enum:
                annotation = Literal[tuple(spec.enum)]
            default = ... if spec.default is None else spec.default
            fields[name.replace("-", "_")] = (
                annotation,
                Field(
                    default,
                    description=spec.description or None,
                    ge=spec.minimum,
                    le=spec.maximum,
                ),
            )
        model_name = "".join(part.capitalize() for part in self.name.replace(".", "-").split("-"))
        return create_model(
            f"{model_name}Parameters",
            __config__=ConfigDict(extra="forbid"),
            **fields,
        )


def _step(spec: StepSpec) -> Step:
    if spec.command is None and spec.image is None:
        raise InvalidInput(f"step {spec.name!r} needs a 'command' or an 'image'")
    operator: CommandOperator | ContainerOperator
    if spec.image is not None:
        operator = ContainerOperator(spec.image, tuple(spec.command or ()), spec.env)
    else:
        operator = CommandOperator(tuple(spec.command or ()), spec.env)
    return Step(
        name=spec.name,
        operator=operator,
        mode=spec.mode,
        upstream=tuple(spec.upstream),
        resources=Resources(**spec.resources.model_dump()),
        retries=spec.retries,
        timeout=spec.timeout,
        artifacts=tuple(spec.artifacts),
    )


__all__ = ["WorkflowSpec"]
