"""The benchmark's baselines: what a user would write instead of running the gateway.

Each runs as its own process (`python bench/baselines.py KIND ...`) so that it never shares
a GIL with the publisher:

- `ceiling`: a plain paho subscriber that only counts (the broker's delivery ceiling);
- `naive`:   paho `on_message` → one HTTP `/write` per message (the classic first attempt);
- `batched`: paho → a writer thread posting every 5,000 lines or every second, paho's
  default auto-ack (what a careful user writes in an afternoon).

The bridges build one line-protocol point per message the way the gateway does (parse the
JSON, tags site/building/device (+event, +kind for status), numeric, boolean and string
fields, the device's `ts`, the raw card number dropped), with the gateway's own encoder.

Protocol with the harness: JSON lines on stdout. `{"event": "ready"}` once subscribed;
the ceiling prints `{"event": "done", "count", "first_ns", "last_ns"}` when it has counted
`--expect` messages; every kind prints `{"event": "stopped", ...counters}` on SIGTERM.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.forward.lineproto import encode_point, measurement_for

BATCH_LINES = 5000
BATCH_INTERVAL_S = 1.0
HTTP_TIMEOUT_S = 10.0
WRITE_ATTEMPTS = 3


def emit(event: str, **fields: Any) -> None:
    """One JSON line to the harness."""
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def to_line(topic: str, payload: bytes) -> str | None:
    """One point of line protocol for a device message; None for what is not one."""
    parts = topic.split("/")
    if len(parts) != 6:
        return None
    _root, site, building, kind, device, channel = parts
    try:
        doc = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        doc = {"state": doc}  # a bare "online"/"offline" status
    ts = doc.pop("ts", None)
    if type(ts) is not int:
        ts = time.time_ns() // 1_000_000
    tags = {"site": site, "building": building, "device": device}
    if channel == "event" and isinstance(doc.get("event"), str):
        tags["event"] = doc.pop("event")
    elif channel == "status":
        tags["kind"] = kind
    doc.pop("card", None)  # personal data: never stored
    fields = {k: v for k, v in doc.items() if isinstance(v, bool | int | float | str)}
    return encode_point(measurement_for(kind, channel), tags, fields, ts)


class InfluxWriter:
    """`POST /write?precision=ms` over one keep-alive connection, reconnecting on error."""

    def __init__(self, url: str, db: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or 8086
        self._path = "/write?" + urllib.parse.urlencode({"db": db, "precision": "ms"})
        self._conn: http.client.HTTPConnection | None = None
        self.requests = 0
        self.lines_ok = 0
        self.lines_failed = 0
        self.last_error = ""

    def _post(self, body: bytes) -> int:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self._host, self._port, timeout=HTTP_TIMEOUT_S)
        try:
            self._conn.request("POST", self._path, body, {"Content-Type": "text/plain"})
            resp = self._conn.getresponse()
            text = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self._conn.close()
            self._conn = None
            self.last_error = f"{type(exc).__name__}: {exc}"
            return 0
        if resp.status != 204:
            self.last_error = f"HTTP {resp.status}: {text[:200].decode(errors='replace')}"
        return resp.status

    def write(self, lines: list[str]) -> bool:
        """Write the lines, retrying a failed request a few times (a careful user would)."""
        if not lines:
            return True
        body = "\n".join(lines).encode()
        for attempt in range(WRITE_ATTEMPTS):
            self.requests += 1
            status = self._post(body)
            if status == 204:
                self.lines_ok += len(lines)
                return True
            if 400 <= status < 500:
                break  # the lines themselves are refused: retrying cannot help
            time.sleep(0.1 * (attempt + 1))
        self.lines_failed += len(lines)
        return False


class _Subscriber:
    """A paho client subscribed at QoS 1 with paho's default auto-ack."""

    def __init__(self, args: argparse.Namespace, on_payload: Any) -> None:
        self.received = 0
        self.first_ns = 0
        self.last_ns = 0
        self._on_payload = on_payload
        self._topic = args.topic
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=args.client_id,
            protocol=paho.MQTTv311,
            clean_session=True,
        )
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect(args.mqtt_host, args.mqtt_port, keepalive=30)

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            emit("error", message=f"MQTT connect refused: {reason}")
            return
        client.subscribe(self._topic, qos=1)

    def _on_subscribe(self, _c: Any, _u: Any, _mid: Any, _codes: Any, _p: Any) -> None:
        emit("ready")

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        now = time.time_ns()
        if not self.received:
            self.first_ns = now
        self.received += 1
        self.last_ns = now
        self._on_payload(msg.topic, msg.payload)


def run_ceiling(args: argparse.Namespace, stop: threading.Event) -> dict[str, Any]:
    """Count messages; report when `--expect` have arrived."""
    state: dict[str, Any] = {"done": False}
    sub: _Subscriber

    def count(_topic: str, _payload: bytes) -> None:
        if not state["done"] and args.expect and sub.received >= args.expect:
            state["done"] = True
            emit("done", count=sub.received, first_ns=sub.first_ns, last_ns=sub.last_ns)

    sub = _Subscriber(args, count)
    sub.client.loop_start()
    stop.wait()
    sub.client.disconnect()
    sub.client.loop_stop()
    return {"received": sub.received, "first_ns": sub.first_ns, "last_ns": sub.last_ns}


def run_naive(args: argparse.Namespace, stop: threading.Event) -> dict[str, Any]:
    """One synchronous HTTP write per message, inside paho's callback."""
    writer = InfluxWriter(args.influx_url, args.db)
    skipped = 0

    def write_one(topic: str, payload: bytes) -> None:
        nonlocal skipped
        line = to_line(topic, payload)
        if line is None:
            skipped += 1
            return
        writer.write([line])

    sub = _Subscriber(args, write_one)
    sub.client.loop_start()
    stop.wait()
    sub.client.disconnect()
    sub.client.loop_stop()
    return _writer_stats(sub, writer, skipped)


def run_batched(args: argparse.Namespace, stop: threading.Event) -> dict[str, Any]:
    """paho appends lines to a buffer; a writer thread posts 5,000 lines or every second."""
    writer = InfluxWriter(args.influx_url, args.db)
    buffer: list[str] = []
    cond = threading.Condition()
    skipped = 0

    def enqueue(topic: str, payload: bytes) -> None:
        nonlocal skipped
        line = to_line(topic, payload)
        if line is None:
            skipped += 1
            return
        with cond:
            buffer.append(line)
            if len(buffer) >= BATCH_LINES:
                cond.notify()

    def write_loop() -> None:
        nonlocal buffer
        while True:
            deadline = time.monotonic() + BATCH_INTERVAL_S
            with cond:
                while len(buffer) < BATCH_LINES and not stop.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    cond.wait(left)
                lines, buffer = buffer, []
            for lo in range(0, len(lines), BATCH_LINES):
                writer.write(lines[lo : lo + BATCH_LINES])
            if stop.is_set():
                with cond:
                    rest, buffer = buffer, []
                for lo in range(0, len(rest), BATCH_LINES):
                    writer.write(rest[lo : lo + BATCH_LINES])
                return

    thread = threading.Thread(target=write_loop, name="influx-writer", daemon=True)
    thread.start()
    sub = _Subscriber(args, enqueue)
    sub.client.loop_start()
    stop.wait()
    sub.client.disconnect()
    sub.client.loop_stop()
    with cond:
        cond.notify()
    thread.join(timeout=HTTP_TIMEOUT_S * WRITE_ATTEMPTS)
    return _writer_stats(sub, writer, skipped)


def _writer_stats(sub: _Subscriber, writer: InfluxWriter, skipped: int) -> dict[str, Any]:
    return {
        "received": sub.received,
        "skipped": skipped,
        "requests": writer.requests,
        "lines_ok": writer.lines_ok,
        "lines_failed": writer.lines_failed,
        "last_error": writer.last_error,
    }


RUNNERS = {"ceiling": run_ceiling, "naive": run_naive, "batched": run_batched}


def main(argv: list[str] | None = None) -> int:
    """Run one baseline until SIGTERM/SIGINT; returns the exit code."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=sorted(RUNNERS))
    p.add_argument("--mqtt-host", default="127.0.0.1")
    p.add_argument("--mqtt-port", type=int, required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--topic", required=True, help="subscription, e.g. community/shazui/+/+/+/+")
    p.add_argument("--influx-url", default="http://127.0.0.1:8086")
    p.add_argument("--db", default="bench")
    p.add_argument("--expect", type=int, default=0, help="ceiling: report when this many arrived")
    args = p.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stats = RUNNERS[args.kind](args, stop)
    except OSError as exc:
        emit("error", message=f"{args.kind}: {exc}")
        return 1
    emit("stopped", kind=args.kind, **stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
