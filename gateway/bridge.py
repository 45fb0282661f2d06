"""Fill deploy/mosquitto/bridge.conf: this site's alerts and state bridged to a central broker."""

from __future__ import annotations

import re
from pathlib import Path
from string import Template
from typing import Final

from gateway.config import GatewayConfig
from gateway.errors import ConfigError

TEMPLATE_PATH: Final = Path(__file__).resolve().parent.parent / "deploy/mosquitto/bridge.conf"
_ADDRESS = re.compile(r"^[A-Za-z0-9_.\-\[\]:]+:[0-9]{1,5}$")


def render_bridge(
    cfg: GatewayConfig,
    central_address: str,
    central_username: str,
    central_password: str,
    restart_min_s: int = 5,
    restart_max_s: int = 60,
    template: str | None = None,
) -> str:
    """The bridge section of mosquitto.conf for this gateway's site.

    `central_address` is `host:port` (several, comma or space separated, for failover).
    Raises ConfigError for a value Mosquitto would misread (a space ends an option early).
    """
    addresses = central_address.replace(",", " ").split()
    if not addresses:
        raise ConfigError("central broker address is empty: expected host:port")
    for addr in addresses:
        if not _ADDRESS.match(addr):
            raise ConfigError(f"central broker address {addr!r}: expected host:port")
    for name, value in (("username", central_username), ("password", central_password)):
        if not value or any(c.isspace() for c in value):
            raise ConfigError(f"central broker {name} must be non-empty without spaces")
    if not 1 <= restart_min_s <= restart_max_s:
        raise ConfigError(
            f"bridge restart delays {restart_min_s}..{restart_max_s} s: need 1 <= min <= max"
        )
    text = TEMPLATE_PATH.read_text(encoding="utf-8") if template is None else template
    return Template(text).substitute(
        ROOT=cfg.mqtt.root,
        SITE=cfg.gateway.site,
        GATEWAY_ID=cfg.gateway.id,
        CENTRAL_ADDRESS=" ".join(addresses),
        CENTRAL_USERNAME=central_username,
        CENTRAL_PASSWORD=central_password,
        RESTART_MIN_S=str(restart_min_s),
        RESTART_MAX_S=str(restart_max_s),
    )
