"""Schema-driven fuzzing of the REST API: whatever a caller sends, never a 500.

schemathesis generates requests from the OpenAPI document (valid and invalid bodies, paths and
query strings) and sends them as an administrator, who reaches every operation.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from kaapana.api import create_app
from kaapana.config import Settings
from kaapana.platform import Platform
from tests.api.conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str]]]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    with Platform(Settings(data_dir=data_dir, admin_password=ADMIN_PASSWORD)) as platform:
        platform.archive.projects.create("A")
        admin = platform.auth.users.get("admin")
        token = platform.auth.tokens.issue(admin, name="fuzz", can_write=True).secret
        app = create_app(platform.settings, platform=platform)
        app.state.platform = platform
        schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
        yield schema, {"Authorization": f"Bearer {token}"}


def test_no_request_gets_a_500(fuzzed: tuple[Any, dict[str, str]]) -> None:
    api, headers = fuzzed
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) > 15
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        check()
