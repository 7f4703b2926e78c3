"""kong/kong_yml.py: reading kong.yml, Kong's route order, and what the renderer refuses (no site needed)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from kong.applications import from_site
from kong.errors import RenderError
from kong.kong_yml import Gateway, load, match_order
from kong.placeholders import fill

REPO = Path(__file__).resolve().parents[2]

ISSUER = "http://127.0.0.1:8180/realms/firecrest"
SITE = REPO / "deploy" / "local" / "site.yaml"  # its registered applications and scopes
APPS = from_site(SITE)
VALUES = {"FIRECREST_ISSUER": ISSUER, "FIRECREST_AUDIENCE": "firecrest", "FIRECREST_REALM_PUBLIC_KEY": "PEM",
          **APPS.placeholders()}


def kong_yml() -> dict:
    return yaml.safe_load((REPO / "kong" / "kong.yml").read_text())


def gateway(config: dict | None = None) -> Gateway:
    gw = load(fill(config or kong_yml(), VALUES))
    gw.applications = APPS
    return gw


def plugin(config: dict, name: str) -> dict:
    return next(p for p in config["plugins"] if p["name"] == name)


def test_routes_methods_and_strip_from_kong_yml():
    gw = gateway()
    routes = {r.name: r for r in gw.routes}
    assert routes["status"].methods == ["GET", "OPTIONS"]
    assert routes["utilities"].methods == ["GET", "POST", "PUT", "DELETE", "OPTIONS"]
    assert routes["compute"].methods == ["GET", "POST", "DELETE", "OPTIONS"]
    assert routes["storage"].methods == ["GET", "POST", "OPTIONS"]
    assert routes["tasks"].methods == ["GET", "OPTIONS"]
    assert all(routes[n].strip and routes[n].cors for n in ("status", "utilities", "compute", "storage", "tasks"))
    assert routes["internal"].termination["status_code"] == 404 and routes["internal"].service is None
    assert gw.services == {"status": "http://status:5101", "utilities": "http://utilities:5104",
                           "compute": "http://compute:5106", "storage": "http://storage:5102",
                           "tasks": "http://tasks:5103", "apidocs": "http://apidocs:5108"}
    assert (gw.issuer, gw.audience, gw.typ, gw.rate) == (ISSUER, "firecrest", "Bearer", {1: 1000})


def test_kong_priority_internal_routes_outrank_the_tasks_route():
    order = [(r.name, p) for r, p in match_order(gateway().routes)]
    assert order.index(("internal", "~/tasks/+tasks?list")) < order.index(("tasks", "/tasks/"))
    assert order.index(("tasks", "/tasks/")) < order.index(("tasks-method-not-allowed", "/tasks/"))
    assert order[-1] == ("not-found", "/")



def test_the_api_documentation_is_public_and_read_only():
    routes = {r.name: r for r in gateway().routes}
    assert routes["apidocs"].public and routes["apidocs"].strip and routes["apidocs"].methods == ["GET", "HEAD"]
    assert routes["apidocs-root"].public and not routes["apidocs-root"].strip  # the service redirects /docs
    assert routes["apidocs-method-not-allowed"].termination["status_code"] == 405
    assert not any(r.public for r in gateway().routes if not r.name.startswith("apidocs"))
    order = [(r.name, p) for r, p in match_order(gateway().routes)]
    assert order.index(("internal", "~/docs/+metrics/*$")) < order.index(("apidocs", "/docs/"))


def public_route(config: dict) -> dict:
    return next(r for s in config["services"] for r in s["routes"] if r["name"] == "apidocs")


def test_a_route_replaces_the_global_jwt_only_to_be_public():
    def own(config: dict, name: str) -> dict:
        return next(p for p in public_route(config)["plugins"] if p["name"] == name)
    message = "jwt .with `anonymous`. and pre-function come together"
    refuses(lambda c: own(c, "jwt")["config"].pop("anonymous"), message)
    refuses(lambda c: public_route(c)["plugins"].remove(own(c, "pre-function")), message)
    refuses(lambda c: public_route(c)["plugins"].remove(own(c, "jwt")), message)
    refuses(lambda c: own(c, "pre-function")["config"]["access"].append('kong.response.exit(401)'), "only clear")
    refuses(lambda c: own(c, "pre-function")["config"].update(header_filter=["x"]), "only clear")
    # A disabled plugin is no replacement (Kong falls back to the global one): the route is then not public.
    config = kong_yml()
    public_route(config)["plugins"] = [{"name": "jwt", "enabled": False}, {"name": "pre-function", "enabled": False}]
    assert not next(r for r in gateway(config).routes if r.name == "apidocs").public


# --- what the renderer refuses ----------------------------------------------------------------------------------------

def refuses(change, match: str) -> None:
    config = kong_yml()
    change(config)
    with pytest.raises(RenderError, match=match):
        gateway(config)


def test_refuses_what_it_cannot_render():
    refuses(lambda c: c["plugins"].append({"name": "oauth2"}), "oauth2")
    refuses(lambda c: c["routes"][0].update(hosts=["a"]), "only paths and methods")
    refuses(lambda c: c["consumers"][0]["jwt_secrets"][0].update(algorithm="HS256"), "RS256")
    refuses(lambda c: plugin(c, "rate-limiting")["config"].update(limit_by="ip"), "limit_by")
    refuses(lambda c: c["services"][0]["routes"][0].update(paths=["/status/ x"]), "path")
    refuses(lambda c: c["services"][0]["routes"][0].update(paths=["~/a,b"]), "path")
    refuses(lambda c: c["_ignore"][0]["local_gateway"].update(audience="a b"), "audience")
    refuses(lambda c: c.pop("_ignore"), "local_gateway")


def test_loading_does_not_change_the_parsed_config():
    config = kong_yml()
    before = copy.deepcopy(config)
    gateway(config)
    assert config == before
