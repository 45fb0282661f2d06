"""The traffic model: deterministic, realistic mix, contract payloads, unique timestamps."""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from gateway.config import DEFAULT_PROFILES_DIR, GatewayConfig, load_config, parse_config
from gateway.decode import Decoder, Profile, ProfileSet, load_profile
from gateway.errors import ConfigError
from gateway.ingest.topic import DEVICE_KINDS, DeviceTopic, parse_topic
from gateway.sim import MIX, SimMessage, TrafficModel
from gateway.site import SiteIndex
from gateway.sitegen import generate_site_toml

URBAN = Path(__file__).resolve().parents[2] / "deploy" / "sites" / "urban-village.toml"
T0 = 1_795_475_306_083


@cache
def urban() -> GatewayConfig:
    return load_config(URBAN)


def small_site(buildings: int = 6, entrances: int = 3) -> GatewayConfig:
    """A generated site whose devices all speak the canonical contract (no vendor rules)."""
    text = generate_site_toml(
        "urban-village",
        site_id="sim",
        buildings=buildings,
        entrances=entrances,
        seed=2,
        profiles_dir=Path("/nonexistent"),
    )
    return parse_config(text)


def canonical_decoder(cfg: GatewayConfig) -> Decoder:
    """A decoder that knows only the canonical profiles (the shipped ones when present)."""
    profiles: dict[tuple[str, str], Profile] = {}
    for kind in DEVICE_KINDS:
        path = DEFAULT_PROFILES_DIR / kind / "canonical.toml"
        profiles[(kind, "canonical")] = (
            load_profile(path)
            if path.is_file()
            else Profile(kind=kind, model="canonical", heartbeat_s=300)
        )
    return Decoder(ProfileSet(profiles), SiteIndex(cfg.site), cfg.card_salt())


def category(m: SimMessage) -> str:
    doc = json.loads(m.payload)
    if m.channel == "telemetry":
        return "smoke_telemetry"
    if m.channel == "status":
        return "status"
    return {"swipe": "access_swipe", "line_crossing": "camera_line_crossing"}.get(
        doc["event"], "other_event"
    )


def test_same_seed_gives_the_same_messages() -> None:
    cfg = small_site()
    one = list(TrafficModel(cfg, seed=5).messages(3000, T0, 500.0))
    two = list(TrafficModel(cfg, seed=5).messages(3000, T0, 500.0))
    other = list(TrafficModel(cfg, seed=6).messages(3000, T0, 500.0))
    assert one == two
    assert [m.payload for m in one] != [m.payload for m in other]


def test_mix_proportions_match_the_model() -> None:
    msgs = list(TrafficModel(urban(), seed=1).messages(60_000, T0, 2000.0))
    counts = Counter(category(m) for m in msgs)
    for name, share in MIX.items():
        assert counts[name] / len(msgs) == pytest.approx(share, abs=0.01), name
    swipes = [json.loads(m.payload) for m in msgs if category(m) == "access_swipe"]
    granted = sum(s["granted"] for s in swipes) / len(swipes)
    assert granted == pytest.approx(0.97, abs=0.015)
    inward = sum(s["dir"] == "in" for s in swipes) / len(swipes)
    assert inward == pytest.approx(0.5, abs=0.05)
    cards = {s["card"] for s in swipes}
    assert len(cards) <= 5000  # a fixed pool of residents' cards
    assert all(len(c) == 10 and c.isdigit() for c in cards)
    others = Counter(json.loads(m.payload)["event"] for m in msgs if category(m) == "other_event")
    assert set(others) == {"fault", "tamper", "test", "low_battery", "door_held_open"}


def test_mix_renormalises_when_the_site_has_no_checkpoints() -> None:
    cfg = small_site(entrances=0)
    msgs = list(TrafficModel(cfg).messages(20_000, T0, 1000.0))
    counts = Counter(category(m) for m in msgs)
    assert counts["access_swipe"] == counts["camera_line_crossing"] == 0
    expected = MIX["smoke_telemetry"] / (1 - MIX["access_swipe"] - MIX["camera_line_crossing"])
    assert counts["smoke_telemetry"] / len(msgs) == pytest.approx(expected, abs=0.015)


def test_every_topic_parses_and_names_a_provisioned_device() -> None:
    cfg = urban()
    index = SiteIndex(cfg.site)
    model = TrafficModel(cfg, seed=3)
    for m in [*model.messages(20_000, T0, 1000.0), model.alarm(T0 + 60_000)]:
        topic = parse_topic(m.topic, cfg.mqtt.root, cfg.gateway.site)
        assert isinstance(topic, DeviceTopic)
        assert (topic.building, topic.kind, topic.device, topic.channel) == (
            m.building,
            m.kind,
            m.device,
            m.channel,
        )
        assert index.place(m.building, m.kind, m.device) is not None, m.topic


def test_payloads_follow_the_contract() -> None:
    cfg = urban()
    index = SiteIndex(cfg.site)
    for m in TrafficModel(cfg, seed=4).messages(20_000, T0, 1000.0):
        doc = json.loads(m.payload)
        assert doc["ts"] == m.ts_ms
        keys = set(doc)
        name = category(m)
        if name == "smoke_telemetry":
            assert keys == {"ts", "smoke", "temp", "battery", "rssi"}
            assert 0 <= doc["smoke"] < 1 and 0 <= doc["battery"] <= 100 and doc["rssi"] < 0
        elif name == "access_swipe":
            assert keys == {"ts", "event", "card", "door", "dir", "granted"}
            assert doc["dir"] in ("in", "out")
            place = index.place(m.building, "access", m.device)
            assert place is not None
            assert index.door_checkpoint[doc["door"]] == place.checkpoint
        elif name == "camera_line_crossing":
            assert keys == {"ts", "event", "checkpoint", "in", "out", "period_s"}
            place = index.place(m.building, "camera", m.device)
            assert place is not None and doc["checkpoint"] == place.checkpoint
            assert doc["in"] >= 0 and doc["out"] >= 0
        elif name == "status":
            assert keys == {"ts", "state", "fw", "config_hash"} and doc["state"] == "online"
        elif doc["event"] == "door_held_open":
            assert m.kind == "access" and keys == {"ts", "event", "door"}
            assert doc["door"] in index.door_checkpoint
        else:
            assert m.kind == "smoke" and {"ts", "event"} <= keys <= {"ts", "event", "battery"}
        assert not m.is_alarm


def test_every_payload_decodes_with_the_canonical_profile() -> None:
    cfg = urban()
    decoder = canonical_decoder(cfg)
    model = TrafficModel(cfg, seed=8)
    msgs = [*model.messages(20_000, T0, 1000.0), model.alarm(T0 + 30_000)]
    for m in msgs:
        topic = parse_topic(m.topic, cfg.mqtt.root, cfg.gateway.site)
        assert isinstance(topic, DeviceTopic)
        decoded = decoder.decode(topic, m.payload, T0 + 3_600_000)
        assert decoded.ts_ms == m.ts_ms and decoded.ts_source == "device"
        assert decoded.is_alarm == m.is_alarm
    assert msgs[-1].is_alarm


def test_every_device_is_heard_from_within_one_roll_call() -> None:
    cfg = small_site()
    model = TrafficModel(cfg, config_hashes={"smoke": "cafe0123"})
    n = model.device_count
    msgs = list(model.messages(int(n / MIX["status"] * 1.3), T0, 1000.0))
    heard = {(m.building, m.kind, m.device) for m in msgs if m.channel == "status"}
    assert len(heard) == n == SiteIndex(cfg.site).device_count()
    smoke = {m.device for m in msgs if m.channel == "telemetry"}
    assert smoke == {d for b in cfg.site.buildings for z in b.zones for d in z.smoke}
    hashes = {m.kind: json.loads(m.payload)["config_hash"] for m in msgs if m.channel == "status"}
    assert hashes["smoke"] == "cafe0123"
    assert hashes["screen"] != "cafe0123"


def test_timestamps_follow_the_rate_when_no_device_repeats() -> None:
    msgs = list(TrafficModel(urban()).messages(500, T0, 10.0))
    assert [m.ts_ms for m in msgs] == [T0 + 100 * i for i in range(500)]


def test_device_timestamps_are_unique_and_increasing_even_at_high_rates() -> None:
    model = TrafficModel(small_site(buildings=2, entrances=1))
    msgs = list(model.messages(30_000, T0, 100_000.0))  # 100 messages per millisecond
    msgs += list(model.messages(1_000, T0, 1000.0))  # a second call starting in the past
    msgs.append(model.alarm(T0))
    assert all(m.ts_ms >= T0 + i // 100 for i, m in enumerate(msgs[:30_000]))
    last: dict[str, int] = {}
    for m in msgs:
        assert m.ts_ms > last.get(m.device, -1), m
        last[m.device] = m.ts_ms
    keys = Counter((m.device, m.channel, m.ts_ms) for m in msgs)
    assert max(keys.values()) == 1


def test_alarm_comes_from_a_detector_of_the_building() -> None:
    cfg = urban()
    index = SiteIndex(cfg.site)
    model = TrafficModel(cfg, seed=9)
    m = model.alarm(T0, building="b017")
    assert (m.building, m.kind, m.channel, m.is_alarm) == ("b017", "smoke", "event", True)
    place = index.place("b017", "smoke", m.device)
    assert place is not None and place.zone is not None and place.zone.startswith("b017-f")
    doc = json.loads(m.payload)
    assert doc["event"] == "alarm" and doc["ts"] == T0 == m.ts_ms
    with pytest.raises(ValueError, match="no simulated smoke detector in building 'b999'"):
        model.alarm(T0, building="b999")


def test_vendor_profile_devices_are_not_simulated(tmp_path: Path) -> None:
    text = generate_site_toml(
        "urban-village", site_id="sim", buildings=4, entrances=2, profiles_dir=tmp_path
    )
    cfg = parse_config(
        text
        + '[[site.profile_rules]]\nkind = "smoke"\nprefix = "SD-b001-"\nmodel = "hx-jtyjg"\n'
        + '[[site.profile_rules]]\nkind = "access"\nprefix = "AC-cp-"\nmodel = "dh-asc"\n'
    )
    msgs = list(TrafficModel(cfg).messages(5000, T0, 1000.0))
    assert not any(m.device.startswith(("SD-b001-", "AC-cp-")) for m in msgs)
    assert any(m.device.startswith("SD-b002-") for m in msgs)
    assert not any(category(m) == "access_swipe" for m in msgs)


def test_a_site_without_devices_is_a_config_error() -> None:
    cfg = parse_config('[gateway]\nid = "gw"\nsite = "empty"\n', "empty.toml")
    with pytest.raises(ConfigError, match=r"empty\.toml: the site model has no device"):
        TrafficModel(cfg)


def test_bad_rate_is_rejected() -> None:
    with pytest.raises(ValueError, match="rate_per_s"):
        next(TrafficModel(small_site()).messages(1, T0, 0.0))
