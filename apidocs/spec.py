"""What the documentation serves: the OpenAPI file with `servers` pointing at this site's gateway, and the page's
headers. docs/openapi.yaml itself is left as written: the copy served is changed in memory."""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import yaml

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "docs" / "openapi.yaml"
ASSETS = Path(__file__).resolve().parent / "assets"  # not "static": Flask would serve that at /static/
# Swagger UI's files, from the flask-swagger-ui package (no CDN); only those the page uses are served.
SWAGGER_DIST = Path(str(resources.files("flask_swagger_ui") / "dist"))
SWAGGER_FILES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-16x16.png", "favicon-32x32.png",
                           "oauth2-redirect.html", "oauth2-redirect.js"})
OWN_FILES = frozenset({"index.html", "init.js", "apidocs.css"})
# An origin, optionally with a path: it lands in a header (CSP) and in the spec, so nothing else is accepted.
PUBLIC_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$")


log = logging.getLogger("firecrest.apidocs")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Docs:
    spec_yaml: str  # the OpenAPI document as served
    paths: tuple[str, ...]
    csp: str  # Content-Security-Policy of every answer

    @classmethod
    def build(cls, spec_text: str, public_url: str) -> Docs:
        """`public_url`: the gateway's URL as browsers reach it ("" = the origin the page came from)."""
        spec = yaml.safe_load(spec_text)
        if not isinstance(spec, dict) or not isinstance(spec.get("paths"), dict):
            raise ConfigError("the OpenAPI document has no paths")
        server = served_url(public_url)
        spec["servers"] = [{"url": server, "description": "this site's gateway"}]
        return cls(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=120),
                   tuple(spec["paths"]), content_security_policy(server))


def served_url(public_url: str) -> str:
    """The `servers` URL: the gateway's public URL, or `/` (relative to the spec's own URL: the same gateway)."""
    if not public_url:
        return "/"
    if not PUBLIC_URL.match(public_url):
        raise ConfigError(f"FIRECREST_URL {public_url!r} is not an http(s) URL")
    return public_url.rstrip("/") or "/"


def content_security_policy(server: str) -> str:
    """Scripts, styles and images from this page's own origin only (no CDN can sneak in); "Try it out" may call
    the gateway. Swagger UI sets inline styles and uses data: images for its icons."""
    connect = "'self'"
    if server != "/":
        parts = urlsplit(server)
        connect += f" {parts.scheme}://{parts.netloc}"
    return (f"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            f"connect-src {connect}; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'")


def load_docs(public_url: str, spec: Path = SPEC) -> Docs:
    return Docs.build(spec.read_text(), public_url)


class SpecFile:
    """The served documents of `path`, built again when the file changes (an edited docs/openapi.yaml is served
    without a restart). A change that does not parse, or a file gone, keeps the last good one."""

    def __init__(self, path: Path, public_url: str) -> None:
        self.path, self.public_url = path, public_url
        self._lock = threading.Lock()
        self._stamp = self._stamp_now()
        self._docs = load_docs(public_url, path)  # a bad file or URL stops the service at start

    def _stamp_now(self) -> tuple[int, int]:
        info = self.path.stat()
        return info.st_mtime_ns, info.st_size

    def current(self) -> Docs:
        try:
            stamp = self._stamp_now()
        except OSError:  # moved away or being replaced: the last good one
            return self._docs
        with self._lock:
            if stamp != self._stamp:
                try:
                    self._docs = load_docs(self.public_url, self.path)
                except (ConfigError, yaml.YAMLError, OSError, UnicodeDecodeError) as e:
                    log.warning("%s changed but is not served: %s", self.path, e)
                self._stamp = stamp
            return self._docs


def asset(name: str) -> tuple[Path, str] | None:
    """The directory and file name of a served asset, or None: only listed names, never a path."""
    if name in OWN_FILES:
        return ASSETS, name
    if name in SWAGGER_FILES:
        return SWAGGER_DIST, name
    return None
