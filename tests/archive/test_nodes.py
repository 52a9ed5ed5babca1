"""DICOM nodes: the only places a C-MOVE may send data to."""

from typing import Any

import pytest

from kaapana.archive.nodes import Nodes
from kaapana.errors import Conflict, InvalidInput, NotFound
from kaapana.platform import Platform


@pytest.fixture
def nodes(platform: Platform) -> Nodes:
    return Nodes(platform.engine)


def test_add_list_get_and_remove(nodes: Nodes) -> None:
    added = nodes.add("pacs", " PACS1 ", "pacs.example.org", 104, "the hospital PACS")
    nodes.add("orthanc", "ORTHANC", "127.0.0.1", 4242)
    assert added.ae_title == "PACS1"
    assert [node.name for node in nodes.list()] == ["orthanc", "pacs"]
    assert nodes.get("pacs").description == "the hospital PACS"
    found = nodes.by_ae_title("PACS1 ")
    assert found is not None
    assert (found.host, found.port) == ("pacs.example.org", 104)
    assert nodes.by_ae_title("NOBODY") is None
    nodes.remove("pacs")
    assert [node.name for node in nodes.list()] == ["orthanc"]
    with pytest.raises(NotFound, match="'pacs'"):
        nodes.get("pacs")
    with pytest.raises(NotFound, match="'pacs'"):
        nodes.remove("pacs")


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"name": "bad name"}, InvalidInput, "'name' must"),
        ({"ae_title": "A" * 17}, InvalidInput, "'ae_title' must be 1-16"),
        ({"ae_title": "A\\B"}, InvalidInput, "'ae_title' must be 1-16"),
        ({"host": "  "}, InvalidInput, "'host' must not be empty"),
        ({"port": 0}, InvalidInput, "'port' must be 1-65535, got 0"),
        ({"port": 65536}, InvalidInput, "'port' must be 1-65535, got 65536"),
        ({"port": "104"}, TypeError, "'port' must be an int, got str"),
        ({"port": True}, TypeError, "'port' must be an int, got bool"),
    ],
)
def test_invalid_nodes_are_refused(
    nodes: Nodes, arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    values: dict[str, Any] = {"name": "pacs", "ae_title": "PACS", "host": "pacs", "port": 104}
    with pytest.raises(error, match=message):
        nodes.add(**{**values, **arguments})
    assert nodes.list() == []


@pytest.mark.parametrize(("name", "ae_title"), [("pacs", "OTHER"), ("other", "PACS")])
def test_names_and_ae_titles_are_unique(nodes: Nodes, name: str, ae_title: str) -> None:
    nodes.add("pacs", "PACS", "pacs", 104)
    with pytest.raises(Conflict, match="exists"):
        nodes.add(name, ae_title, "elsewhere", 11112)
    assert len(nodes.list()) == 1
