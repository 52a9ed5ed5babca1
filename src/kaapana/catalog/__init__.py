"""The catalog: what is known about each series beyond its index row.

Thumbnails, validation, completeness and the references between series, each made once when a
series arrives (:class:`SeriesJobs`) and served from the stored result afterwards.
"""

from kaapana.catalog.completeness import Completeness, check_completeness
from kaapana.catalog.references import (
    record_references,
    referenced_series_uids,
    referencing_series,
)
from kaapana.catalog.series_jobs import SeriesJobs, SeriesMedia, process_arrived_series
from kaapana.catalog.thumbnails import make_series_thumbnail, series_thumbnail, thumbnail_key
from kaapana.catalog.validation import (
    SeriesValidationResult,
    ValidationStatusValues,
    series_validation,
    validate_series,
)

__all__ = [
    "Completeness",
    "SeriesJobs",
    "SeriesMedia",
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
    "thumbnail_key",
    "validate_series",
]
