"""An in-process SCP on a free port, backed by a fresh platform."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from kaapana.config import Settings
from kaapana.dimse.scp import start_scp
from kaapana.platform import Platform


@dataclass
class RunningSCP:
    platform: Platform
    port: int


@pytest.fixture
def make_scp(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., RunningSCP]]:
    started = []

    def make(**overrides: object) -> RunningSCP:
        platform = Platform(make_settings(**overrides))
        server = start_scp(platform, host="127.0.0.1", port=0)
        started.append((platform, server))
        return RunningSCP(platform, server.server_address[1])

    yield make
    for platform, server in started:
        server.shutdown()
        server.wait_idle(10)
        platform.close()


@pytest.fixture
def scp(make_scp: Callable[..., RunningSCP]) -> RunningSCP:
    return make_scp()
