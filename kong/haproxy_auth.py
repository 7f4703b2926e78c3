"""Kong's jwt plugin (plus the aud/typ/nbf checks of kong.yml's pre-function) as HAProxy ACLs."""

from __future__ import annotations

from pathlib import Path

from kong.haproxy_text import UNAUTHORIZED, json_return
from kong.kong_yml import Gateway


def jwt_rules(gw: Gateway, keys: list[Path]) -> list[str]:
    """Claim checks first and the RSA signature last, so a token with wrong claims costs no RSA work."""
    deny = json_return(401, UNAUTHORIZED, "WWW-Authenticate Bearer")
    out = [
        "    # JWT (platform-notes section 7): alg is a literal, claims are read, then one ACL per realm key.",
        "    http-request set-var(txn.bearer) http_auth_bearer",
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
    return out + [f"    {deny} unless {' '.join(required)}",
                  f"    {deny} if jwt_has_nbf !jwt_nbf_int",
                  f"    {deny} if jwt_not_yet"]
