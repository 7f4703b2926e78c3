"""Keycloak's own clients of the realm get the realm's default client scopes.

A realm file that defines `clientScopes` (ours does: the FirecREST scopes beside Keycloak's built-in ones) is
imported before Keycloak makes its own clients (`account-console`, ...), and those are then left without any
client scope: the account console's tokens carry no roles and its every call is a 403, so users could not see or
withdraw the consent they gave an application. Adding the scopes through the admin API after the import fixes
that; it is idempotent (a scope already there is left alone).
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

BUILTIN_CLIENTS = ("account-console", "account", "security-admin-console")
SCOPES = ("basic", "roles", "profile", "email", "web-origins", "acr")


def _call(url: str, token: str | None = None, method: str = "GET", form: dict[str, str] | None = None) -> Any:
    data = urllib.parse.urlencode(form).encode() if form else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (the site's own http:// URL)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
        body = reply.read()
    return json.loads(body) if body else None


def give_builtin_clients_scopes(base: str, realm: str, admin_password: str) -> None:
    token = _call(f"{base}/realms/master/protocol/openid-connect/token", method="POST",
                  form={"grant_type": "password", "client_id": "admin-cli", "username": "admin",
                        "password": admin_password})["access_token"]
    admin = f"{base}/admin/realms/{realm}"
    scope_ids = {s["name"]: s["id"] for s in _call(f"{admin}/client-scopes", token)}
    for client_id in BUILTIN_CLIENTS:
        for client in _call(f"{admin}/clients?clientId={client_id}", token):
            have = {s["name"] for s in _call(f"{admin}/clients/{client['id']}/default-client-scopes", token)}
            for name in SCOPES:
                if name not in have and name in scope_ids:
                    _call(f"{admin}/clients/{client['id']}/default-client-scopes/{scope_ids[name]}", token, "PUT")
