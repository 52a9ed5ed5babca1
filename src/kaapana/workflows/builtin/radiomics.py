"""radiomics: PyRadiomics features per segment of each SEG over its image series, a run-level
table with summary plots, and key features indexed on the SEG series in the catalog."""

from kaapana.catalog.workflow_actions import SET_SERIES_FEATURES
from kaapana.operators.charts import strip_chart, svg_document
from kaapana.operators.radiomics import (
    FEATURES_JSON,
    RadiomicsParameters,
    feature_rows,
    read_features,
    segment_features,
    write_features,
    write_table,
)
from kaapana.operators.series import read_series
from kaapana.workflows.builtin import referenced_seg_image, series_seg
from kaapana.workflows.context import TaskContext
from kaapana.workflows.definitions import ModeValues, Resources, Step, Workflow

FEATURES_STEP = "radiomics"


def run_radiomics(ctx: TaskContext) -> None:
    """Features of a SEG series over the image series it references (the step's references
    bring it in); image series of the input have nothing to compute on their own."""
    parameters = RadiomicsParameters.model_validate(ctx.params)
    series = ctx.series[0]
    if series.modality != "SEG":
        ctx.logger.info(
            "series %s is %s, not a SEG: nothing to compute (a SEG brings its image series)",
            series.series_instance_uid,
            series.modality,
        )
        ctx.progress(1)
        return
    seg = series_seg(ctx)
    image = read_series(referenced_seg_image(ctx, seg))
    ctx.progress(0.2)
    result = segment_features(image, seg, parameters)
    for path in write_features(result, ctx.output_dir, parameters):
        ctx.add_artifact(path)
    for segment in result.segments:
        if segment.error:
            ctx.logger.warning("segment %d (%s): %s", segment.number, segment.label, segment.error)
    indexed = result.indexed(parameters.indexed_features)
    ctx.request(SET_SERIES_FEATURES, source="radiomics", features=indexed)
    ctx.logger.info(
        "%d segments over image series %s; %d features indexed",
        len(result.segments),
        result.image_series_instance_uid,
        len(indexed),
    )
    ctx.progress(1)


def run_radiomics_summary(ctx: TaskContext) -> None:
    """Every series' features in one table, and a strip chart per indexed feature."""
    parameters = RadiomicsParameters.model_validate(ctx.params)
    results = [
        read_features(folder / FEATURES_JSON)
        for folder in ctx.input_dirs().values()
        if (folder / FEATURES_JSON).is_file()
    ]
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    table = write_table(
        [row for result in results for row in feature_rows(result)],
        ctx.output_dir / "radiomics.csv",
    )
    charts = []
    for name in parameters.indexed_features:
        groups: dict[str, list[float]] = {}
        for result in results:
            for segment in result.segments:
                if name in segment.features:
                    groups.setdefault(segment.label, []).append(segment.features[name])
        if groups:
            charts.append(strip_chart(name, groups))
    summary = ctx.output_dir / "summary.svg"
    summary.write_text(svg_document(charts))
    ctx.add_artifact(table)
    ctx.add_artifact(summary)
    ctx.logger.info("%d SEG series in the run table, %d charts", len(results), len(charts))
    ctx.progress(1)


WORKFLOWS = [
    Workflow(
        name="radiomics",
        version="1.0",
        description="PyRadiomics features per segment of each SEG over its image series: CSV "
        "and JSON per series, a run table and plots; key features searchable in the catalog.",
        parameters=RadiomicsParameters,
        steps=[
            Step(
                name=FEATURES_STEP,
                operator=run_radiomics,
                timeout=1800,
                references=True,
                resources=Resources(cpu=1, memory_mb=3000),
            ),
            Step(
                name="radiomics-summary",
                operator=run_radiomics_summary,
                mode=ModeValues.per_run,
                upstream=(FEATURES_STEP,),
                timeout=600,
            ),
        ],
    ),
]
