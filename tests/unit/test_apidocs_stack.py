"""The API documentation as part of the embedded site: a service of the `services` component on its own port, run
as `firecrest` without the services' credential, told the gateway's URL, and forwarded to by the gateway."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "deploy" / "local"))

from stack.components import PORTS  # noqa: E402
from stack.components.firewall import BACKENDS  # noqa: E402
from stack.components.gateway import KONG_SERVICES  # noqa: E402
from stack.components.services import SERVICE_USER, SERVICES, Services  # noqa: E402
from stack.core import Stack  # noqa: E402


@pytest.fixture
def services(tmp_path: Path) -> Services:
    stack = Stack(tmp_path / "stack")
    stack.dir.mkdir(parents=True)
    return Services(stack)


def test_apidocs_runs_with_the_services_on_its_own_port(services):
    [docs] = [s for s in SERVICES if s.name == "apidocs"]
    assert (docs.module, docs.user, docs.probe) == ("apidocs.app:create()", SERVICE_USER, "/openapi.yaml")
    assert PORTS["apidocs"] in services.ports()
    [daemon] = [d for d in services.daemons() if d.name == "apidocs"]
    assert f"127.0.0.1:{PORTS['apidocs']}" in daemon.argv and daemon.argv[-1] == "apidocs.app:create()"
    assert BACKENDS["apidocs"] == ("haproxy", SERVICE_USER)  # users reach it through the gateway only


def test_apidocs_knows_the_gateway_and_holds_no_credential(services):
    env = {s.name: services._env(s) for s in SERVICES}
    assert env["apidocs"]["FIRECREST_URL"] == f"http://127.0.0.1:{PORTS['gateway']}"
    assert "FIRECREST_SERVICE_TOKEN" not in env["apidocs"]
    assert all(env[name]["FIRECREST_SERVICE_TOKEN"] for name in env if name != "apidocs")
    assert not {"SWIFT_KEY", "FIRECREST_REDIS_PASSWORD"} & set(env["apidocs"])


def test_the_gateway_forwards_to_every_service_of_kong_yml():
    config = yaml.safe_load((REPO / "kong" / "kong.yml").read_text())
    assert {s["name"] for s in config["services"]} == set(KONG_SERVICES)
    assert all(name in PORTS for name in KONG_SERVICES)
