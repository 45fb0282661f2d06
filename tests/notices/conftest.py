"""A real gateway (child process, tokens file); its screens and voice terminals are MQTT clients."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.api.auth import Role, new_token
from tests.api.conftest import SecuredGateway, TokenGatewayProcess
from tests.fire_e2e.devices import Terminal
from tests.servers import MosquittoServer, free_port

SITE = "notices-e2e"  # a site of its own: no other test's gateway hears these topics
PREFIX = f"community/{SITE}"
RETRY_S, MAX_RETRIES = 0.5, 2

SITE_TOML = """
[gateway]
id = "gw-notices"
site = "{site}"

[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
client_id = "gw-notices-e2e"

[influx]
api = "none"

[spool]
path = "{spool}"

[api]
bind = "127.0.0.1:{api_port}"
tokens_file = "{tokens}"

[fire]
command_retry_s = {retry_s}
command_max_retries = {max_retries}

[site]
name = "通知测试"
card_salt = "test-salt"
gate_screens = ["SCR-gate-1"]

# b1: a fire breaks out here. b2: notices and acks. b3: a screen that never answers.
[[site.buildings]]
id = "b1"
name = "1栋"
screens = ["SCR-b1"]
voice = ["VT-b1"]
  [[site.buildings.zones]]
  id = "b1-f1"
  floor = 1
  smoke = ["SD-b1-1"]
  callpoints = ["CP-b1-1"]

[[site.buildings]]
id = "b2"
name = "2栋"
screens = ["SCR-b2"]
voice = ["VT-b2"]

[[site.buildings]]
id = "b3"
screens = ["SCR-b3"]

[[site.fire_teams]]
id = "mfs-1"
"""


@dataclass
class NoticeSite:
    """The running gateway, its tokens, and a simulated terminal per screen and voice id."""

    gw: SecuredGateway
    port: int
    terminals: dict[str, Terminal] = field(default_factory=dict)

    def terminal(self, building: str, kind: str, device: str, ack: bool = True) -> Terminal:
        """The simulated terminal `building/kind/device` (connected on first use)."""
        key = f"{building}/{kind}/{device}"
        if key not in self.terminals:
            self.terminals[key] = Terminal(self.port, PREFIX, building, kind, device, ack=ack)
        return self.terminals[key]

    def notice_commands(self, key: str, notice: str | None = None) -> list[dict[str, Any]]:
        """Notice commands the terminal received (of one notice), in order."""
        return [
            c
            for c in self.terminals[key].commands()
            if c.get("notice", "") and notice in (None, c["notice"])
        ]


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer
) -> Iterator[NoticeSite]:
    """One gateway per module, its terminals connected before it starts."""
    tmp = tmp_path_factory.mktemp("notices")
    tokens: dict[Role, str] = {}
    lines = []
    for role in Role:
        token, line = new_token(role.value, f"{role.value}-1")
        tokens[role] = token
        lines.append(line)
    tokens_file = tmp / "tokens.txt"
    tokens_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    api_port = free_port()
    config = _write(tmp, mosquitto.port, api_port, tokens_file)
    proc = TokenGatewayProcess(config, api_port, tmp / "gateway.log")
    proc.admin_token = tokens[Role.ADMIN]
    out = NoticeSite(SecuredGateway(proc, tokens), mosquitto.port)
    for building, kind, device in [("b1", "screen", "SCR-b1"), ("b1", "voice", "VT-b1"),
                                   ("b2", "screen", "SCR-b2"), ("b2", "voice", "VT-b2"),
                                   ("gates", "screen", "SCR-gate-1")]:  # fmt: skip
        out.terminal(building, kind, device)
    out.terminal("b3", "screen", "SCR-b3", ack=False)
    proc.start()
    try:
        yield out
    finally:
        proc.terminate()
        for t in out.terminals.values():
            t.close()


def _write(tmp: Path, mqtt_port: int, api_port: int, tokens: Path) -> Path:
    text = SITE_TOML.format(
        site=SITE,
        mqtt_port=mqtt_port,
        spool=tmp / "spool.db",
        api_port=api_port,
        tokens=tokens,
        retry_s=RETRY_S,
        max_retries=MAX_RETRIES,
    )
    path = tmp / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path
