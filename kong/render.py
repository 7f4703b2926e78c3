#!/usr/bin/env python3
"""Render kong/kong.yml into the HAProxy 2.6 configuration of the embedded site.

    render.py --out haproxy.cfg --issuer URL --audience AUD --jwks FILE|URL --key-dir DIR --site SITE_FILE \
              [--config kong/kong.yml] [--bind 127.0.0.1] [--port 8000] [--upstream NAME=URL ...] [--kong-out FILE] \
              [--upstream-replicas N]

Upstreams come from `--upstream status=http://127.0.0.1:5101` or the environment (`FIRECREST_INTERNAL_STATUS_URL`);
a service without one is rendered as a backend answering 503 {"description":"Service not deployed"}. The realm's
RS256 signing keys (`use: sig` RSA keys of the JWKS) are written to `--key-dir` as PEM files that HAProxy loads at
start-up. `--kong-out` writes kong.yml for a real Kong (kong/kong_out.py): placeholders filled, the same upstreams;
`--out` may then be left out. `--site` is the site file the services read: its
`auth.applications` (the registered clients) and `auth.scopes` (the scope each service's requests need) are enforced
here too (kong/applications.py). `--upstream-replicas N` renders each upstream given by name as N server slots that
HAProxy keeps filled from DNS, so the replicas of a scaled Compose service all get requests.

What is rendered, in request order: client-sent X-Auth-* headers dropped; X-Request-ID kept if well-formed, else a
uuid; a per-source rate limit (before any RSA work); non-canonical paths refused (400); Kong's route selection;
CORS preflights (204) and request-termination routes answered; the JWT checked (alg pinned to RS256, signature
against each realm key, iss, aud, typ, exp, nbf) with 401 otherwise; X-Auth-Sub/X-Auth-Client set from the
verified token; the per-user limit (429 + Retry-After); the route's prefix stripped; the request forwarded.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if not __package__:  # run as `python kong/render.py` (deploy/local does): import `kong` from the repository
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import yaml

from kong.applications import from_site
from kong.errors import RenderError
from kong.haproxy import DEFAULT_TIMEOUTS, render
from kong.jwks import jwks_to_pems, read_jwks, write_keys
from kong.kong_out import for_kong
from kong.kong_yml import load
from kong.placeholders import fill

HERE = Path(__file__).resolve().parent


def upstreams_from(args: list[str], services: dict[str, str], environ: dict[str, str]) -> dict[str, str]:
    """NAME=URL arguments win over FIRECREST_INTERNAL_<NAME>_URL; unknown names are an error."""
    found = {n: environ[f"FIRECREST_INTERNAL_{n.upper().replace('-', '_')}_URL"] for n in services
             if environ.get(f"FIRECREST_INTERNAL_{n.upper().replace('-', '_')}_URL")}
    for item in args:
        name, sep, url = item.partition("=")
        if not sep or name not in services:
            raise RenderError(f"--upstream {item!r}: expected NAME=URL with NAME one of {', '.join(services)}")
        found[name] = url
    return found


def arguments(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, default=HERE / "kong.yml")
    p.add_argument("--out", type=Path, help="the HAProxy configuration to write")
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--issuer", default=os.environ.get("FIRECREST_ISSUER"))
    p.add_argument("--audience", default=os.environ.get("FIRECREST_AUDIENCE"))
    p.add_argument("--jwks", required=True, help="the realm's JWKS: a file or an http(s) URL")
    p.add_argument("--key-dir", type=Path, help="where the realm's signing keys go as PEM files (with --out)")
    p.add_argument("--site", type=Path, required=True, help="the site file: registered applications and scopes")
    p.add_argument("--upstream", action="append", default=[], metavar="NAME=URL")
    p.add_argument("--upstream-replicas", type=int, default=0, metavar="N",
                   help="upstreams given by name become N server slots filled from DNS (scaled Compose services)")
    p.add_argument("--kong-out", type=Path, help="write kong.yml for a real Kong: placeholders filled, upstreams set")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    try:
        if not args.issuer or not args.audience:
            raise RenderError("--issuer and --audience (or FIRECREST_ISSUER, FIRECREST_AUDIENCE) are required")
        if not args.out and not args.kong_out:
            raise RenderError("nothing to write: --out, --kong-out or both")
        if args.out and not args.key_dir:
            raise RenderError("--out needs --key-dir")
        pems = jwks_to_pems(read_jwks(args.jwks))
        if not pems:
            raise RenderError(f"{args.jwks}: no RSA signing key for RS256")
        apps = from_site(args.site)
        values = {"FIRECREST_ISSUER": args.issuer, "FIRECREST_AUDIENCE": args.audience,
                  "FIRECREST_REALM_PUBLIC_KEY": next(iter(pems.values())), **apps.placeholders()}
        config = fill(yaml.safe_load(args.config.read_text()), values)
        gw = load(config)  # also for --kong-out alone: Kong gets nothing the HAProxy rendering would refuse
        gw.applications = apps
        upstreams = upstreams_from(args.upstream, gw.services, dict(os.environ))
        text = (render(gw, args.bind, args.port, upstreams, write_keys(pems, args.key_dir), args.upstream_replicas)
                if args.out else "")
        kong_config = for_kong(config, upstreams, {**DEFAULT_TIMEOUTS, **gw.timeouts})
        kong = yaml.safe_dump(kong_config, sort_keys=False) if args.kong_out else ""
    except (RenderError, OSError, KeyError, ValueError, yaml.YAMLError) as e:
        print(f"render.py: {e}", file=sys.stderr)
        return 1
    for path, content in ((args.out, text), (args.kong_out, kong)):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    return 0

if __name__ == "__main__":
    sys.exit(main())
