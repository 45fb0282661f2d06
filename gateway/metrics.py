"""Prometheus metrics of one gateway, kept in their own registry (one per app instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)


class GatewayMetrics:
    """Every metric the gateway exports; components take this object, never globals."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages_in = Counter(
            "gateway_messages_in", "MQTT messages received", ["kind", "channel"], registry=r
        )
        self.dead_letters = Counter(
            "gateway_dead_letters", "Messages or lines dead-lettered", ["stage"], registry=r
        )
        self.decode_errors = Counter(
            "gateway_decode_errors", "Payloads or topics that failed to decode", registry=r
        )
        self.unprovisioned = Counter(
            "gateway_unprovisioned_messages",
            "Messages from devices not in the site model",
            registry=r,
        )
        self.rate_limited = Counter(
            "gateway_rate_limited_messages",
            "Messages of flooding devices acknowledged but not stored (alarms are exempt)",
            registry=r,
        )
        self.batches = Counter("gateway_batches", "Micro-batches committed", registry=r)
        self.spool_rows = Gauge("gateway_spool_rows", "Rows waiting in the spool", registry=r)
        self.spool_bytes = Gauge("gateway_spool_bytes", "Bytes of lines in the spool", registry=r)
        self.spool_evicted = Counter(
            "gateway_spool_evicted", "Telemetry rows evicted to respect spool.max_bytes", registry=r
        )
        self.forward_lines = Counter(
            "gateway_forward_lines", "Lines accepted by the database", registry=r
        )
        self.forward_errors = Counter(
            "gateway_forward_errors", "Failed writes to the database", ["reason"], registry=r
        )
        self.forward_lag = Gauge(
            "gateway_forward_lag_seconds", "Age of the oldest line not yet forwarded", registry=r
        )
        self.forward_drain_rate = Gauge(
            "gateway_forward_drain_lines_per_second", "Recent forwarding rate", registry=r
        )
        self.alarm_lane_latency = Histogram(
            "gateway_alarm_lane_latency_seconds",
            "Alarm message received by the MQTT thread -> fire-engine hook called",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.devices = Gauge("gateway_devices", "Devices by liveness", ["state"], registry=r)
        self.alerts = Counter("gateway_alerts", "Alerts published", ["type"], registry=r)
        self.mqtt_connected = Gauge(
            "gateway_mqtt_connected", "1 while connected to the broker", registry=r
        )
