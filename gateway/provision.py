"""Broker security from the site model: Mosquitto password file, ACL file and listeners.

Every device the site model lists gets its own account `{building}.{kind}.{device}` (ids
are `[A-Za-z0-9_-]`, so the dots cannot be ambiguous) with an explicit `user` block: it may
publish only its own inbound channels and read only its own `cmd`/`config`. Mosquitto's
`pattern` rules with `%u` cannot express this because 2.x refuses usernames containing
`/` in patterns and device ids are unique per building, not per site. Fire teams read
`alerts/fire/#` and publish incident actions; the gateway reads its whole site and publishes
commands, alerts, state and its own status. Passwords already in the credentials file are
kept, so re-running after adding a device does not lock out the installed ones.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import os
import secrets
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from gateway.config import GatewayConfig, load_config
from gateway.errors import ConfigError, GatewayError
from gateway.site import SiteIndex

Access = Literal["read", "write", "readwrite"]

# What each kind of device publishes (contract: device → gateway channels).
_SENSOR_CHANNELS: Final = ("telemetry", "event", "status", "ack")
DEVICE_CHANNELS: Final[dict[str, tuple[str, ...]]] = {
    "smoke": _SENSOR_CHANNELS,
    "heat": _SENSOR_CHANNELS,
    "callpoint": _SENSOR_CHANNELS,
    "access": _SENSOR_CHANNELS,  # card readers and door controllers: swipes, door events
    "camera": (*_SENSOR_CHANNELS, "frame"),
    "screen": ("status", "ack"),  # output devices: they only answer commands
    "voice": ("status", "ack"),
}
DEVICE_READS: Final = ("cmd", "config")
# Mosquitto 2.x PBKDF2-SHA512 (`$7$`): the same iterations and sizes `mosquitto_passwd` uses.
PBKDF2_ITERATIONS: Final = 101
_SALT_BYTES: Final = 12
_HASH_BYTES: Final = 64
DEFAULT_PASSWORD_LEN: Final = 24
CREDENTIALS_FILE: Final = "credentials.csv"
DEFAULT_CAFILE: Final = "/etc/mosquitto/certs/ca.crt"
DEFAULT_CERTFILE: Final = "/etc/mosquitto/certs/server.crt"
DEFAULT_KEYFILE: Final = "/etc/mosquitto/certs/server.key"


@dataclass(frozen=True, slots=True)
class Rule:
    """One ACL line: `topic {access} {topic}`."""

    access: Access
    topic: str


@dataclass(frozen=True, slots=True)
class Account:
    """A broker account: username, its role and exactly what it may touch."""

    username: str
    role: str  # gateway, device, fire_team, operator
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class TlsListener:
    """Where the TLS listener binds and which certificate files it serves."""

    port: int = 8883
    bind: str = ""  # empty: every interface
    cafile: str = DEFAULT_CAFILE
    certfile: str = DEFAULT_CERTFILE
    keyfile: str = DEFAULT_KEYFILE


def device_username(building: str, kind: str, device: str) -> str:
    """The broker account of one device."""
    return f"{building}.{kind}.{device}"


def fire_team_username(team: str) -> str:
    """The broker account of one fire team's app."""
    return f"fireteam.{team}"


def accounts(cfg: GatewayConfig, operator: str | None = "operator") -> list[Account]:
    """Every account the site needs, with its ACL rules (gateway first, then sorted)."""
    base = f"{cfg.mqtt.root}/{cfg.gateway.site}"
    gateway_rules = (
        Rule("read", f"{base}/#"),
        Rule("write", f"{base}/+/+/+/cmd"),
        Rule("write", f"{base}/+/+/+/config"),
        Rule("write", f"{base}/alerts/#"),
        Rule("write", f"{base}/state/#"),
        Rule("write", f"{base}/gateway/status"),
    )
    out = [Account(cfg.mqtt.username or "gateway", "gateway", gateway_rules)]
    if operator:
        # The property manager's console: watch alerts and state, act on fire incidents.
        out.append(
            Account(
                operator,
                "operator",
                (
                    Rule("read", f"{base}/alerts/#"),
                    Rule("read", f"{base}/state/#"),
                    Rule("read", f"{base}/gateway/status"),
                    Rule("write", f"{base}/alerts/fire/+/action"),
                ),
            )
        )
    for team in sorted(cfg.site.fire_teams, key=lambda t: t.id):
        out.append(
            Account(
                fire_team_username(team.id),
                "fire_team",
                (
                    Rule("read", f"{base}/alerts/fire/#"),
                    Rule("write", f"{base}/alerts/fire/+/action"),
                ),
            )
        )
    for building, kind, device in sorted(SiteIndex(cfg.site).places):
        prefix = f"{base}/{building}/{kind}/{device}"
        rules = [Rule("write", f"{prefix}/{ch}") for ch in DEVICE_CHANNELS[kind]]
        rules += [Rule("read", f"{prefix}/{ch}") for ch in DEVICE_READS]
        out.append(Account(device_username(building, kind, device), "device", tuple(rules)))
    _require_unique_usernames(out)
    return out


def _require_unique_usernames(items: Sequence[Account]) -> None:
    seen: set[str] = set()
    for acc in items:
        if acc.username in seen:
            raise ConfigError(f"broker username {acc.username!r} would be used twice")
        if not acc.username or any(c in acc.username for c in ":/+# \t\n"):
            raise ConfigError(
                f"broker username {acc.username!r} must not contain : / + # or spaces"
            )
        seen.add(acc.username)


def render_acl(items: Iterable[Account]) -> str:
    """The Mosquitto ACL file: one `user` block per account; anything unlisted is denied."""
    lines = ["# Generated by `community-gateway provision`: do not edit, re-run it.", ""]
    for acc in items:
        lines.append(f"# {acc.role}")
        lines.append(f"user {acc.username}")
        lines += [f"topic {r.access} {r.topic}" for r in acc.rules]
        lines.append("")
    return "\n".join(lines)


def hash_password(password: str, salt: bytes | None = None) -> str:
    """Mosquitto's `$7$` PBKDF2-SHA512 hash of `password`, as `mosquitto_passwd` writes it."""
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS, _HASH_BYTES)
    b64 = base64.b64encode
    return f"$7${PBKDF2_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def render_passwd(passwords: dict[str, str]) -> str:
    """The Mosquitto password file for `{username: plain password}`."""
    return "".join(f"{user}:{hash_password(pw)}\n" for user, pw in passwords.items())


def assign_passwords(
    items: Sequence[Account], previous: dict[str, str], length: int = DEFAULT_PASSWORD_LEN
) -> dict[str, str]:
    """A password per account: the previous one when known, else a fresh random one."""
    if length < 12:
        raise ConfigError(f"--password-len {length}: use at least 12 characters")
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"  # no 0/O, 1/l/I
    return {
        acc.username: previous.get(acc.username)
        or "".join(secrets.choice(alphabet) for _ in range(length))
        for acc in items
    }


def render_credentials(
    items: Sequence[Account], passwords: dict[str, str], cfg: GatewayConfig
) -> str:
    """CSV for the installer: username, password, role and the topic prefix it lives under."""
    base = f"{cfg.mqtt.root}/{cfg.gateway.site}"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["username", "password", "role", "topic_prefix"])
    for acc in items:
        prefix = base
        if acc.role == "device":
            prefix = f"{base}/{acc.username.replace('.', '/')}"
        writer.writerow([acc.username, passwords[acc.username], acc.role, prefix])
    return buf.getvalue()


def read_credentials(path: Path) -> dict[str, str]:
    """`{username: password}` from an earlier run's credentials file; empty when absent."""
    if not path.exists():
        return {}
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return {row["username"]: row["password"] for row in csv.DictReader(f)}
    except (OSError, KeyError, csv.Error) as exc:
        raise ConfigError(f"{path}: cannot read earlier credentials: {exc}") from exc


def render_mosquitto_conf(
    passwd_path: str,
    acl_path: str,
    tls: TlsListener | None = TlsListener(),
    local_port: int | None = 1883,
) -> str:
    """Listener and security part of mosquitto.conf (pair with deploy/mosquitto/gateway.conf).

    The TLS listener serves devices and apps; the optional plain listener on loopback
    serves the gateway on the same machine. Both use the same accounts and ACL.
    """
    lines = [
        "# Generated by `community-gateway provision`.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {passwd_path}",
        f"acl_file {acl_path}",
        "",
    ]
    if tls is not None:
        lines += [
            f"listener {tls.port} {tls.bind}".rstrip(),
            f"cafile {tls.cafile}",
            f"certfile {tls.certfile}",
            f"keyfile {tls.keyfile}",
            "tls_version tlsv1.2",
            "",
        ]
    if local_port:
        lines += [
            "# plain MQTT for the gateway on this machine only",
            f"listener {local_port} 127.0.0.1",
            "",
        ]
    if tls is None and not local_port:
        raise ConfigError("provision: at least one listener (TLS or local) is needed")
    return "\n".join(lines)


def _write_private(path: Path, text: str) -> None:
    """Write a secret file that only its owner can read, never world-readable for a moment."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)


def provision(
    cfg: GatewayConfig,
    out: Path,
    password_len: int = DEFAULT_PASSWORD_LEN,
    tls: TlsListener | None = TlsListener(),
    local_port: int | None = 1883,
    install_dir: str | None = None,
) -> dict[str, Path]:
    """Write passwd, acl, mosquitto.conf, credentials.csv and gateway.password into `out`.

    `install_dir` is where passwd and acl will live on the broker host (default: `out`).
    Returns the written files by name.
    """
    out.mkdir(parents=True, exist_ok=True)
    items = accounts(cfg)
    passwords = assign_passwords(items, read_credentials(out / CREDENTIALS_FILE), password_len)
    where = install_dir or str(out.resolve())
    files = {
        "passwd": out / "passwd",
        "acl": out / "acl",
        "mosquitto.conf": out / "mosquitto.conf",
        "credentials": out / CREDENTIALS_FILE,
        "gateway.password": out / "gateway.password",
    }
    _write_private(files["passwd"], render_passwd(passwords))
    files["acl"].write_text(render_acl(items), encoding="utf-8")
    files["mosquitto.conf"].write_text(
        render_mosquitto_conf(f"{where}/passwd", f"{where}/acl", tls, local_port), encoding="utf-8"
    )
    _write_private(files["credentials"], render_credentials(items, passwords, cfg))
    _write_private(files["gateway.password"], passwords[items[0].username] + "\n")
    return files


def build_parser() -> argparse.ArgumentParser:
    """Arguments of `community-gateway provision`."""
    p = argparse.ArgumentParser(
        prog="community-gateway provision",
        description="generate Mosquitto accounts, ACL and listeners from the site model",
    )
    p.add_argument("--config", "-c", type=Path, required=True, help="site config TOML file")
    p.add_argument("--out", type=Path, required=True, help="folder for the generated files")
    p.add_argument("--password-len", type=int, default=DEFAULT_PASSWORD_LEN)
    p.add_argument("--install-dir", help="where passwd and acl live on the broker (default: --out)")
    p.add_argument("--tls-port", type=int, default=8883, help="TLS listener port (0: none)")
    p.add_argument("--tls-bind", default="", help="TLS listener address (default: all)")
    p.add_argument("--cafile", default=DEFAULT_CAFILE)
    p.add_argument("--certfile", default=DEFAULT_CERTFILE)
    p.add_argument("--keyfile", default=DEFAULT_KEYFILE)
    p.add_argument("--local-port", type=int, default=1883, help="loopback plain port (0: none)")
    return p


def main(argv: list[str] | None = None) -> int:
    """`community-gateway provision ...`; returns the exit code."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    tls = None
    if args.tls_port:
        tls = TlsListener(args.tls_port, args.tls_bind, args.cafile, args.certfile, args.keyfile)
    try:
        cfg = load_config(args.config)
        files = provision(
            cfg, args.out, args.password_len, tls, args.local_port or None, args.install_dir
        )
    except GatewayError as exc:
        print(f"community-gateway provision: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"community-gateway provision: cannot write to {args.out}: {exc}", file=sys.stderr)
        return 2
    n = sum(1 for line in files["passwd"].read_text().splitlines() if line)
    print(f"{n} broker accounts written to {args.out}:")
    for name, path in files.items():
        print(f"  {name:17} {path} ({path.stat().st_size} bytes)")
    print(f"keep {files['credentials']} secret: it holds the plain passwords (mode 0600)")
    return 0
