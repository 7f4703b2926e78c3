"""Kong's jwt plugin (plus the aud/typ/nbf checks of kong.yml's pre-function) as HAProxy ACLs."""

from __future__ import annotations

from pathlib import Path

from kong.applications import READ_METHODS
from kong.haproxy_text import NOT_REGISTERED, UNAUTHORIZED, json_return, missing_scope
from kong.kong_yml import Gateway


def public_rules(gw: Gateway) -> list[str]:
    """Public routes (their own jwt lets anyone through as `anonymous`): the token is not even read there, so no
    claim is set (no X-Auth-Sub, no per-user count)."""
    public = [r.name for r in gw.routes if r.public]
    if not public:
        return []
    return [f"    acl public_route var(txn.route) -m str {' '.join(public)}",
            "    http-request unset-var(txn.bearer) if public_route"]


def unless_public(gw: Gateway) -> str:
    """Appended to an `unless` condition that asks for a token: a public route passes without."""
    return " || public_route" if any(r.public for r in gw.routes) else ""


def jwt_rules(gw: Gateway, keys: list[Path]) -> list[str]:
    """Claim checks first and the RSA signature last, so a token with wrong claims costs no RSA work."""
    deny = json_return(401, UNAUTHORIZED, "WWW-Authenticate Bearer")
    out = [
        "    # JWT (platform-notes section 7): alg is a literal, claims are read, then one ACL per realm key.",
        "    http-request set-var(txn.bearer) http_auth_bearer",
        *public_rules(gw),
        "    http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')",
        *(f"    http-request set-var(txn.{c}) var(txn.bearer),jwt_payload_query('$.{c}')"
          for c in ("typ", "iss", "sub", "azp")),
        "    http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')",
        "    http-request set-var(txn.nbf) var(txn.bearer),jwt_payload_query('$.nbf','int')",
        "    http-request set-var(txn.now) date()",
        "    acl jwt_one_header req.hdr_cnt(Authorization) eq 1",
        "    acl jwt_alg_ok var(txn.alg) -m str RS256",
        f"    acl jwt_iss_ok var(txn.iss) -m str {gw.issuer}",
        f"    acl jwt_aud_ok var(txn.bearer),jwt_payload_query('$.aud') -m str {gw.audience}",
        *(f"    acl jwt_aud_ok var(txn.bearer),jwt_payload_query('$.aud[{i}]') -m str {gw.audience}"
          for i in range(gw.aud_slots)),
        "    acl jwt_has_sub var(txn.sub) -m len gt 0",
        # json_query's 'int' passes a non-numeric string through unchanged: require digits (PyJWT: int(claim)).
        "    acl jwt_has_exp var(txn.exp) -m reg ^[0-9]{1,12}$",
        "    acl jwt_expired var(txn.exp),sub(txn.now) -m int le 0",
        "    acl jwt_has_nbf var(txn.nbf) -m found",
        "    acl jwt_nbf_int var(txn.nbf) -m reg ^[0-9]{1,12}$",
        "    acl jwt_not_yet var(txn.nbf),sub(txn.now) -m int gt 0",
        *(f'    acl jwt_sig_ok var(txn.bearer),jwt_verify("RS256","{k}") -m int 1' for k in keys),
    ]
    if gw.typ:
        out.append(f"    acl jwt_typ_ok var(txn.typ) -m str {gw.typ}")
    required = ["jwt_one_header", "jwt_alg_ok", *(["jwt_typ_ok"] if gw.typ else []), "jwt_iss_ok", "jwt_aud_ok",
                "jwt_has_sub", "jwt_has_exp", "!jwt_expired", *(["jwt_has_nbf"] if gw.require_nbf else []),
                "jwt_sig_ok"]
    return out + [f"    {deny} unless {' '.join(required)}{unless_public(gw)}",
                  f"    {deny} if jwt_has_nbf !jwt_nbf_int",
                  f"    {deny} if jwt_not_yet"]


def application_rules(gw: Gateway) -> list[str]:
    """After the token is verified: its application (`azp`) must be registered, and its `scope` must hold the scope
    the route's service needs for the request's method (reads: GET and HEAD), else 403 saying which."""
    apps = gw.applications
    if apps is None:
        return []
    out = [
        "    # Registered applications and their scopes (the site file's auth.applications and auth.scopes).",
        "    http-request set-var(txn.scope) var(txn.bearer),jwt_payload_query('$.scope')",
        f"    acl app_registered var(txn.azp) -m str {' '.join(apps.clients)}",
        f"    {json_return(403, NOT_REGISTERED)} unless app_registered{unless_public(gw)}",
        f"    acl read_method method {' '.join(READ_METHODS)}",
    ]
    needed = sorted({scope for kinds in apps.scopes.values() for scope in kinds.values()})
    out += [f"    acl scope_{acl_name(s)} var(txn.scope) -m reg {scope_pattern(s)}" for s in needed]
    for service, kinds in apps.scopes.items():
        routes = [r.name for r in gw.routes if r.service == service and r.termination is None]
        if not routes:
            continue
        out.append(f"    acl service_{acl_name(service)} var(txn.route) -m str {' '.join(routes)}")
        for kind, scope in kinds.items():
            method = "read_method" if kind == "read" else "!read_method"
            out.append(f"    {json_return(403, missing_scope(scope))} if service_{acl_name(service)} {method} "
                       f"!scope_{acl_name(scope)}")
    return out


def acl_name(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def scope_pattern(scope: str) -> str:
    """The scope as a whole word of the space-separated claim (quoted: HAProxy takes no backslash in quotes)."""
    return "'(^| )" + scope.replace(".", "\\.") + "( |$)'"
