"""The catalog: cohort curation over the index (datasets, their counts and manifests)."""

from kaapana.catalog.datasets import (
    DatasetInfo,
    DatasetKindValues,
    DatasetMember,
    Datasets,
    ResolveQuery,
)
from kaapana.catalog.manifest import ManifestFormatValues
from kaapana.catalog.series_deletion import SeriesDeletion
from kaapana.catalog.summary import SeriesSummary, summarize, summarize_each

__all__ = [
    "DatasetInfo",
    "DatasetKindValues",
    "DatasetMember",
    "Datasets",
    "ManifestFormatValues",
    "ResolveQuery",
    "SeriesDeletion",
    "SeriesSummary",
    "summarize",
    "summarize_each",
]
