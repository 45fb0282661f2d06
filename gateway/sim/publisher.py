"""Publish simulated device traffic to a broker at a steady rate and count the PUBACKs.

Every publish's wall time is recorded by message order, so a benchmark can match it with
the time the gateway's output for that message arrived.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from gateway.config import GatewayConfig
from gateway.decode.profiles import ProfileSet, load_profile
from gateway.errors import ProfileError
from gateway.sim.traffic import SimMessage, TrafficModel
from gateway.sim.wire import PublishConnection, PublishError

_CONNECT_TIMEOUT_S = 10.0
_PROGRESS_EVERY = 1024


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
    conn = PublishConnection(
        host,
        port,
        client_id,
        protocol=protocol,
        username=username,
        password=password,
        tls_ca=tls_ca,
        tls_cert=tls_cert,
        tls_key=tls_key,
        timeout_s=_CONNECT_TIMEOUT_S,
    )
    try:
        with _Progress(progress, total) as bar:
            window = min(max_pending, conn.receive_maximum) if qos else max_pending
            sent_ns, t0 = _publish_all(conn, messages, rate_per_s, qos, window, ack_timeout_s, bar)
            deadline = time.monotonic() + ack_timeout_s
            conn.flush()
            while conn.acked + conn.rejected < len(sent_ns) and time.monotonic() < deadline:
                conn.read(min(0.05, max(0.0, deadline - time.monotonic())))
                bar.update(len(sent_ns), conn.acked)
            elapsed = time.perf_counter() - t0 if len(sent_ns) else 0.0
            bar.update(len(sent_ns), conn.acked, force=True)
    finally:
        conn.close()
    return PublishReport(len(sent_ns), conn.acked, conn.rejected, elapsed, sent_ns)


def _publish_all(
    conn: PublishConnection,
    messages: Iterable[SimMessage],
    rate_per_s: float | None,
    qos: int,
    max_pending: int,
    stall_s: float,
    bar: _Progress,
) -> tuple[npt.NDArray[np.int64], float]:
    stamps: list[int] = []
    wall_ns = time.time_ns
    clock = time.perf_counter
    interval = 1.0 / rate_per_s if rate_per_s else 0.0
    topics: dict[str, bytes] = {}
    t0 = clock()
    for i, msg in enumerate(messages):
        if interval:
            # Wait only when ahead by a millisecond: per-message sleeps cannot be that short.
            ahead = t0 + i * interval - clock()
            if ahead > 0.001:
                conn.flush()
                _wait(conn, ahead)
        if i - conn.acked - conn.rejected >= max_pending:
            conn.wait_for_acks(i - max_pending + 1, stall_s)
        topic = topics.get(msg.topic)
        if topic is None:
            topic = topics[msg.topic] = msg.topic.encode()
        stamps.append(wall_ns())
        conn.publish(topic, msg.payload, qos)
        if interval:
            conn.flush()  # paced: each message leaves when its time comes
        if i % _PROGRESS_EVERY == 0:
            bar.update(i + 1, conn.acked)
    return np.array(stamps, dtype=np.int64), t0


def _wait(conn: PublishConnection, seconds: float) -> None:
    """Sleep `seconds`, reading acknowledgements meanwhile."""
    until = time.perf_counter() + seconds
    while (left := until - time.perf_counter()) > 0:
        conn.read(left)


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
