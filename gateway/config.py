"""Site config: one TOML file per site, validated at start, errors that name key and line."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.errors import ConfigError
from gateway.fire.texts import (
    DEFAULT_TEXT_DRILL,
    DEFAULT_TEXT_FIRE,
    DEFAULT_TEXT_PREALARM,
    template_problem,
)
from gateway.headcount.settings import HeadcountSettings
from gateway.protocols.gb26875.mapping import PanelSettings
from gateway.site import Name, SiteModel
from gateway.vision.settings import VisionSettings

DEFAULT_PROFILES_DIR = Path(__file__).resolve().parent.parent / "firmware_configs"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewaySection(_Section):
    """`[gateway]`: who this gateway is."""

    id: Name
    site: Name
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    profiles_dir: Path = DEFAULT_PROFILES_DIR


class MqttSection(_Section):
    """`[mqtt]`: the broker the devices talk to."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password_file: Path | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_id: str | None = None
    root: Name = "community"
    protocol: Literal["3.1.1", "5"] = "5"
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    session_expiry_s: int = Field(default=7 * 86400, ge=0)
    receive_maximum: int = Field(default=5000, ge=1, le=65535)
    reconnect_min_s: float = Field(default=0.2, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)


class InfluxSection(_Section):
    """`[influx]`: where points go; `api = "none"` keeps history in the spool only."""

    url: str = "http://127.0.0.1:8086"
    api: Literal["v1", "v2", "none"] = "none"
    database: str = "community"
    retention_policy: str | None = None
    username: str | None = None
    password_file: Path | None = None
    org: str = "community"
    bucket: str = "community"
    token_file: Path | None = None
    batch_lines: int = Field(default=5000, ge=1, le=100_000)
    timeout_s: float = Field(default=10.0, gt=0)
    backoff_min_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)


class SpoolSection(_Section):
    """`[spool]`: the SQLite store-and-forward file."""

    path: Path = Path("var/spool.db")
    max_bytes: int = Field(default=2 * 1024**3, ge=1024 * 1024)
    max_age_h: float = Field(default=24 * 7, gt=0)
    synchronous: Literal["full", "normal"] = "full"
    history_days: float = Field(
        default=35.0,
        ge=0,
        le=3660,
        description="days forwarded report points stay in the spool's history (0: none)",
    )


class IngestSection(_Section):
    """`[ingest]`: micro-batching of the bulk lane."""

    batch_max_ms: int = Field(default=20, ge=1, le=1000)
    batch_max_msgs: int = Field(default=2000, ge=1, le=100_000)
    max_payload_bytes: int = Field(default=256 * 1024, ge=1024)
    device_rate_per_s: float = Field(
        default=20.0, gt=0, description="sustained messages/s one device may send (alarms exempt)"
    )
    device_burst: float = Field(
        default=200.0, ge=1, description="messages one device may send at once before limiting"
    )


class ApiSection(_Section):
    """`[api]`: the HTTP API and dashboard."""

    enabled: bool = True
    bind: str = "127.0.0.1:8080"
    tokens_file: Path | None = Field(
        default=None,
        description="bearer tokens (`role name sha256`); unset: loopback only, no auth",
    )
    auth_max_failures: int = Field(
        default=10, ge=1, le=10_000, description="bad tokens per window before a client is blocked"
    )
    auth_window_s: float = Field(default=60.0, gt=0, le=86_400)
    auth_block_s: float = Field(default=300.0, gt=0, le=86_400)

    @field_validator("bind")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"bind {value!r} must be HOST:PORT, e.g. 127.0.0.1:8080")
        return value

    def host_port(self) -> tuple[str, int]:
        """The bind address split into host and port."""
        host, _, port = self.bind.rpartition(":")
        return host.strip("[]"), int(port)


class FireSection(_Section):
    """`[fire]`: confirmation, linkage and escalation of the fire response (docs/fire.md).

    Times are seconds; texts are templates with `{building}`, `{floor}` and `{zone}`.
    """

    confirm_window_s: float = Field(default=120, gt=0)
    verify_s: float = Field(default=180, gt=0)
    ack_s: float = Field(default=60, gt=0)
    arrive_s: float = Field(default=180, gt=0)
    deadline_s: float = Field(default=300, gt=0)
    camera_confidence: float = Field(default=0.6, ge=0, le=1)
    team_seen_confidence: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="a camera's `team_seen` at or above this reports the team on scene",
    )
    prealarm_notify_screens: bool = Field(
        default=False, description="pre-alarms also reach the building's screens and voice"
    )
    release_scope: Literal["zone", "building"] = Field(
        default="zone", description='"zone": its own egress doors; "building": every zone\'s'
    )
    gate_screens_on_fire: bool = Field(
        default=True, description="confirmed fires also show on the site's gate screens"
    )
    drill_release_doors: bool = Field(default=False, description="drills release doors too")
    command_retry_s: float = Field(
        default=5, gt=0, description="an unacknowledged command is sent again after this"
    )
    command_max_retries: int = Field(
        default=3, ge=0, le=100, description="then it is given up and reported as trouble"
    )
    door_confirm_s: float = Field(
        default=5, gt=0, description="a door not confirmed released by then: trouble, re-command"
    )
    screen_ttl_s: float = Field(
        default=600, ge=10, description="screen text lifetime; refreshed while the fire lasts"
    )
    voice_ttl_s: float = Field(
        default=120, ge=10, description="the voice message is repeated this often during a fire"
    )
    voice_repeat: int = Field(default=2, ge=1, le=10, description="repeats per voice message")
    text_fire: str = DEFAULT_TEXT_FIRE
    text_drill: str = DEFAULT_TEXT_DRILL
    text_prealarm: str = DEFAULT_TEXT_PREALARM

    @field_validator("text_fire", "text_drill", "text_prealarm")
    @classmethod
    def _broadcast_text(cls, value: str) -> str:
        problem = template_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class GatewayConfig(_Section):
    """The whole validated config of one gateway."""

    gateway: GatewaySection
    mqtt: MqttSection = MqttSection()
    influx: InfluxSection = InfluxSection()
    spool: SpoolSection = SpoolSection()
    ingest: IngestSection = IngestSection()
    api: ApiSection = ApiSection()
    fire: FireSection = FireSection()
    headcount: HeadcountSettings = HeadcountSettings()
    vision: VisionSettings = VisionSettings()
    panels: PanelSettings = PanelSettings()
    site: SiteModel = SiteModel()
    source: str = "<memory>"

    @model_validator(mode="after")
    def _panels_fit_the_site(self) -> GatewayConfig:
        problems = self.panels.site_problems(self.site)
        if problems:
            raise ValueError("panels: " + "; ".join(problems))
        return self

    @property
    def client_id(self) -> str:
        """The MQTT client id: fixed per gateway so the broker keeps its session."""
        return self.mqtt.client_id or f"community-gateway-{self.gateway.id}"

    def card_salt(self) -> bytes:
        """The per-site salt for card-number hashes."""
        if self.site.card_salt_file:
            return Path(self.site.card_salt_file).read_bytes().strip()
        return self.site.card_salt.encode()

    def read_secret(self, path: Path | None) -> str | None:
        """Contents of a secret file named in the config, stripped; None when unset."""
        if path is None:
            return None
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{self.source}: cannot read secret file {path}: {exc}") from exc


_PATH_KEYS = (
    ("mqtt", "password_file"),
    ("mqtt", "tls_ca"),
    ("mqtt", "tls_cert"),
    ("mqtt", "tls_key"),
    ("influx", "password_file"),
    ("influx", "token_file"),
    ("spool", "path"),
    ("gateway", "profiles_dir"),
    ("site", "card_salt_file"),
    ("api", "tokens_file"),
)


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> GatewayConfig:
    """Read, override and validate a site config file.

    Relative paths inside the file are resolved against the file's folder.
    Raises ConfigError with `file:line: key: problem` for every problem found.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: config is not UTF-8 ({exc.reason} at byte {exc.start})"
        ) from exc
    return parse_config(text, str(path), overrides, base_dir=path.resolve().parent)


def parse_config(
    text: str,
    source: str = "<memory>",
    overrides: list[str] | tuple[str, ...] = (),
    base_dir: Path | None = None,
) -> GatewayConfig:
    """Validate config text; see `load_config`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    overridden: set[tuple[str, ...]] = set()
    for item in overrides:
        key_path = apply_override(data, item)
        overridden.add(key_path)
    if base_dir is not None:
        _resolve_paths(data, base_dir)
    data["source"] = source
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        lines = _key_lines(text)
        problems = []
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            where = _where(source, loc, lines, overridden)
            key = ".".join(loc) or "(top level)"
            problems.append(f"{where}: {key}: {err['msg']}")
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems)) from None


def apply_override(data: dict[str, Any], item: str) -> tuple[str, ...]:
    """Apply one `--set section.key=value`; the value is read as TOML, else as a string."""
    key, sep, raw = item.partition("=")
    parts = tuple(p.strip() for p in key.split("."))
    if not sep or len(parts) < 2 or not all(parts):
        raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. mqtt.port=21883")
    try:
        value: Any = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {item!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value
    return parts


def _resolve_paths(data: dict[str, Any], base_dir: Path) -> None:
    for section, key in _PATH_KEYS:
        sec = data.get(section)
        if isinstance(sec, dict) and isinstance(sec.get(key), str):
            p = Path(sec[key]).expanduser()
            sec[key] = str(p if p.is_absolute() else base_dir / p)


def _where(
    source: str,
    loc: tuple[str, ...],
    lines: dict[tuple[str, ...], int],
    overridden: set[tuple[str, ...]],
) -> str:
    for n in range(len(loc), 0, -1):
        if loc[:n] in overridden:
            return f"--set {'.'.join(loc[:n])}"
        if loc[:n] in lines:
            return f"{source}:{lines[loc[:n]]}"
    return source


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Map each table and key path (array-of-table indices included) to its line number."""
    found: dict[tuple[str, ...], int] = {}
    counters: dict[tuple[str, ...], int] = {}
    current: tuple[str, ...] = ()
    for lineno, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            names = tuple(n.strip().strip('"') for n in header.group(2).split("."))
            path = _instance_path(names, found, counters)
            if header.group(1) == "[[":
                counters[path] = counters.get(path, -1) + 1
                path = (*path, str(counters[path]))
            current = path
            found.setdefault(current, lineno)
            continue
        key = _KEY.match(line)
        if key:
            found.setdefault((*current, key.group(1)), lineno)
    return found


def _instance_path(
    names: tuple[str, ...],
    found: dict[tuple[str, ...], int],
    counters: dict[tuple[str, ...], int],
) -> tuple[str, ...]:
    """Insert the latest array indices of enclosing arrays of tables into a header path."""
    path: tuple[str, ...] = ()
    for i, name in enumerate(names):
        path = (*path, name)
        if i < len(names) - 1 and path in counters:
            path = (*path, str(counters[path]))
    return path
