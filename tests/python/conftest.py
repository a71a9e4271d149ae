"""Session fixtures: our host and the reference server, each on a free loopback port with a
temporary directory, stopped at the end of the session.

* ``flow_host``: our host for the client flows (test_client_flows.py).
* ``reference``: the opsml 2.2.4 reference server (client flows that are expected to fail on
  our host run against it too, to show that the flow itself is right; and the comparison).
* ``login_host`` / ``login_reference``: ours and the reference with a login on (HTTP Basic,
  ``LOGIN``), for the client flows that log in.
* ``token_host``: ours with the first admin (``ADMIN_TOKEN``) and no shared login: the client
  flows that use an API token as their password.
* ``cmp_host``: a second, fresh host of ours for the side-by-side comparison, so that the
  comparison sees only the cards it seeded (the reference sees the same ones, plus whatever the
  reference-side flows registered under other names).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from support.servers import FlowResult, Server, run_flow, start_host, start_reference


@pytest.fixture(scope="session")
def flow_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_host(tmp_path_factory.mktemp("flow-host"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def cmp_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_host(tmp_path_factory.mktemp("cmp-host"))
    yield server
    server.stop()


LOGIN = ("ci-user", "pa:ss word")


@pytest.fixture(scope="session")
def login_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_host(tmp_path_factory.mktemp("login-host"), login=LOGIN)
    yield server
    server.stop()


ADMIN_TOKEN = "python-admin-token-0123456789abcdef-xyz"


@pytest.fixture(scope="session")
def token_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # The admin token as the Basic password, so that the health check gets in.
    server = start_host(tmp_path_factory.mktemp("token-host"), env={"OPSML_ADMIN_TOKEN": ADMIN_TOKEN},
                        login=("admin", ADMIN_TOKEN))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def login_reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_reference(tmp_path_factory.mktemp("login-reference"), login=LOGIN)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_reference(tmp_path_factory.mktemp("reference"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ref_flows_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A reference server only for client flows (kept apart from the comparison's)."""
    server = start_reference(tmp_path_factory.mktemp("reference-flows"))
    yield server
    server.stop()


@pytest.fixture
def flow(tmp_path: Path) -> Callable[[str, Server], FlowResult]:
    """``flow("data_model", server)`` runs flows/data_model.py against server in tmp_path."""
    counter = iter(range(1000))

    def run(name: str, server: Server) -> FlowResult:
        return run_flow(name, server, tmp_path / f"{name}-{server.name}-{next(counter)}")

    return run
