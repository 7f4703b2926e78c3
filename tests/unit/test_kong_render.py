"""kong/render.py: the command line, upstreams from arguments and the environment (no site needed)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa
from test_kong_jwks import jwk_of
from test_kong_yml import ISSUER, SITE, gateway

from kong import render
from kong.kong_out import milliseconds


def test_upstreams_from_arguments_win_over_environment():
    services = gateway().services
    env = {"FIRECREST_INTERNAL_STATUS_URL": "http://127.0.0.1:1", "FIRECREST_INTERNAL_CERTIFICATOR_URL": "http://x:2"}
    found = render.upstreams_from(["status=http://127.0.0.1:5101"], services, env)
    assert found == {"status": "http://127.0.0.1:5101"}  # the certificator is never an upstream
    with pytest.raises(render.RenderError, match="certificator"):
        render.upstreams_from(["certificator=http://127.0.0.1:5100"], services, {})



# --- the command line, checked by haproxy itself ----------------------------------------------------------------------

@pytest.mark.skipif(not shutil.which("haproxy"), reason="haproxy is not installed")
def test_command_line_writes_a_valid_haproxy_config(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk_of(key, kid="k", use="sig", alg="RS256")]}))
    code = render.main(["--out", str(tmp_path / "haproxy.cfg"), "--port", "18123", "--issuer", ISSUER,
                        "--audience", "firecrest", "--site", str(SITE), "--jwks", str(tmp_path / "jwks.json"),
                        "--key-dir", str(tmp_path / "keys"), "--upstream", "status=http://127.0.0.1:5101",
                        "--kong-out", str(tmp_path / "kong.yml")])
    assert code == 0
    check = subprocess.run(["haproxy", "-c", "-f", str(tmp_path / "haproxy.cfg")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    filled = yaml.safe_load((tmp_path / "kong.yml").read_text())
    secret = filled["consumers"][0]["jwt_secrets"][0]
    assert secret["key"] == ISSUER and secret["rsa_public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert "${" not in (tmp_path / "kong.yml").read_text()


def test_command_line_fails_clearly_without_issuer(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FIRECREST_ISSUER", raising=False)
    (tmp_path / "jwks.json").write_text('{"keys": []}')
    assert render.main(["--out", str(tmp_path / "x.cfg"), "--audience", "firecrest", "--site", str(SITE),
                        "--jwks", str(tmp_path / "jwks.json"), "--key-dir", str(tmp_path)]) == 1
    assert "--issuer" in capsys.readouterr().err


def test_kong_out_alone_needs_no_haproxy_paths(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk_of(key, kid="k", use="sig", alg="RS256")]}))
    common = ["--issuer", ISSUER, "--audience", "firecrest", "--site", str(SITE), "--jwks", str(tmp_path / "jwks.json")]
    out = ["--kong-out", str(tmp_path / "kong.yml"), "--upstream", "status=http://status:8000"]
    assert render.main([*common, *out]) == 0
    services = {s["name"]: s for s in yaml.safe_load((tmp_path / "kong.yml").read_text())["services"]}
    assert services["status"]["url"] == "http://status:8000"
    assert services["tasks"]["plugins"][-1]["config"]["status_code"] == 503  # not deployed, as in HAProxy
    assert (services["status"]["connect_timeout"], services["status"]["read_timeout"]) == (5000, 120000)
    assert render.main([*common, "--out", str(tmp_path / "h.cfg")]) == 1  # HAProxy's keys need a directory
    assert render.main(common) == 1


def test_haproxy_times_in_milliseconds():
    assert [milliseconds(v) for v in ("5s", "120s", "500", "2m", "250ms")] == [5000, 120000, 500, 120000, 250]
    with pytest.raises(render.RenderError, match="HAProxy time"):
        milliseconds("5 s")
