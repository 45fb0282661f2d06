"""No raw card number leaves the gateway: every output of a scenario run is searched.

Swipes carry card numbers (contract: personal data, only a salted hash may be stored or
published). A run sends valid swipes (string and numeric cards) and swipes the gateway
must reject; then InfluxDB (`SELECT *` of every measurement), the gateway's log, its MQTT
output, every GET of the API and the spool's bytes are searched for each number.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.e2e.harness import GatewayProcess, now_ms, publish_all, write_config
from tests.security.mqtt import MqttUser
from tests.servers import InfluxDBServer, MosquittoServer, wait_until

BASE = "community/shazui"
READER = f"{BASE}/gates/access/AC-cp-n01/event"
API_GETS = (
    "/api/v1/status",
    "/api/v1/devices",
    "/api/v1/dead-letters?limit=1000",
    "/api/v1/incidents",
    "/api/v1/occupancy",
    "/metrics",
    "/readyz",
)
# Distinctive numbers, leading zeros included, so a hit cannot be a coincidence; the
# int-parsed form (zeros dropped) is searched too.
VALID = ("0049291184765312", "0060110009901394")
NUMERIC = 7735510042887  # a vendor that sends the card as a JSON number
MALFORMED = ("0055512345678901", "0037828224631000")
# Payloads that are not JSON at all, each carrying a card the redaction should catch.
UNPARSEABLE = ("0030569309025904", "0036227206271667")
SALT = b"test-salt"  # the harness site's card_salt


def swipe(ts: int, card: object, **extra: object) -> bytes:
    body = {"ts": ts, "event": "swipe", "card": card, "door": "cp-n01-d1", "dir": "in"}
    return json.dumps({**body, "granted": True, **extra}).encode()


def truncated(ts: int, card: str) -> bytes:
    """A swipe cut off right after the card number (a reader that lost power mid-write)."""
    return swipe(ts, card).split(card.encode())[0] + card.encode()


def scenario(ts: int) -> list[tuple[str, bytes]]:
    """Valid swipes and swipes the gateway must reject, all carrying card numbers."""
    return [
        (READER, swipe(ts + 1, VALID[1], dir="out")),
        (READER, swipe(ts + 2, NUMERIC)),
        # Dead-lettered: an impossible direction, an unknown kind.
        (READER, swipe(ts + 3, MALFORMED[0], dir="sideways")),
        (f"{BASE}/gates/reader/AC-cp-n01/event", swipe(ts + 4, MALFORMED[1])),
    ]


def unparseable(ts: int) -> list[tuple[str, bytes]]:
    """Swipes that are not JSON: truncated mid-card, and form-encoded."""
    return [
        (READER, truncated(ts, UNPARSEABLE[0])),
        (READER, f"event=swipe&card={UNPARSEABLE[1]}&door=cp-n01-d1".encode()),
    ]


def forms(card: object) -> list[bytes]:
    text = str(card)
    return sorted({text.encode(), text.lstrip("0").encode()})


def api_get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return bytes(resp.read())


def test_no_raw_card_number_in_any_output(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxDBServer, influx_db: str
) -> None:
    leaks = run_and_search(tmp_path, mosquitto, influxdb, influx_db, scenario, dead=2)
    assert not leaks, "raw card numbers leaked:\n  " + "\n  ".join(leaks)


def test_no_raw_card_number_from_unparseable_swipes(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxDBServer, influx_db: str
) -> None:
    leaks = run_and_search(tmp_path, mosquitto, influxdb, influx_db, unparseable, dead=2)
    assert not leaks, "raw card numbers leaked:\n  " + "\n  ".join(leaks)


def run_and_search(
    tmp_path: Path,
    mosquitto: MosquittoServer,
    influxdb: InfluxDBServer,
    influx_db: str,
    make: Callable[[int], list[tuple[str, bytes]]],
    dead: int,
) -> list[str]:
    """Run the gateway over `make(now)`, gather every output, return where cards appear."""
    cfg, api_port = write_config(
        tmp_path, mosquitto.port, influx_url=influxdb.url, database=influx_db, client_id="gw-priv"
    )
    log = tmp_path / "gateway.log"
    gw = GatewayProcess(cfg, api_port, log, "gateway.log_level='DEBUG'")
    watcher = MqttUser(mosquitto.port, None, client_id="privacy-watcher")
    outputs: dict[str, bytes] = {}
    try:
        for topic in ("alerts/#", "state/#", "gateway/#", "+/+/+/cmd", "+/+/+/config"):
            assert watcher.subscribe(f"{BASE}/{topic}") == 1
        gw.start()
        # A valid swipe first, so InfluxDB always has a hash to find.
        items = [(READER, swipe(now_ms() - 10, VALID[0])), *make(now_ms())]
        publish_all(mosquitto.port, items, client_id="privacy-reader")
        gw.wait_committed(len(items))
        wait_until(
            lambda: gw.status()["spool"]["dead_letters"] >= dead, 15, what=f"{dead} dead letters"
        )
        wait_until(
            lambda: influxdb.query(influx_db, "SELECT count(*) FROM /.*/"),
            20,
            what="points in InfluxDB",
        )
        for row in influxdb.query(influx_db, "SHOW MEASUREMENTS"):
            m = row["name"]
            rows = influxdb.query(influx_db, f'SELECT * FROM "{m}"')
            outputs[f"influx {m}"] = json.dumps(rows).encode()
        for path in API_GETS:
            outputs[f"GET {path}"] = api_get(api_port, path)
        assert len(json.loads(outputs["GET /api/v1/dead-letters?limit=1000"])) >= dead
    finally:
        assert gw.terminate() == 0
    outputs["mqtt"] = b"\n".join(t.encode() + b" " + p for t, p in watcher.receive_all(0.5))
    watcher.close()
    outputs["log"] = log.read_bytes()
    for f in sorted(tmp_path.glob("spool.db*")):
        outputs[f"spool {f.name}"] = f.read_bytes()
    # The search looks at the right data: the valid swipe's salted hash did arrive.
    influx = b"".join(v for k, v in outputs.items() if k.startswith("influx"))
    hashed = hashlib.blake2b(SALT + VALID[0].encode(), digest_size=16).hexdigest()
    assert hashed.encode() in influx, "the valid swipe's card_hash is not in InfluxDB"
    return [
        f"{card!r} ({form.decode()}) in {where}"
        for card in (*VALID, NUMERIC, *MALFORMED, *UNPARSEABLE)
        for form in forms(card)
        for where, data in outputs.items()
        if form in data
    ]
