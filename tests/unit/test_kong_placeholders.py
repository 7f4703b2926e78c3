"""kong/placeholders.py: `${NAME}` in kong.yml's strings filled from given values (no site needed)."""

from __future__ import annotations

import pytest
from test_kong_yml import ISSUER, REPO, VALUES

from kong.errors import RenderError
from kong.placeholders import PLACEHOLDER, fill


def test_fill_replaces_placeholders_inside_strings_only():
    pem = "-----BEGIN PUBLIC KEY-----\nABC\n-----END PUBLIC KEY-----\n"
    tree = {"a": ["x ${FIRECREST_ISSUER} y", {"k": "${FIRECREST_REALM_PUBLIC_KEY}"}], "n": 3, "b": True}
    out = fill(tree, {"FIRECREST_ISSUER": ISSUER, "FIRECREST_REALM_PUBLIC_KEY": pem})
    assert out == {"a": [f"x {ISSUER} y", {"k": pem}], "n": 3, "b": True}


def test_unfilled_placeholder_is_an_error():
    with pytest.raises(RenderError, match="FIRECREST_NOPE"):
        fill({"a": "${FIRECREST_NOPE}"}, VALUES)


def test_kong_yml_has_exactly_the_documented_placeholders():
    text = (REPO / "kong" / "kong.yml").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert set(PLACEHOLDER.findall(body)) == set(VALUES)
