"""federated-radiomics, the local part: the radiomics operator's PyRadiomics features per SEG
segment over the image series the SEG references, summarised into ``radiomics.json`` (the
``radiomics`` extra, as the radiomics workflow)."""

import json

from kaapana.federation.radiomics import RADIOMICS_NAME, WORKFLOW_NAME, cases_of, summarize
from kaapana.operators.radiomics import (
    FEATURES_JSON,
    FeatureClassValues,
    RadiomicsParameters,
    read_features,
    segment_features,
    write_features,
)
from kaapana.operators.series import read_series
from kaapana.workflows.builtin import referenced_seg_image, series_seg
from kaapana.workflows.context import TaskContext
from kaapana.workflows.definitions import ModeValues, Resources, Step, Workflow

FEATURES_STEP = "radiomics-features"
PARAMETERS = RadiomicsParameters(
    feature_classes=[FeatureClassValues.shape, FeatureClassValues.firstorder]
)
"""Only the classes whose features are summarised (``BIN_WIDTHS``)."""


def run_segment_features(ctx: TaskContext) -> None:
    """A SEG series' features over the image series it references (the step's references bring
    it in); image series have nothing to compute on their own. Stays at the site."""
    if ctx.series[0].modality != "SEG":
        ctx.progress(1)
        return
    seg = series_seg(ctx)
    result = segment_features(read_series(referenced_seg_image(ctx, seg)), seg, PARAMETERS)
    write_features(result, ctx.output_dir, PARAMETERS)
    ctx.progress(1)


def run_site_radiomics(ctx: TaskContext) -> None:
    """Every SEG's features: their summaries per label into ``radiomics.json``."""
    cases = [
        case
        for folder in ctx.input_dirs().values()
        if (folder / FEATURES_JSON).is_file()
        for case in cases_of(read_features(folder / FEATURES_JSON))
    ]
    target = ctx.output_dir / RADIOMICS_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(summarize(cases), sort_keys=True))
    ctx.add_artifact(target)
    ctx.logger.info("radiomics of %d segments", len(cases))
    ctx.progress(1)


WORKFLOWS = [
    Workflow(
        name=WORKFLOW_NAME,
        version="2.0",
        description="PyRadiomics shape and first-order features per SEG segment over its image "
        "series, summarised per label; the local part of federated radiomics.",
        federated_outputs=(RADIOMICS_NAME,),
        steps=[
            Step(
                name=FEATURES_STEP,
                operator=run_segment_features,
                timeout=1800,
                references=True,
                resources=Resources(cpu=1, memory_mb=3000),
            ),
            Step(
                name="radiomics-summary",
                operator=run_site_radiomics,
                mode=ModeValues.per_run,
                upstream=(FEATURES_STEP,),
                timeout=3600,
            ),
        ],
    ),
]
