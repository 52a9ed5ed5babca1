"""The catalog: cohort curation over the index.

Search on any DICOM attribute with free text, facets, fields and tags; datasets with their counts
and manifests; series deletion; and what is known about each series beyond its index row:
thumbnails, validation, completeness and the references between series, each made once when a
series arrives (the service workflow ``series-media``) and served from the stored result.
"""

from kaapana.catalog.catalog import Catalog
from kaapana.catalog.completeness import Completeness, check_completeness
from kaapana.catalog.datasets import (
    DatasetInfo,
    DatasetKindValues,
    DatasetMember,
    Datasets,
    ResolveQuery,
)
from kaapana.catalog.facets import Facet, FacetSpec
from kaapana.catalog.manifest import ManifestFormatValues
from kaapana.catalog.query import CatalogQuery, parse_query
from kaapana.catalog.references import (
    record_references,
    referenced_series_uids,
    referencing_series,
)
from kaapana.catalog.search import SearchPage, SeriesHit
from kaapana.catalog.series_deletion import SeriesDeletion
from kaapana.catalog.series_jobs import SeriesMedia, process_arrived_series
from kaapana.catalog.summary import SeriesSummary, summarize, summarize_each
from kaapana.catalog.thumbnails import make_series_thumbnail, series_thumbnail, thumbnail_key
from kaapana.catalog.validation import (
    SeriesValidationResult,
    ValidationStatusValues,
    series_validation,
    validate_series,
)

__all__ = [
    "Catalog",
    "CatalogQuery",
    "Completeness",
    "DatasetInfo",
    "DatasetKindValues",
    "DatasetMember",
    "Datasets",
    "Facet",
    "FacetSpec",
    "ManifestFormatValues",
    "ResolveQuery",
    "SearchPage",
    "SeriesDeletion",
    "SeriesHit",
    "SeriesMedia",
    "SeriesSummary",
    "SeriesValidationResult",
    "ValidationStatusValues",
    "check_completeness",
    "make_series_thumbnail",
    "parse_query",
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
