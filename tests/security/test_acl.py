"""Broker accounts and ACLs from `provision`, enforced by a real Mosquitto.

A denied publish is silent to MQTT 3 clients; here the device speaks MQTT 5 (Mosquitto
answers 0x87 on PUBACK) and the gateway account watches, with a deadline, that nothing
got through.
"""

from __future__ import annotations

import csv
import getpass
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.provision import TlsListener, provision
from tests.certs import make_certs
from tests.e2e.harness import write_config
from tests.security.mqtt import NOT_AUTHORIZED, MqttUser
from tests.servers import MosquittoServer, free_port

BASE = "community/shazui"
GRANTED_OR_DENIED = (1, NOT_AUTHORIZED)
SILENCE_S = 0.7  # how long "nothing arrives" is watched after a denied publish


def start_secured(
    tmp: Path, tls: TlsListener | None = None
) -> tuple[MosquittoServer, dict[str, str]]:
    """A Mosquitto running the provisioned files for the small test site."""
    cfg_path, _ = write_config(tmp, free_port())
    (tmp / "broker").mkdir()
    broker = MosquittoServer(tmp / "broker")
    out = tmp / "provisioned"
    files = provision(load_config(cfg_path), out, tls=tls, local_port=None if tls else broker.port)
    if tls is not None:
        broker.port = tls.port
    broker.config_path.write_text(
        files["mosquitto.conf"].read_text()
        + f"\nuser {getpass.getuser()}\nlog_dest file {broker.mosquitto_log}\n"
    )
    broker.start()
    with files["credentials"].open(newline="") as f:
        creds = {row["username"]: row["password"] for row in csv.DictReader(f)}
    return broker, creds


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, dict[str, str]]]:
    broker, creds = start_secured(tmp_path_factory.mktemp("acl"))
    try:
        yield broker.port, creds
    finally:
        broker.stop()


def user(secured: tuple[int, dict[str, str]], name: str, **kw: object) -> MqttUser:
    port, creds = secured
    client = MqttUser(port, name, creds[name], **kw)  # type: ignore[arg-type]
    assert client.connected, f"{name} refused: {client.connack}"
    return client


def test_files_are_private_and_cover_every_device(tmp_path: Path) -> None:
    cfg_path, _ = write_config(tmp_path, 1883)
    files = provision(load_config(cfg_path), tmp_path / "out")
    for name in ("passwd", "credentials", "gateway.password"):
        assert stat.S_IMODE(files[name].stat().st_mode) == 0o600, name
    users = [line.split(":")[0] for line in files["passwd"].read_text().splitlines()]
    assert {"gateway", "fireteam.mfs-1", "b01.smoke.SD-b01-1-1", "gates.access.AC-cp-n01"} <= set(
        users
    )
    assert len(users) == len(set(users))
    # A second run keeps the passwords installers already put into devices.
    before = files["credentials"].read_text()
    provision(load_config(cfg_path), tmp_path / "out")
    assert files["credentials"].read_text() == before


def test_device_publishes_own_telemetry_to_the_gateway(secured: tuple[int, dict[str, str]]) -> None:
    gw = user(secured, "gateway")
    dev = user(secured, "b01.smoke.SD-b01-1-1")
    try:
        assert gw.subscribe(f"{BASE}/+/+/+/+") == 1
        topic = f"{BASE}/b01/smoke/SD-b01-1-1/telemetry"
        assert dev.publish(topic, b'{"smoke": 0.1}') == 0
        assert gw.receive() == (topic, b'{"smoke": 0.1}')
    finally:
        dev.close()
        gw.close()


@pytest.mark.parametrize(
    "topic",
    [
        f"{BASE}/b01/smoke/SD-b01-1-2/event",  # another detector in the same zone
        f"{BASE}/b02/smoke/SD-b01-1-1/event",  # its own id under another building
        f"{BASE}/b01/heat/SD-b01-1-1/event",  # its own id as another kind
        f"{BASE}/b01/smoke/SD-b01-1-1/cmd",  # a command to itself
        f"{BASE}/alerts/fire",  # a forged fire alert
        f"{BASE}/alerts/fire/inc-1/action",  # acting on an incident
    ],
)
def test_device_cannot_publish_as_anyone_else(
    secured: tuple[int, dict[str, str]], topic: str
) -> None:
    gw = user(secured, "gateway")
    dev = user(secured, "b01.smoke.SD-b01-1-1")
    try:
        assert gw.subscribe(f"{BASE}/#") == 1
        assert dev.publish(topic, b'{"event": "alarm"}') == NOT_AUTHORIZED
        assert gw.receive(SILENCE_S) is None
    finally:
        dev.close()
        gw.close()


def test_device_reads_own_commands_but_not_anothers(secured: tuple[int, dict[str, str]]) -> None:
    gw = user(secured, "gateway")
    own = user(secured, "b02.screen.SCR-b02")
    spy = user(secured, "b01.smoke.SD-b01-1-1", client_id="spy")
    try:
        assert own.subscribe(f"{BASE}/b02/screen/SCR-b02/cmd") == 1
        # Mosquitto 2.0 may grant a subscription and filter each message by the read ACL
        # at delivery: what counts is that nothing arrives.
        assert spy.subscribe(f"{BASE}/b02/screen/SCR-b02/cmd") in GRANTED_OR_DENIED
        assert spy.subscribe(f"{BASE}/#") in GRANTED_OR_DENIED
        cmd = f"{BASE}/b02/screen/SCR-b02/cmd"
        assert gw.publish(cmd, b'{"action": "show"}') == 0
        assert own.receive() == (cmd, b'{"action": "show"}')
        assert spy.receive(SILENCE_S) is None
        # A screen only answers: it cannot pose as a sensor.
        assert own.publish(f"{BASE}/b02/screen/SCR-b02/event", b"{}") == NOT_AUTHORIZED
        assert own.publish(f"{BASE}/b02/screen/SCR-b02/ack", b"{}") == 0
    finally:
        for c in (spy, own, gw):
            c.close()


def test_anonymous_and_wrong_password_are_refused(secured: tuple[int, dict[str, str]]) -> None:
    port, _ = secured
    for name, password in ((None, None), ("gateway", "wrong-password"), ("nobody", "x" * 24)):
        client = MqttUser(port, name, password, client_id=f"intruder-{name}")
        try:
            assert not client.connected, f"{name!r} was let in"
            assert client.connack.value in (0x86, 0x87), client.connack
        finally:
            client.close()


def test_fire_team_reads_fire_alerts_and_acts_but_sees_no_telemetry(
    secured: tuple[int, dict[str, str]],
) -> None:
    gw = user(secured, "gateway")
    team = user(secured, "fireteam.mfs-1")
    dev = user(secured, "b01.smoke.SD-b01-1-1")
    try:
        assert team.subscribe(f"{BASE}/alerts/fire/#") == 1
        assert team.subscribe(f"{BASE}/+/smoke/+/telemetry") in GRANTED_OR_DENIED
        assert team.subscribe(f"{BASE}/alerts/trouble") in GRANTED_OR_DENIED
        assert gw.subscribe(f"{BASE}/alerts/fire/+/action") == 1
        assert gw.publish(f"{BASE}/alerts/fire", b'{"id": "inc-1"}') == 0
        assert team.receive() == (f"{BASE}/alerts/fire", b'{"id": "inc-1"}')
        action = f"{BASE}/alerts/fire/inc-1/action"
        assert team.publish(action, b'{"by": "mfs-1", "action": "ack"}') == 0
        assert gw.receive() == (action, b'{"by": "mfs-1", "action": "ack"}')
        # Teams see every team's actions on the incident (alerts/fire/# covers them).
        assert team.receive() == (action, b'{"by": "mfs-1", "action": "ack"}')
        assert dev.publish(f"{BASE}/b01/smoke/SD-b01-1-1/telemetry", b"{}") == 0
        assert gw.publish(f"{BASE}/alerts/trouble", b"{}") == 0
        assert team.receive(SILENCE_S) is None
        assert gw.receive(SILENCE_S) is None  # (it watches actions only)
        assert team.publish(f"{BASE}/b01/smoke/SD-b01-1-1/telemetry", b"{}") == NOT_AUTHORIZED
        assert team.publish(f"{BASE}/alerts/fire", b'{"id": "forged"}') == NOT_AUTHORIZED
        assert gw.receive(SILENCE_S) is None
    finally:
        for c in (dev, team, gw):
            c.close()


def test_tls_listener_from_the_generated_config(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    make_certs(certs)
    tls = TlsListener(
        port=free_port(),
        bind="127.0.0.1",
        cafile=str(certs / "ca.crt"),
        certfile=str(certs / "server.crt"),
        keyfile=str(certs / "server.key"),
    )
    broker, creds = start_secured(tmp_path, tls)
    try:
        gw = MqttUser(broker.port, "gateway", creds["gateway"], tls_ca=certs / "ca.crt")
        dev_name = "b01.smoke.SD-b01-1-1"
        dev = MqttUser(broker.port, dev_name, creds[dev_name], tls_ca=certs / "ca.crt")
        anon = MqttUser(broker.port, None, tls_ca=certs / "ca.crt", client_id="anon-tls")
        try:
            assert gw.connected and dev.connected and not anon.connected
            assert gw.subscribe(f"{BASE}/#") == 1
            topic = f"{BASE}/b01/smoke/SD-b01-1-1/telemetry"
            assert dev.publish(topic, b"{}") == 0
            assert gw.receive() == (topic, b"{}")
            assert dev.publish(f"{BASE}/b01/smoke/SD-b01-1-2/telemetry", b"{}") == NOT_AUTHORIZED
            assert gw.receive(SILENCE_S) is None
        finally:
            for c in (anon, dev, gw):
                c.close()
    finally:
        broker.stop()
