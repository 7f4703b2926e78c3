"""The services check registered applications and scopes themselves, as the gateway does: a request that reaches
a service's internal port without the gateway gets the same 403 (we never trust network position)."""

from __future__ import annotations

import pytest
import requests
from test_applications import refused_for, token

NEEDS = [("utilities", "GET", "/whoami", "firecrest-read"), ("utilities", "POST", "/mkdir", "firecrest-files"),
         ("compute", "POST", "/jobs/upload", "firecrest-jobs"), ("compute", "GET", "/jobs", "firecrest-read"),
         ("storage", "POST", "/xfer-external/upload", "firecrest-transfers"), ("tasks", "GET", "/", "firecrest-read"),
         ("status", "GET", "/systems", "firecrest-read")]


def direct(site, tok: str, service: str, method: str, path: str) -> requests.Response:
    return requests.request(method, site.service_url(service) + path, timeout=30,
                            headers={"Authorization": f"Bearer {tok}", "X-Machine-Name": "cluster"})


@pytest.mark.parametrize(("service", "method", "path", "scope"), NEEDS)
def test_a_service_refuses_a_token_without_the_scope(site, service, method, path, scope):
    others = tuple(s for s in ("firecrest-read", "firecrest-files", "firecrest-jobs", "firecrest-transfers")
                   if s != scope)
    assert refused_for(direct(site, token(site, "ALICE_SCOPED", others), service, method, path), scope)


@pytest.mark.parametrize("service", ["utilities", "compute", "storage", "tasks", "status"])
def test_a_service_refuses_an_unregistered_application(site, service):
    reply = direct(site, token(site, "ALICE_UNREGISTERED"), service, "GET", "/")
    assert reply.status_code == 403
    assert reply.json()["description"] == "The token was issued to an application that is not registered at this site"
