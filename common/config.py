"""The site configuration: one YAML file plus a few environment variables, loaded once into typed objects.

Each service process loads it once (`load`, from `create_app`) and hands it to what needs it."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

VERSION = "0.1.0"
# The FirecREST v1 API level this gateway implements; pyfirecrest gates features on it (PEP 440, >= 1.16.0).
API_VERSION = "1.16.0"
SERVICE_NAMES = ("certificator", "status", "utilities", "compute", "storage", "tasks")


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class Filesystem:
    path: str
    description: str


@dataclass(frozen=True)
class System:
    name: str
    description: str
    host: str
    port: int
    host_key: str  # "<type> <base64>" as in a .pub file
    filesystems: tuple[Filesystem, ...]
    partitions: tuple[str, ...]
    # Uploaded batch scripts go to <compute_base_fs>/<user>/firecrest/<task id>/ (the job runs there).
    compute_base_fs: str = "/home"
    xfer_partition: str = "xfer"  # storage's transfer jobs
    # The user CA that signs this system's certificates (its login node trusts it alone); empty: the site's
    # `certificates.ca_key`. Only the certificator's account can read it.
    ca_key: str = ""


@dataclass(frozen=True)
class StorageConfig:
    """The staging object store (Swift with tempauth, tempurl, formpost and SLO)."""

    auth_url: str = ""
    public_url: str = ""  # Swift as the users' machines reach it (their temp URLs)
    internal_url: str = ""  # Swift as the cluster's transfer jobs reach it
    # The account's URL, where Swift's answer to auth names one this process cannot reach (a proxy known by
    # another name here); empty: the one auth returns.
    account_url: str = ""
    temp_url_ttl_s: int = 604800  # how long a staged object and its URLs live (the contract's 7 days)
    segment_size_mb: int = 128  # larger files travel as segments (a static large object in Swift)
    max_transfers_per_user: int = 8  # external transfers in flight at once (waiting uploads included)
    user: str = field(default="", repr=False)  # from the environment
    key: str = field(default="", repr=False)


@dataclass(frozen=True)
class AuthConfig:
    issuer: str
    audience: str
    username_claim: str
    algorithms: tuple[str, ...]
    # Registered applications (a token's `azp`); None: a site file without the list (unit tests, smoke checks).
    applications: frozenset[str] | None = None
    scopes: dict[str, dict[str, str]] = field(default_factory=dict)  # service -> read/change -> scope

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"


@dataclass(frozen=True)
class Limits:
    max_file_size_mb: int = 5
    command_timeout_s: int = 5
    sync_commands_per_user: int = 8  # per service process (common/ssh.py UserSlots); 0: no bound


@dataclass(frozen=True)
class SSHConfig:
    connect_timeout_s: float = 5
    idle_close_s: float = 60
    max_age_s: float = 600
    max_channels_per_connection: int = 32


@dataclass(frozen=True)
class Site:
    systems: dict[str, System]
    auth: AuthConfig
    limits: Limits
    ssh: SSHConfig
    certificate_validity_minutes: int
    # A task's background work may get certificates with a token that expired at most this long ago.
    resume_window_s: int
    # Secrets and URLs come from the environment, never from the site file.
    service_token: str = field(repr=False)
    service_urls: dict[str, str]
    storage: StorageConfig = field(default_factory=StorageConfig)
    # Who may get a certificate (`users`, `group`, `min_uid`, `max_uid`): read by certificator/principals.py.
    certificate_principals: dict[str, Any] = field(default_factory=dict)
    ca_key: str = ""  # the certificator's signing key (only its account can read it)
    redis_url: str = field(default="", repr=False)  # the task store (the tasks service's; it holds a password)

    @property
    def default_system(self) -> str:
        return next(iter(self.systems))

    def ca_key_of(self, system: str) -> str:
        """The user CA that signs certificates for `system`."""
        return self.systems[system].ca_key or self.ca_key


def _expand(node: Any, env: dict[str, str]) -> Any:
    """Replace `${VAR}` in every string value of the parsed file (comments are never touched)."""
    if isinstance(node, dict):
        return {k: _expand(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, env) for v in node]
    if not isinstance(node, str):
        return node

    def value(m: re.Match[str]) -> str:
        if m.group(2) is not None:  # `${VAR:-default}`: a value only some services get (a secret)
            return env.get(m.group(1)) or m.group(2)
        if m.group(1) not in env:
            raise ConfigError(f"the site file needs the environment variable {m.group(1)}")
        return env[m.group(1)]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}", value, node)


def _system(raw: dict) -> System:
    login = raw["login"]
    key_file = login.get("host_key_file")
    host_key = Path(key_file).read_text() if key_file else login["host_key"]
    return System(
        name=raw["name"],
        description=raw.get("description", ""),
        host=login["host"],
        port=int(login.get("port", 22)),
        host_key=" ".join(host_key.split()[:2]),
        filesystems=tuple(Filesystem(f["path"], f.get("description", "")) for f in raw.get("filesystems", [])),
        partitions=tuple(raw.get("partitions", [])),
        compute_base_fs=raw.get("compute_base_fs", "/home").rstrip("/") or "/",
        xfer_partition=raw.get("xfer_partition", "xfer"),
        ca_key=str(raw.get("ca_key", "")),
    )


def _storage(raw: dict, env: dict[str, str]) -> StorageConfig:
    return StorageConfig(**raw.get("storage", {}), user=env.get("SWIFT_USER", ""), key=env.get("SWIFT_KEY", ""))


def parse_storage(text: str, env: dict[str, str]) -> StorageConfig:
    """The site file's object store alone: for tools that look at what is staged, from where the site's other
    files (the login node's host key) are not."""
    return _storage(_expand(yaml.safe_load(text), env), env)


def parse(text: str, env: dict[str, str]) -> Site:
    raw = _expand(yaml.safe_load(text), env)
    auth = raw["auth"]
    return Site(
        systems={s.name: s for s in map(_system, raw["systems"])},
        auth=AuthConfig(
            issuer=auth["issuer"].rstrip("/"),
            audience=auth["audience"],
            username_claim=auth.get("username_claim", "preferred_username"),
            algorithms=tuple(auth.get("algorithms", ["RS256"])),
            applications=frozenset(auth["applications"]) if "applications" in auth else None,
            scopes={service: dict(kinds) for service, kinds in (auth.get("scopes") or {}).items()},
        ),
        limits=Limits(**raw.get("limits", {})),
        ssh=SSHConfig(**raw.get("ssh", {})),
        certificate_validity_minutes=int(raw.get("certificates", {}).get("validity_minutes", 5)),
        resume_window_s=int(raw.get("certificates", {}).get("resume_window_s", 604800)),
        service_token=env.get("FIRECREST_SERVICE_TOKEN", ""),
        service_urls={
            name: env[f"FIRECREST_INTERNAL_{name.upper()}_URL"].rstrip("/")
            for name in SERVICE_NAMES
            if env.get(f"FIRECREST_INTERNAL_{name.upper()}_URL")
        },
        storage=_storage(raw, env),
        certificate_principals=dict(raw.get("certificates", {})),
        ca_key=str(raw.get("certificates", {}).get("ca_key", "")),
        redis_url=str(raw.get("tasks", {}).get("redis_url", "")),
    )


def load(path: str | Path | None = None, env: dict[str, str] | None = None) -> Site:
    """The site from `path` (default: FIRECREST_SITE_FILE, else the local site) with `env` (default: the process's
    environment)."""
    env = dict(os.environ) if env is None else env
    default = Path(__file__).resolve().parents[1] / "deploy/local/site.yaml"
    path = Path(path or env.get("FIRECREST_SITE_FILE") or default)
    try:
        return parse(path.read_text(), env)
    except (OSError, KeyError, TypeError, ConfigError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot load the site file {path}: {e!r}") from e
