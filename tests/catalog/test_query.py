"""The query language: what parses, and the errors for what does not (no database needed)."""

import pytest

from kaapana.catalog.query import (
    CatalogQuery,
    Condition,
    Not,
    condition_from_shorthand,
    parse_query,
)
from kaapana.errors import InvalidInput, InvalidJson


def test_the_documented_example_parses() -> None:
    query = parse_query(
        {
            "where": {
                "and": [
                    {"field": "Modality", "op": "=", "value": "CT"},
                    {"field": "SliceThickness", "op": "<=", "value": 1.5},
                    {"not": {"field": "tags", "op": "=", "value": "excluded"}},
                ]
            },
            "text": "liver",
            "sort": [{"field": "StudyDate", "order": "desc"}],
        }
    )
    assert query.fields() == {"Modality", "SliceThickness", "tags", "StudyDate"}
    assert query.text == "liver"


def test_tags_keywords_and_paths_resolve_to_one_name() -> None:
    by_tag = parse_query({"where": {"field": "00081115.0020000E", "op": "exists"}})
    by_keyword = parse_query(
        {"where": {"field": "ReferencedSeriesSequence.SeriesInstanceUID", "op": "exists"}}
    )
    assert by_tag == by_keyword
    private = parse_query({"where": {"field": "00091001", "op": ">", "value": 3}})
    assert isinstance(private.where, Condition) and private.where.field.name == "00091001"


def test_dates_are_normalised_and_nul_dropped() -> None:
    query = parse_query(
        {
            "where": {
                "and": [
                    {"field": "StudyDate", "op": "range", "value": ["2023-01", None]},
                    {"field": "PatientID", "op": "=", "value": "A\x00B"},
                ]
            }
        }
    )
    dates, patient = query.where.children  # type: ignore[union-attr]
    assert dates.value == ("202301", None)
    assert patient.value == "AB"


def test_empty_and_text_queries() -> None:
    assert parse_query(None) == CatalogQuery()
    assert parse_query('{"text": "  "}') == CatalogQuery()
    assert isinstance(parse_query({"where": {"not": {"field": "tags", "op": "exists"}}}).where, Not)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            {"where": {"field": "NoSuchKeyword", "op": "=", "value": 1}},
            "unknown field 'NoSuchKeyword'",
        ),
        (
            {"where": {"field": "Modality", "op": "~", "value": "CT"}},
            "unknown operator '~'; allowed:",
        ),
        ({"where": {"field": "SliceThickness", "op": "<", "value": "thin"}}, "holds numbers"),
        ({"where": {"field": "Modality", "op": "=", "value": 3}}, "holds text"),
        (
            {"where": {"field": "SliceThickness", "op": "wildcard", "value": "1*"}},
            "needs a text field",
        ),
        ({"where": {"field": "StudyDate", "op": ">", "value": "last year"}}, "holds dates"),
        ({"where": {"field": "Modality", "op": "in", "value": []}}, "'in' takes a list"),
        ({"where": {"field": "Modality", "op": "range", "value": ["A"]}}, "[low, high]"),
        ({"where": {"field": "Modality", "op": "exists", "value": "yes"}}, "true or false"),
        ({"where": {"field": "Modality", "op": "="}}, "needs a value"),
        ({"where": {"and": []}}, "where.and: expected a non-empty list"),
        ({"where": {"and": [{"field": "Modality", "op": "=", "value": "CT"}, 3]}}, "where.and[1]"),
        ({"where": {"field": "ReferencedSeriesSequence", "op": "exists"}}, "is a sequence"),
        ({"where": {"field": "Modality.CodeValue", "op": "exists"}}, "is not a sequence"),
        ({"where": {"field": "PixelData", "op": "exists"}}, "binary data"),
        ({"where": {"field": "tags", "op": "<", "value": "a"}}, "tags take"),
        (
            {"where": {"field": "Modality", "op": "=", "value": "CT", "extra": 1}},
            "unknown key 'extra'",
        ),
        ({"limit": 3}, "unknown key 'limit'"),
        ({"sort": [{"field": "tags"}]}, "cannot be sorted by tags"),
        ({"sort": [{"field": "StudyDate", "order": "up"}]}, "'asc' or 'desc'"),
        ({"text": 5}, "text: expected a string"),
        ([1, 2], "a query is a JSON object"),
    ],
)
def test_bad_queries_name_the_problem(query: object, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_query(query)
    assert message in caught.value.detail


def test_malformed_json_reports_line_and_column() -> None:
    with pytest.raises(InvalidJson) as caught:
        parse_query('{"where":\n  {"field": "Modality",, }}')
    assert caught.value.status == 422
    assert "line 2, column 24" in caught.value.detail


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Modality=CT", {"field": "Modality", "op": "=", "value": "CT"}),
        ("SliceThickness<=1.5", {"field": "SliceThickness", "op": "<=", "value": 1.5}),
        (
            "SeriesDescription~*liver*",
            {"field": "SeriesDescription", "op": "wildcard", "value": "*liver*"},
        ),
        ("ImageComments?", {"field": "ImageComments", "op": "exists", "value": True}),
        ("tags!=excluded", {"field": "tags", "op": "!=", "value": "excluded"}),
    ],
)
def test_shorthand_filters(text: str, expected: dict[str, object]) -> None:
    assert condition_from_shorthand(text) == expected
    parse_query({"where": expected})


def test_shorthand_errors() -> None:
    with pytest.raises(InvalidInput, match="holds numbers"):
        condition_from_shorthand("SliceThickness<=thin")
    with pytest.raises(InvalidInput, match="expected FIELD OP VALUE"):
        condition_from_shorthand("Modality")
