"""A fire alarm panel's GB/T 26875.3 frame opens an incident through the same path as MQTT."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.e2e.harness import GatewayProcess, write_config
from tests.protocols import gbenc
from tests.servers import MosquittoServer, free_port, wait_until

PANEL = """
[panels]
enabled = true
listen = "127.0.0.1:{port}"

[[panels.units]]
address = "000000000a1b"
building = "b01"

  [[panels.units.components]]
  component = 258
  zone = "b01-f1"
  device = "SD-b01-1-2"
"""


def test_panel_fire_frame_is_confirmed_and_opens_an_incident(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    port = free_port()
    cfg, api_port = write_config(tmp_path, mosquitto.port, api="none", client_id="gw-panel")
    cfg.write_text(cfg.read_text(encoding="utf-8") + PANEL.format(port=port), encoding="utf-8")
    gw = GatewayProcess(cfg, api_port, tmp_path / "gateway.log")
    gw.start()
    try:
        fire = gbenc.frame(
            41, 2, gbenc.appdata(2, gbenc.component(gbenc.FIRE, comp_addr=258)), source=0x0A1B
        )
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(fire)
            reply = conn.recv(64)
        assert reply[:2] == b"@@" and reply[-2:] == b"##"
        assert int.from_bytes(reply[2:4], "little") == 41  # the confirm echoes the serial
        assert reply[26] == 3  # command 3: confirm
        wait_until(lambda: gw.status()["incidents"], 10, what="an incident from the panel")
        (incident,) = gw.status()["incidents"]
        assert (incident["zone"], incident["sources"]) == ("b01-f1", ["SD-b01-1-2"])
        assert incident["state"] == "pre_alarm"
    finally:
        assert gw.terminate() == 0
