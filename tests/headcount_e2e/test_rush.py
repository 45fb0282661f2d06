"""The morning-rush generator and its ground truth, without servers.

The truth is checked on hand-made rows (one rule each) and against the real engine fed the
decoded rush on a hand-driven clock, tick by tick as the gateway feeds it.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import GatewayConfig, load_config
from gateway.decode import Decoder, ProfileSet
from gateway.errors import ConfigError
from gateway.headcount import HeadcountEngine
from gateway.headcount.batch import build_batch
from gateway.headcount.records import FlowRecord, HeadcountAlert, OccupancyRecord
from gateway.ingest.topic import DeviceTopic, parse_topic
from gateway.sim.rush import Crossing, MorningRush, RushTruth, Swipe
from gateway.site import SiteIndex
from tests.headcount_e2e.live import by_target
from tests.headcount_e2e.site import CROWD_AT, HEADCOUNT, SITE_TOML, TAILGATE_AT, site_copy

MINUTE = 1_795_611_000_000  # a minute boundary (ms)
B = 10_000


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> GatewayConfig:
    tmp = tmp_path_factory.mktemp("rush")
    return load_config(site_copy(tmp), [*HEADCOUNT, f"spool.path={tmp}/spool.db"])


def test_same_seed_same_rush_byte_for_byte(cfg: GatewayConfig) -> None:
    one = MorningRush(cfg, seed=3).generate(MINUTE + B, 50)
    two = MorningRush(cfg, seed=3).generate(MINUTE + B, 50)
    other = MorningRush(cfg, seed=4).generate(MINUTE + B, 50)
    assert [(m.publish_ms, m.topic, m.payload) for m in one.messages] == [
        (m.publish_ms, m.topic, m.payload) for m in two.messages
    ]
    assert [m.payload for m in one.messages] != [m.payload for m in other.messages]


def test_a_longer_rush_starts_with_the_shorter_one(cfg: GatewayConfig) -> None:
    short = MorningRush(cfg).generate(MINUTE + B, 20).messages
    long = MorningRush(cfg).generate(MINUTE + B, 50).messages
    first = [m for m in long if m.row.ts_ms <= MINUTE + 3 * B]
    assert [m.payload for m in short] == [m.payload for m in first]


def test_only_canonical_devices_speak_and_every_message_decodes(cfg: GatewayConfig) -> None:
    rush = MorningRush(cfg).generate(MINUTE + B, 30)
    site = SiteIndex(cfg.site)
    decoder = Decoder(ProfileSet.load(cfg.gateway.profiles_dir), site, cfg.card_salt())
    devices = set()
    for m in rush.messages:
        topic = parse_topic(m.topic, cfg.mqtt.root, cfg.gateway.site)
        assert isinstance(topic, DeviceTopic)
        assert site.profile_for(topic.kind, topic.device) == "canonical"
        msg = decoder.decode(topic, m.payload, m.publish_ms)
        assert msg.tags["checkpoint"] == m.row.checkpoint and msg.ts_ms == m.row.ts_ms
        devices.add(topic.device)
    # Vendor cameras (cp-e*) and vendor readers (cp-w*) stay silent, and so do the
    # cameras of cp-w*: their entries would have no authorizations to match.
    assert {"AC-cp-e01", "CAM-cp-n01", "AC-cp-n01"} <= devices
    assert not {"CAM-cp-e01", "AC-cp-w01", "CAM-cp-w01"} & devices


def test_a_site_without_the_limits_is_a_clear_error(cfg: GatewayConfig) -> None:
    with pytest.raises(ConfigError, match=r"crowd_at.*inflow_limit_per_min \(got none\)"):
        MorningRush(load_config(SITE_TOML, list(HEADCOUNT)))
    with pytest.raises(ValueError, match="whole buckets"):
        MorningRush(cfg).generate(MINUTE + 5, 30)


def _truth(cfg: GatewayConfig, rows: list[tuple[int, Swipe | Crossing]]) -> RushTruth:
    return RushTruth(cfg, rows, {"site": 100})


def test_a_period_count_lands_in_the_bucket_before_its_end(cfg: GatewayConfig) -> None:
    # Reported at the minute boundary, it covers the 10 s before: the earlier minute.
    truth = _truth(cfg, [(MINUTE + 1000, Crossing("cp-n03", MINUTE, 10, 4, 1))])
    flows = truth.flows(MINUTE - 5 * B, MINUTE + 2 * 60_000)
    assert flows[("cp-n03", "1m", MINUTE - 60_000)]["in"] == 4
    assert flows[("cp-n03", "1m", MINUTE)]["in"] == 0


def test_windows_reaching_before_the_start_are_uncertain_and_late_rows_set_aside(
    cfg: GatewayConfig,
) -> None:
    # A bucket closes `lateness_s` (10 s) after its end: a period ending at MINUTE + B is
    # on time until MINUTE + 2B, late from then on.
    rows: list[tuple[int, Swipe | Crossing]] = [
        (MINUTE + 2 * B + 5000, Swipe("cp-n03", MINUTE + 2 * B + 5000, "in", False)),
        (MINUTE + 2 * B + 1, Crossing("cp-n03", MINUTE + B, 10, 7, 0)),
        (MINUTE + 3 * B - 1, Crossing("cp-n03", MINUTE + 2 * B, 10, 2, 0)),
    ]
    flows = _truth(cfg, rows).flows(MINUTE + 3000, MINUTE + 3 * 60_000)
    first = flows[("cp-n03", "1m", MINUTE)]  # starts with the engine's first bucket
    assert (first["uncertain"], first["denied"], first["in"], first["late"]) == (False, 1, 2, 1)
    assert ("cp-n03", "1m", MINUTE - 60_000) in flows  # closed after the start: written
    assert flows[("cp-n03", "1m", MINUTE - 60_000)]["uncertain"] is True
    later = _truth(cfg, rows).flows(MINUTE + B + 3000, MINUTE + 3 * 60_000)
    assert later[("cp-n03", "1m", MINUTE)]["uncertain"] is True
    assert ("cp-n03", "1m", MINUTE - 60_000) not in later


def test_occupancy_samples_see_what_arrived_before_their_time(cfg: GatewayConfig) -> None:
    rows: list[tuple[int, Swipe | Crossing]] = [
        (MINUTE + B, Crossing("cp-n03", MINUTE + B - 3000, 3, 0, 5))  # at the sample time
    ]
    truth = _truth(cfg, rows)
    samples = truth.occupancy(MINUTE, MINUTE + 2000, MINUTE + 3 * B)
    assert [samples[("site", MINUTE + k * B)] for k in (1, 2, 3)] == [100, 95, 95]
    assert truth.levels(MINUTE + B, MINUTE, MINUTE + 2000) == {"site": 95}


class _Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def wall_ms(self) -> int:
        return self.now_ms

    def monotonic(self) -> float:
        return self.now_ms / 1000


@pytest.mark.parametrize("start_offset_ms", [300, 4_700, 9_900, 27_000])
@pytest.mark.parametrize("duration_s", [20, 50])
def test_the_truth_is_what_the_engine_does_with_the_rush(
    cfg: GatewayConfig, start_offset_ms: int, duration_s: int
) -> None:
    """The rush decoded and fed to the engine batch by batch, ticked every second."""
    t0 = MINUTE + start_offset_ms
    corrected = t0 + 1200
    start = (corrected + 500 + B - 1) // B * B
    rush = MorningRush(cfg).generate(start, duration_s)
    until = start + 75_000
    clock = _Clock(t0)
    engine = HeadcountEngine(cfg.site, cfg.headcount, clock, site_id=cfg.gateway.site)
    decoder = Decoder(ProfileSet.load(cfg.gateway.profiles_dir), SiteIndex(cfg.site), b"s")
    batches: dict[int, list[Any]] = {}
    for m in rush.messages:
        topic = parse_topic(m.topic, cfg.mqtt.root, cfg.gateway.site)
        assert isinstance(topic, DeviceTopic)
        batches.setdefault(m.publish_ms, []).append(decoder.decode(topic, m.payload, m.publish_ms))
    flows: list[FlowRecord] = []
    samples: list[OccupancyRecord] = []
    alerts: list[HeadcountAlert] = []
    states: dict[str, dict[str, Any]] = {}
    for now in sorted({*batches, *range(t0, until + 1, 1000), corrected}):
        clock.now_ms = now
        if now == corrected:
            engine.correct_occupancy("site", 2600, "night-count")
        if now in batches:
            engine.ingest(build_batch(batches[now], engine.index))
        out = engine.tick()
        flows += out.flows
        samples += out.occupancy
        alerts += out.alerts
        states.update(out.states)
    truth = rush.truth
    want_flows = truth.flows(t0, until)
    got_flows = {(r.checkpoint, r.window, r.start_ms): r.fields() for r in flows}
    assert got_flows == want_flows
    want_samples = truth.occupancy(t0, corrected, until)
    assert {(r.target, r.ts_ms): r.occupancy for r in samples} == want_samples
    flips = by_target(truth.alerts(t0, corrected, until))
    published = by_target(a.body(cfg.gateway.site) for a in alerts)
    assert published.keys() == flips.keys() == {("crowding", CROWD_AT), ("tailgating", TAILGATE_AT)}
    for key, bodies in published.items():
        assert [b["state"] for b in bodies] == ["raised", "cleared"]
        for body, flip in zip(bodies, flips[key], strict=True):
            assert {k: v for k, v in body.items() if k not in ("ts", "site")} == flip.body
            assert flip.at_ms <= body["ts"] < min(flip.at_ms + 1001, flip.stable_until_ms)
    for cp, state in states.items():
        assert state == truth.state(cp, state["ts"], t0, corrected)
