"""The gateway's public routes (kong.yml's apidocs routes, the API documentation): no token needed or read, no
identity passed on, not counted against a user's limit; other methods 405. Run against a second HAProxy rendered
from kong.yml in front of an echo server (tests/integration/test_gateway.py's fixtures)."""

from __future__ import annotations

import requests
from test_gateway import alice, bearer, echo, jwks, seen, set_rate, test_gateway, test_key  # noqa: F401 (fixtures)


def test_the_documentation_needs_no_token(test_gateway):  # noqa: F811
    url = test_gateway()
    response = requests.get(f"{url}/docs/openapi.yaml", timeout=30)
    assert response.status_code == 200
    assert seen(response)["path"] == "/openapi.yaml"  # the prefix stripped
    assert seen(requests.get(f"{url}/docs", timeout=30))["path"] == "/docs"  # the service redirects it


def test_no_identity_reaches_the_documentation(test_gateway, alice):  # noqa: F811
    url = test_gateway()
    response = requests.get(f"{url}/docs/", timeout=30, headers={
        **bearer(alice), "X-Auth-Sub": "bob", "x-auth-client": "firecrest-bob", "X-Auth-Whatever": "1"})
    assert response.status_code == 200
    headers = seen(response)["headers"]
    assert headers.get("x-auth-sub", [""]) == [""] and headers.get("x-auth-client", [""]) == [""]
    assert not [name for name in headers if name.startswith("x-auth-") and name not in ("x-auth-sub", "x-auth-client")]


def test_a_token_on_the_documentation_is_not_read(test_gateway):  # noqa: F811
    url = test_gateway()
    for token in ("garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."):
        assert requests.get(f"{url}/docs/", headers=bearer(token), timeout=30).status_code == 200


def test_the_documentation_does_not_count_against_the_tokens_user(test_gateway, alice):  # noqa: F811
    url = test_gateway(lambda config: set_rate(config, second=5))
    codes = {requests.get(f"{url}/docs/", headers=bearer(alice), timeout=30).status_code for _ in range(30)}
    assert codes == {200}
    assert requests.get(f"{url}/status/parameters", headers=bearer(alice), timeout=30).status_code == 200


def test_other_methods_are_405_without_a_token(test_gateway):  # noqa: F811
    url = test_gateway()
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for path in ("/docs/", "/docs", "/docs/openapi.yaml"):
            response = requests.request(method, url + path, timeout=30)
            assert response.status_code == 405, (method, path)
            assert response.headers["Allow"] == "GET, HEAD"
    assert requests.get(f"{url}/docs/metrics", timeout=30).status_code == 404
