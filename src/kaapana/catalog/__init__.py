"""The catalog: cohort search on any DICOM attribute, free text, facets, fields and tags."""

from kaapana.catalog.catalog import Catalog
from kaapana.catalog.facets import Facet, FacetSpec
from kaapana.catalog.query import CatalogQuery, parse_query
from kaapana.catalog.search import SearchPage, SeriesHit

__all__ = [
    "Catalog",
    "CatalogQuery",
    "Facet",
    "FacetSpec",
    "SearchPage",
    "SeriesHit",
    "parse_query",
]
