"""The catalog: cohort curation over the index.

Datasets with their counts and manifests, series deletion, and what is known about each series
beyond its index row: thumbnails, validation, completeness and the references between series,
each made once when a series arrives (:class:`SeriesJobs`) and served from the stored result.
"""

from kaapana.catalog.completeness import Completeness, check_completeness
from kaapana.catalog.datasets import (
    DatasetInfo,
    DatasetKindValues,
    DatasetMember,
    Datasets,
    ResolveQuery,
)
from kaapana.catalog.manifest import ManifestFormatValues
from kaapana.catalog.references import (
    record_references,
    referenced_series_uids,
    referencing_series,
)
from kaapana.catalog.series_deletion import SeriesDeletion
from kaapana.catalog.series_jobs import SeriesJobs, SeriesMedia, process_arrived_series
from kaapana.catalog.summary import SeriesSummary, summarize, summarize_each
from kaapana.catalog.thumbnails import make_series_thumbnail, series_thumbnail, thumbnail_key
from kaapana.catalog.validation import (
    SeriesValidationResult,
    ValidationStatusValues,
    series_validation,
    validate_series,
)

__all__ = [
    "Completeness",
    "DatasetInfo",
    "DatasetKindValues",
    "DatasetMember",
    "Datasets",
    "ManifestFormatValues",
    "ResolveQuery",
    "SeriesDeletion",
    "SeriesJobs",
    "SeriesMedia",
    "SeriesSummary",
    "SeriesValidationResult",
    "ValidationStatusValues",
    "check_completeness",
    "make_series_thumbnail",
    "process_arrived_series",
    "record_references",
    "referenced_series_uids",
    "referencing_series",
    "series_thumbnail",
    "series_validation",
    "summarize",
    "summarize_each",
    "thumbnail_key",
    "validate_series",
]
