"""Publish simulated device traffic to a broker at a steady rate and count the PUBACKs.

Every publish's wall time is recorded by message order, so a benchmark can match it with
the time the gateway's output for that message arrived.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from gateway.config import GatewayConfig
from gateway.decode.profiles import ProfileSet, load_profile
from gateway.errors import GatewayError, ProfileError
from gateway.sim.traffic import SimMessage, TrafficModel

_CONNECT_TIMEOUT_S = 10.0
_PROGRESS_EVERY = 1024


class PublishError(GatewayError):
    """The simulator cannot publish as asked: bad rate, broker unreachable or refusing."""


@dataclass(slots=True)
class PublishReport:
    """What a publish run achieved.

    `sent_ns[i]` is the wall time (ns since the epoch) at which message `i` was handed to
    the client; `acked` counts successful PUBACKs (QoS 0: messages written to the socket).
    """

    sent: int
    acked: int
    rejected: int
    elapsed_s: float
    sent_ns: npt.NDArray[np.int64] = field(repr=False)

    @property
    def rate_per_s(self) -> float:
        """Acknowledged messages per second over the run."""
        return self.acked / self.elapsed_s if self.elapsed_s > 0 else 0.0


class _Acks:
    """PUBACK bookkeeping written from paho's network thread."""

    def __init__(self) -> None:
        self.done = 0
        self.rejected = 0
        self.connected = threading.Event()
        self.refused: str | None = None
        self.receive_maximum = 65535

    def on_connect(self, _c: Any, _u: Any, _flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.refused = str(reason)
        # MQTT v5: the broker says how many unacknowledged QoS>0 messages it accepts.
        self.receive_maximum = int(getattr(props, "ReceiveMaximum", 65535))
        self.connected.set()

    def on_publish(self, _c: Any, _u: Any, _mid: int, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self.rejected += 1
        self.done += 1


def publish(
    host: str,
    port: int,
    messages: Iterable[SimMessage],
    rate_per_s: float | None,
    qos: int = 1,
    progress: bool = False,
    client_id: str = f"community-sim-{os.getpid()}",
    *,
    protocol: Literal["5", "3.1.1"] = "5",
    username: str | None = None,
    password: str | None = None,
    tls_ca: Path | None = None,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    total: int | None = None,
    max_pending: int = 5000,
    ack_timeout_s: float = 30.0,
) -> PublishReport:
    """Publish `messages` in order, paced to `rate_per_s` (None: as fast as possible).

    `protocol` is the MQTT version (`"3.1.1"` for brokers without v5, such as amqtt).
    Waits up to `ack_timeout_s` after the last publish for the outstanding acknowledgements;
    never more than `max_pending` messages are unacknowledged at once. Raises PublishError
    when the broker cannot be reached or refuses the connection.
    """
    if rate_per_s is not None and not rate_per_s > 0:
        raise PublishError(f"rate {rate_per_s} messages/s: must be > 0")
    acks = _Acks()
    v5 = protocol == "5"
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        clean_session=None if v5 else True,
    )
    # The in-flight window is ours (`max_pending`): paho's own rescans its whole queue on
    # every PUBACK, which caps throughput at a few thousand messages per second.
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    client.on_connect = acks.on_connect
    client.on_publish = acks.on_publish
    if username is not None:
        client.username_pw_set(username, password)
    if tls_ca is not None:
        client.tls_set(
            ca_certs=str(tls_ca),
            certfile=str(tls_cert) if tls_cert else None,
            keyfile=str(tls_key) if tls_key else None,
        )
    try:
        if v5:
            client.connect(host, port, keepalive=30, clean_start=True)
        else:
            client.connect(host, port, keepalive=30)
    except OSError as exc:
        raise PublishError(f"cannot connect to MQTT broker {host}:{port}: {exc}") from exc
    client.loop_start()
    try:
        if not acks.connected.wait(_CONNECT_TIMEOUT_S):
            raise PublishError(f"MQTT broker {host}:{port}: no CONNACK in {_CONNECT_TIMEOUT_S} s")
        if acks.refused is not None:
            raise PublishError(f"MQTT broker {host}:{port} refused the connection: {acks.refused}")
        with _Progress(progress, total) as bar:
            sent_ns, t0 = _publish_all(
                client,
                messages,
                rate_per_s=rate_per_s,
                qos=qos,
                acks=acks,
                max_pending=min(max_pending, acks.receive_maximum) if qos else max_pending,
                stall_s=ack_timeout_s,
                bar=bar,
            )
            deadline = time.monotonic() + ack_timeout_s
            while acks.done < len(sent_ns) and time.monotonic() < deadline:
                time.sleep(0.002)
                bar.update(len(sent_ns), acks.done)
            elapsed = time.perf_counter() - t0 if len(sent_ns) else 0.0
            bar.update(len(sent_ns), acks.done, force=True)
    finally:
        client.disconnect()
        client.loop_stop()
    good = acks.done - acks.rejected
    return PublishReport(len(sent_ns), good, acks.rejected, elapsed, sent_ns)


def _publish_all(
    client: paho.Client,
    messages: Iterable[SimMessage],
    *,
    rate_per_s: float | None,
    qos: int,
    acks: _Acks,
    max_pending: int,
    stall_s: float,
    bar: _Progress,
) -> tuple[npt.NDArray[np.int64], float]:
    stamps: list[int] = []
    wall_ns = time.time_ns
    clock = time.perf_counter
    interval = 1.0 / rate_per_s if rate_per_s else 0.0
    t0 = clock()
    for i, msg in enumerate(messages):
        if interval:
            # Sleep only when ahead by a millisecond: per-message sleeps cannot be that short.
            ahead = t0 + i * interval - clock()
            if ahead > 0.001:
                time.sleep(ahead)
        if i - acks.done >= max_pending:
            _wait_for_acks(acks, i - max_pending + 1, stall_s)
        stamps.append(wall_ns())
        client.publish(msg.topic, msg.payload, qos=qos)
        if i % _PROGRESS_EVERY == 0:
            bar.update(i + 1, acks.done)
    return np.array(stamps, dtype=np.int64), t0


def _wait_for_acks(acks: _Acks, target: int, stall_s: float) -> None:
    """Block until `target` messages are acknowledged; PublishError if the broker stalls."""
    deadline = time.monotonic() + stall_s
    while acks.done < target:
        if time.monotonic() > deadline:
            raise PublishError(f"no acknowledgement from the broker for {stall_s} s")
        time.sleep(0.0005)


class _Progress:
    """A rich progress line (rate, sent, acked) on stderr; a no-op when disabled."""

    def __init__(self, enabled: bool, total: int | None) -> None:
        self._enabled = enabled
        self._total = total
        self._t0 = time.perf_counter()
        self._last = 0.0

    def __enter__(self) -> _Progress:
        if self._enabled:
            self._progress = Progress(
                TextColumn("[bold]sim"),
                BarColumn(),
                TextColumn("{task.fields[line]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._task = self._progress.add_task("publish", total=self._total, line="")
            self._progress.start()
        return self

    def update(self, sent: int, acked: int, force: bool = False) -> None:
        if not self._enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last < 0.25:
            return
        self._last = now
        rate = sent / max(now - self._t0, 1e-9)
        line = f"{rate:,.0f} msg/s  sent {sent:,}  acked {acked:,}"
        self._progress.update(self._task, completed=sent, line=line)

    def __exit__(self, *exc: object) -> None:
        if self._enabled:
            self._progress.stop()


def _canonical_hashes(profiles_dir: Path) -> dict[str, str]:
    """Each kind's canonical profile `config_hash`, for status heartbeats that are in sync."""
    hashes = {}
    for path in sorted(profiles_dir.glob("*/canonical.toml")):
        try:
            profile = load_profile(path)
        except ProfileError:
            continue  # the gateway reports a broken profile itself; devices just differ
        hashes[profile.kind] = profile.config_hash
    return hashes


def simulate(
    cfg: GatewayConfig,
    rate_per_s: float,
    duration_s: float,
    seed: int = 1,
    progress: bool = True,
) -> PublishReport:
    """Play `duration_s` of the site's device traffic at `rate_per_s` to the config's broker."""
    if not rate_per_s > 0 or not duration_s > 0:
        raise PublishError(f"rate {rate_per_s}/s for {duration_s} s: both must be > 0")
    count = max(1, round(rate_per_s * duration_s))
    model = TrafficModel(
        cfg,
        seed,
        config_hashes=_canonical_hashes(cfg.gateway.profiles_dir),
        profiles=ProfileSet.load(cfg.gateway.profiles_dir),
    )
    start_ms = time.time_ns() // 1_000_000
    stream: Iterator[SimMessage] = model.messages(count, start_ms, rate_per_s)
    return publish(
        cfg.mqtt.host,
        cfg.mqtt.port,
        stream,
        rate_per_s,
        qos=1,
        progress=progress,
        client_id=f"community-sim-{cfg.gateway.site}-{os.getpid()}",
        protocol=cfg.mqtt.protocol,
        username=cfg.mqtt.username,
        password=cfg.read_secret(cfg.mqtt.password_file),
        tls_ca=cfg.mqtt.tls_ca,
        tls_cert=cfg.mqtt.tls_cert,
        tls_key=cfg.mqtt.tls_key,
        total=count,
    )
