"""The vendor encoder inverts the decoder: canonical → vendor payload → the same canonical."""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateway.config import DEFAULT_PROFILES_DIR, GatewayConfig, load_config, parse_config
from gateway.decode import EVENTS, Decoder, DeviceMessage, Profile, ProfileSet
from gateway.decode.profiles import EventSource
from gateway.errors import DecodeError
from gateway.ingest.topic import DeviceTopic, parse_topic
from gateway.sim import SimMessage, TrafficModel
from gateway.sim.vendor import EncodeError, VendorEncoder, VendorTraffic
from gateway.site import Building, Checkpoint, SiteIndex, SiteModel, Zone
from gateway.sitegen import generate_site_toml

URBAN = Path(__file__).resolve().parents[2] / "deploy" / "sites" / "urban-village.toml"
T0 = 1_795_475_306_083
SALT = b"test-salt"
PROFILES = ProfileSet.load(DEFAULT_PROFILES_DIR)
VENDOR = sorted((p.kind, p.model) for p in PROFILES if p.model != "canonical")
# Where each kind's device sits in `site()`: (building, device).
DEVICE = {
    "smoke": ("b1", "SD-1"),
    "heat": ("b1", "HD-1"),
    "callpoint": ("b1", "CP-1"),
    "screen": ("b1", "SC-1"),
    "voice": ("b1", "VT-1"),
    "access": ("gates", "AC-1"),
    "camera": ("gates", "CAM-1"),
}
# Events a shipped vendor profile has no code for (the simulator emits none of them).
INEXPRESSIBLE = {
    ("access", "dh-asc"): {"passage"},
    ("camera", "hik-pc"): {"people_count", "fire", "smoke"},
    ("smoke", "hx-jtyjg"): set(),
}
SIMULATED_EVENTS = {
    "smoke": {"alarm", "fault", "tamper", "test", "low_battery"},
    "access": {"swipe", "door_held_open"},
    "camera": {"line_crossing"},
}


def site(profiles: dict[str, str], rules: bool = False) -> SiteIndex:
    zone = Zone(id="b1-f1", floor=1, smoke=["SD-1"], heat=["HD-1"], callpoints=["CP-1"])
    model = SiteModel(
        buildings=[Building(id="b1", zones=[zone], screens=["SC-1"], voice=["VT-1"])],
        checkpoints=[
            Checkpoint(
                id="cp-1",
                building="gates",
                doors=["AC-1-door-0", "AC-1-door-1"],
                access=["AC-1"],
                cameras=["CAM-1"],
            )
        ],
        profiles=profiles,
    )
    return SiteIndex(model)


def topic(kind: str, channel: str) -> DeviceTopic:
    building, device = DEVICE[kind]
    return DeviceTopic("s", building, kind, device, channel)


numbers = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
readings = st.fixed_dictionaries(
    {},
    optional={
        "smoke": st.floats(min_value=0, max_value=20, allow_nan=False),
        "temp": st.one_of(numbers, st.floats(-40, 90).map(lambda t: round(t, 1))),
        "battery": st.integers(0, 100),
        "rssi": st.integers(-130, -20),
    },
)
stamps = st.one_of(
    st.integers(1_000_000_000_000, T0),
    st.integers(1_000_000_000, T0 // 1000).map(lambda s: s * 1000),
)
name = st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True)
door = st.integers(0, 31).map(lambda k: f"AC-1-door-{k}")
unit = st.floats(min_value=0, max_value=1, allow_nan=False)
count = st.integers(0, 2**53)
EXTRA: dict[str, Any] = {
    "swipe": {"door": door, "granted": st.booleans()},
    "passage": {"door": door},
    "door_forced": {"door": door},
    "door_held_open": {"door": door},
    "line_crossing": {"checkpoint": st.just("cp-1"), "in": count, "out": count},
    "people_count": {"zone": name, "count": count},
    "fire": {"zone": name, "confidence": unit},
    "smoke": {"zone": name, "confidence": unit},
    "team_seen": {"team": name, "confidence": unit},
}
OPTIONAL: dict[str, Any] = {
    "swipe": {
        "card": st.from_regex(r"[0-9A-F]{4,16}", fullmatch=True),
        "dir": st.sampled_from(["in", "out"]),
    },
    "passage": {"card": st.text(min_size=1, max_size=12), "granted": st.booleans()},
    "line_crossing": {"period_s": st.floats(1, 600), "retransmission": st.booleans()},
    "team_seen": {"member": st.text(min_size=1, max_size=12), "checkpoint": st.just("cp-1")},
}


def canonical(channel: str, event: str | None) -> st.SearchStrategy[dict[str, Any]]:
    """Contract payloads of one channel (and event) with a `ts` and random readings."""
    if channel == "status":
        extra = st.fixed_dictionaries(
            {"state": st.sampled_from(["online", "offline", "degraded"])},
            optional={"fw": name, "config_hash": st.from_regex(r"[0-9a-f]{16}", fullmatch=True)},
        )
    elif channel == "ack":
        extra = st.fixed_dictionaries(
            {"cmd_id": name, "ok": st.booleans()}, optional={"error": st.text(max_size=30)}
        )
    elif event is not None:
        extra = st.fixed_dictionaries(
            {"event": st.just(event), **EXTRA.get(event, {})}, optional=OPTIONAL.get(event, {})
        )
    else:
        extra = st.just({})
    return st.builds(lambda ts, r, e: {"ts": ts, **r, **e}, stamps, readings, extra)


def decode_both(kind: str, model: str, channel: str, doc: dict[str, Any]) -> tuple[Any, ...]:
    """(vendor payload, decoded through the vendor profile, canonical decoded canonically)."""
    vendor_site = site({kind: model})
    payload = VendorEncoder(PROFILES, vendor_site).encode(kind, DEVICE[kind][1], channel, doc)
    t = topic(kind, channel)
    received = int(doc["ts"]) + 1000
    got = Decoder(PROFILES, vendor_site, SALT).decode(t, payload, received)
    want = Decoder(PROFILES, site({}), SALT).decode(t, json.dumps(doc).encode(), received)
    return payload, got, want


def assert_same(got: DeviceMessage, want: DeviceMessage, cumulative: bool) -> None:
    assert (got.ts_ms, got.ts_source, got.event, got.tags) == (
        want.ts_ms,
        want.ts_source,
        want.event,
        want.tags,
    )
    fields, expected = dict(got.fields), dict(want.fields)
    if got.event == "line_crossing":
        assert fields.pop("cumulative") is cumulative
        expected.pop("cumulative")
    assert fields.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float):
            assert fields[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
        else:
            assert fields[key] == value and type(fields[key]) is type(value), key


def cases() -> list[Any]:
    out = []
    for p in sorted(PROFILES, key=lambda p: (p.kind, p.model)):
        skip = INEXPRESSIBLE.get((p.kind, p.model), set())
        out += [pytest.param(p.kind, p.model, ch, None, id=f"{p.kind}/{p.model}:{ch}")
                for ch in ("telemetry", "status", "ack")]  # fmt: skip
        out += [
            pytest.param(p.kind, p.model, "event", ev, id=f"{p.kind}/{p.model}:{ev}")
            for ev in sorted(EVENTS[p.kind] - skip)
        ]
    return out


@pytest.mark.parametrize(("kind", "model", "channel", "event"), cases())
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_shipped_profile_round_trips(
    kind: str, model: str, channel: str, event: str | None, data: st.DataObject
) -> None:
    doc = data.draw(canonical(channel, event))
    payload, got, want = decode_both(kind, model, channel, doc)
    assert_same(got, want, PROFILES.get(kind, model).counts == "cumulative")
    if model == "canonical":
        assert json.loads(payload) == doc  # the contract's own profile: nothing to translate


def test_the_tested_events_cover_what_the_simulator_emits() -> None:
    tested = {(c.values[0], c.values[1], c.values[3]) for c in cases()}
    for kind, model in VENDOR:
        for event in SIMULATED_EVENTS.get(kind, set()):
            assert (kind, model, event) in tested
    assert len(VENDOR) == 4  # hx-jtyjg, generic-amp, dh-asc, hik-pc: all are covered above


@pytest.mark.parametrize(("kind", "model"), sorted(INEXPRESSIBLE))
def test_an_event_without_a_vendor_code_is_an_encode_error(kind: str, model: str) -> None:
    encoder = VendorEncoder(PROFILES, site({kind: model}))
    for event in sorted(EVENTS[kind]):
        doc = {"ts": T0, "event": event}
        if event in INEXPRESSIBLE[(kind, model)]:
            with pytest.raises(EncodeError, match=f"{kind}/{model}: no vendor event code"):
                encoder.encode(kind, DEVICE[kind][1], "event", doc)
        else:
            assert encoder.encode(kind, DEVICE[kind][1], "event", doc)
    with pytest.raises(EncodeError, match="event 'party' is not one of"):
        encoder.encode(kind, DEVICE[kind][1], "event", {"event": "party"})


@pytest.mark.parametrize(
    ("kind", "model", "channel", "doc", "vendor"),
    [
        # The examples in the profiles' own comments (and docs/profiles.md).
        (
            "smoke",
            "hx-jtyjg",
            "telemetry",
            {"ts": 1795475306000, "smoke": 0.12, "temp": 24.5, "battery": 87, "rssi": -71},
            {"time": 1795475306, "smokeDensity": 12, "temperature": 245, "batteryLevel": 87,
             "signal": -71},
        ),
        (
            "access",
            "dh-asc",
            "event",
            {"ts": 1700000000000, "event": "swipe", "card": "A1B2C3D4", "door": "AC-1-door-0",
             "dir": "in", "granted": True},
            {"UTC": 1700000000, "Code": "AccessControl", "CardNo": "A1B2C3D4", "Door": 0,
             "Type": "Entry", "Status": 1},
        ),
        (
            "camera",
            "hik-pc",
            "event",
            {"ts": 1714551300000, "event": "line_crossing", "in": 1203, "out": 988},
            {"dateTime": "2024-05-01T08:15:00.000+00:00", "eventType": "PeopleCounting",
             "peopleCounting": {"enter": 1203, "exit": 988}},
        ),
        (
            "camera",
            "hik-pc",
            "event",
            {"ts": 1714551300000, "event": "team_seen", "team": "mfs-north", "confidence": 0.935,
             "member": "E0042"},
            {"dateTime": "2024-05-01T08:15:00.000+00:00", "eventType": "FaceMatch",
             "faceMatch": {"faceLibName": "mfs-north", "similarity": 93.5, "employeeNo": "E0042"}},
        ),
        (
            "voice",
            "generic-amp",
            "status",
            {"ts": 1700000000123, "state": "online", "fw": "3.1"},
            {"ts": 1700000000123, "state": "online", "firmware": "3.1"},
        ),
    ],
)  # fmt: skip
def test_payloads_look_like_the_vendors(
    kind: str, model: str, channel: str, doc: dict[str, Any], vendor: dict[str, Any]
) -> None:
    payload = VendorEncoder(PROFILES, site({kind: model})).encode(
        kind, DEVICE[kind][1], channel, doc
    )
    assert json.loads(payload) == vendor


KITCHEN_SINK = Profile(
    kind="heat",
    model="kitchen-sink",
    ts_field="meta.t",
    ts_unit="ns",
    heartbeat_s=60,
    fields={"temp": "data.t", "battery": "pwr.level", "fw": "info.ver", "rssi": "rf"},
    scale={"temp": 0.5, "rssi": -1.0},
    offset={"temp": -40.0},
    values={"battery": {"255": 100.0, "254": 0.0}, "temp": {"-1": -999.0}},
    templates={"fw": "v{info.ver}"},
    events=(
        EventSource(field="evt.code", map={"7": "alarm", "8": "clear", "9": "fault"}),
        EventSource(field="event"),
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    doc=canonical("telemetry", None),
    event=st.sampled_from(sorted(EVENTS["heat"])),
    fw=name,
    special=st.sampled_from([None, ("battery", 100), ("battery", 0), ("temp", -539.5)]),
)
def test_every_mapping_feature_inverts(
    doc: dict[str, Any], event: str, fw: str, special: tuple[str, float] | None
) -> None:
    """ns in a nested path, scale+offset, value maps (also after scaling), templates, a
    numeric event code and a fallback event source."""
    profiles = ProfileSet({("heat", "kitchen-sink"): KITCHEN_SINK,
                           ("heat", "canonical"): PROFILES.get("heat", "canonical")})  # fmt: skip
    vendor_site, plain = site({"heat": "kitchen-sink"}), site({})
    encoder = VendorEncoder(profiles, vendor_site)
    if special is not None:
        doc[special[0]] = special[1]
    else:
        assume(doc.get("temp") != -40.5)  # what the vendor's code -1 would mean: unsayable
    for channel, extra in (
        ("telemetry", {}),
        ("status", {"fw": f"v{fw}"}),
        ("event", {"event": event}),
    ):
        full = {**doc, **extra}
        payload = encoder.encode("heat", "HD-1", channel, full)
        t = topic("heat", channel)
        received = int(doc["ts"]) + 1000
        got = Decoder(profiles, vendor_site, SALT).decode(t, payload, received)
        want = Decoder(profiles, plain, SALT).decode(t, json.dumps(full).encode(), received)
        assert_same(got, want, False)
        vendor = json.loads(payload)
        assert vendor["meta"]["t"] == doc["ts"] * 1_000_000
        assert not {"ts", "temp", "battery", "rssi", "fw"} & vendor.keys()
    assert encoder.encode("heat", "HD-1", "status", {"fw": "1.0"}) == b"{}"  # no "v": dropped


@cache
def urban_stream() -> tuple[list[SimMessage], GatewayConfig, SiteIndex]:
    cfg = load_config(URBAN)
    model = TrafficModel(cfg, seed=4, profiles=PROFILES)
    msgs = list(model.messages(30_000, T0, 1000.0))
    msgs += [model.alarm(T0 + 60_000, building=b) for b in ("b031", "b052", "b001")]
    return msgs, cfg, SiteIndex(cfg.site)


def test_the_urban_village_stream_decodes_without_errors() -> None:
    msgs, cfg, index = urban_stream()
    decoder = Decoder(PROFILES, index, cfg.card_salt())
    seen: Counter[tuple[str, str, str | None]] = Counter()
    errors = []
    totals: dict[str, tuple[int, int]] = {}
    for m in msgs:
        model = index.profile_for(m.kind, m.device)
        t = parse_topic(m.topic, cfg.mqtt.root, cfg.gateway.site)
        assert isinstance(t, DeviceTopic)
        try:
            d = decoder.decode(t, m.payload, T0 + 3_600_000)
        except DecodeError as exc:
            errors.append((m.topic, m.payload, str(exc)))
            continue
        assert (d.ts_ms, d.ts_source, d.is_alarm) == (m.ts_ms, "device", m.is_alarm)
        seen[(m.kind, model, d.event or m.channel)] += 1
        if model == "hik-pc" and d.event == "line_crossing":
            now = (int(d.fields["in"]), int(d.fields["out"]))
            before = totals.get(m.device, (0, 0))
            assert now[0] >= before[0] and now[1] >= before[1]  # cumulative counters
            totals[m.device] = now
            assert d.tags["checkpoint"] == index.places[(m.building, "camera", m.device)].checkpoint
        if model == "dh-asc" and d.event is not None:
            place = index.places[(m.building, "access", m.device)]
            assert d.tags["checkpoint"] == place.checkpoint
    assert errors == []
    for key in [
        ("smoke", "hx-jtyjg", "telemetry"),
        ("smoke", "hx-jtyjg", "status"),
        ("smoke", "hx-jtyjg", "alarm"),
        ("smoke", "hx-jtyjg", "low_battery"),
        ("voice", "generic-amp", "status"),
        ("access", "dh-asc", "swipe"),
        ("access", "dh-asc", "door_held_open"),
        ("camera", "hik-pc", "line_crossing"),
    ]:
        assert seen[key] > 0, key


def test_vendor_payloads_are_not_canonical_in_the_stream() -> None:
    msgs, _cfg, index = urban_stream()
    for m in msgs:
        doc = json.loads(m.payload)
        model = index.profile_for(m.kind, m.device)
        if model in ("hx-jtyjg", "dh-asc", "hik-pc"):
            assert "ts" not in doc and "event" not in doc, m
        elif model == "canonical":
            assert doc["ts"] == m.ts_ms


def test_readers_name_site_doors_they_cannot_say_by_channel() -> None:
    cfg = load_config(URBAN)
    traffic = VendorTraffic(PROFILES, SiteIndex(cfg.site))
    assert traffic.door_names("access", "AC-cp-w01", ["cp-w01-d1", "cp-w01-d2"]) == [
        "AC-cp-w01-door-0",
        "AC-cp-w01-door-1",
    ]
    # A name the template can say is kept, and canonical readers keep every name.
    assert traffic.door_names("access", "AC-cp-w01", ["x", "AC-cp-w01-door-7"]) == [
        "AC-cp-w01-door-0",
        "AC-cp-w01-door-7",
    ]
    assert traffic.door_names("access", "AC-cp-n01", ["cp-n01-d1"]) == ["cp-n01-d1"]


def test_a_site_without_vendor_devices_gives_todays_stream_byte_for_byte() -> None:
    text = generate_site_toml(
        "urban-village", site_id="sim", buildings=4, entrances=2, seed=2,
        profiles_dir=Path("/nonexistent"),
    )  # fmt: skip
    cfg = parse_config(text)
    plain = TrafficModel(cfg, seed=5)
    vendored = TrafficModel(cfg, seed=5, profiles=PROFILES)
    assert list(plain.messages(5000, T0, 1000.0)) == list(vendored.messages(5000, T0, 1000.0))
    assert plain.alarm(T0 + 9000) == vendored.alarm(T0 + 9000)


def test_vendor_devices_report_their_own_profiles_config_hash() -> None:
    cfg = load_config(URBAN)
    hashes = {p.kind: p.config_hash for p in PROFILES if p.model == "canonical"}
    model = TrafficModel(cfg, seed=2, config_hashes=hashes, profiles=PROFILES)
    index = SiteIndex(cfg.site)
    statuses = [m for m in model.messages(40_000, T0, 1000.0) if m.channel == "status"]
    by_model = {}
    for m in statuses:
        by_model[(m.kind, index.profile_for(m.kind, m.device))] = json.loads(m.payload)[
            "config_hash"
        ]
    assert by_model[("smoke", "hx-jtyjg")] == PROFILES.get("smoke", "hx-jtyjg").config_hash
    assert by_model[("smoke", "canonical")] == hashes["smoke"]
