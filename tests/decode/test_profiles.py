"""Profile files: every shipped one loads; a bad one names its file and key."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from gateway.decode import Profile, ProfileSet, load_profile
from gateway.errors import ProfileError
from gateway.ingest.topic import DEVICE_KINDS
from gateway.site import SiteModel
from tests.decode.conftest import PROFILES_DIR, SITE


def test_every_shipped_profile_loads() -> None:
    files = sorted(PROFILES_DIR.glob("*/*.toml"))
    profiles = ProfileSet.load(PROFILES_DIR)
    assert len(profiles) == len(files) >= 11
    for path in files:
        profile = profiles.get(path.parent.name, path.stem)
        assert profile == load_profile(path)
        assert profile.heartbeat_s > 0
        assert profile.description


def test_every_kind_has_a_canonical_profile_and_the_test_site_is_covered() -> None:
    profiles = ProfileSet.load(PROFILES_DIR)
    for kind in DEVICE_KINDS:
        assert profiles.get(kind, "canonical").ts_unit == "ms"
    profiles.check_site(SiteModel.model_validate(SITE))


def test_vendor_profiles_declare_what_engines_need() -> None:
    profiles = ProfileSet.load(PROFILES_DIR)
    assert profiles.get("camera", "hik-pc").counts == "cumulative"
    assert profiles.get("camera", "canonical").counts == "period"
    assert profiles.get("access", "dh-asc").passage_event == "swipe"
    assert profiles.get("voice", "generic-amp").can_synthesize is False
    hx = profiles.get("smoke", "hx-jtyjg")
    assert (hx.ts_unit, hx.ts_field, hx.scale["smoke"]) == ("s", "time", 0.01)


def test_missing_profile_lists_the_available_models() -> None:
    profiles = ProfileSet.load(PROFILES_DIR)
    with pytest.raises(
        ProfileError,
        match=r"no firmware profile smoke/acme \(available for smoke: canonical, hx-jtyjg\)",
    ):
        profiles.get("smoke", "acme")
    site = SiteModel.model_validate({"profiles": {"heat": "acme-heat"}})
    with pytest.raises(ProfileError, match="missing firmware profiles: heat/acme-heat"):
        profiles.check_site(site)


def test_settings_are_published_as_sorted_json_with_a_stable_hash() -> None:
    profile = ProfileSet.load(PROFILES_DIR).get("smoke", "hx-jtyjg")
    payload = profile.config_payload()
    assert json.loads(payload) == profile.settings
    assert list(json.loads(payload)) == sorted(profile.settings)
    other = profile.model_copy(update={"settings": {**profile.settings, "x": 1}})
    assert profile.config_hash != other.config_hash
    assert len(profile.config_hash) == 16


BASE = 'kind = "smoke"\nmodel = "acme"\nheartbeat_s = 60\n'


def write(root: Path, text: str, rel: str = "smoke/acme.toml") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_profile_loads_with_defaults(tmp_path: Path) -> None:
    write(tmp_path, BASE)
    profile = ProfileSet.load(tmp_path).get("smoke", "acme")
    assert isinstance(profile, Profile)
    assert (profile.ts_field, profile.ts_unit, profile.battery_low) == ("ts", "ms", 20.0)
    assert profile.events[0].field == "event"


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (BASE + "colour = 1\n", "colour", "unknown key"),
        (BASE + "ts_unit = 'minutes'\n", "ts_unit", "'ms', 's', 'ns' or 'iso8601'"),
        (BASE + "battery_low = 120\n", "battery_low", "less than or equal to 100"),
        ('kind = "smoke"\nmodel = "acme"\n', "heartbeat_s", "Field required"),
        (BASE + "[fields]\nsmoke = 'a..b'\n", "fields.smoke", "not a field name or dotted path"),
        (BASE + "[fields]\nts = 'time'\n", "fields.ts", "written by the gateway itself"),
        (BASE + "[scale]\nwind = 2\n", "scale.wind", "not declared in [fields]"),
        (BASE + "[scale]\ngranted = 2\n", "scale.granted", "only float fields can be scaled"),
        (BASE + "[scale]\nsmoke = 'lots'\n", "scale.smoke", "valid number"),
        (BASE + "[values.battery]\nFULL = 'x'\n", "values.battery.FULL", "is a number"),
        (BASE + "[[events]]\nfield = 'code'\nmap = { 7 = 'fire' }\n",
         "events[0].map.7", "'fire' is not an event of kind smoke"),
        (BASE + "[[events]]\nfieled = 'code'\n", "events.0.fieled", "unknown key"),
        (BASE + "passage_event = 'wave'\n", "passage_event", "applies"),
        (BASE + "counts = 'cumulative'\n", "counts", "only applies to kind camera"),
        (BASE + "[templates]\nzone = 'z-{Zone}'\n", "templates.zone", "placeholder {zone}"),
        (BASE + "settings = 3\n", "settings", "valid dictionary"),
    ],
)  # fmt: skip
def test_invalid_profile_names_file_and_key(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as err:
        ProfileSet.load(tmp_path)
    message = str(err.value)
    assert re.match(rf"{re.escape(str(path))}(:\d+)?: ", message)
    assert key in message
    assert problem in message


def test_error_gives_the_line_of_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "vendor = 'acme'\n\n[scale]\nsmoke = 'lots'\n")
    with pytest.raises(ProfileError, match=f"^{path}:7: scale.smoke: "):
        ProfileSet.load(tmp_path)


def test_passage_event_must_be_an_access_event(tmp_path: Path) -> None:
    text = 'kind = "access"\nmodel = "acme"\nheartbeat_s = 60\npassage_event = "wave"\n'
    path = write(tmp_path, text, "access/acme.toml")
    with pytest.raises(ProfileError, match=f"^{path}: passage_event 'wave' is not an access event"):
        ProfileSet.load(tmp_path)


@pytest.mark.parametrize(
    ("rel", "text", "problem"),
    [
        ("heat/acme.toml", BASE, "kind: 'smoke' does not match its folder 'heat'"),
        ("smoke/other.toml", BASE, "model: 'acme' does not match file name 'other'"),
        ("smoke/acme.toml", BASE + "heartbeat_s = 5\n", "invalid TOML"),
        ("smoke/acme.toml", "kind = ", "invalid TOML"),
    ],
)
def test_file_level_problems(tmp_path: Path, rel: str, text: str, problem: str) -> None:
    path = write(tmp_path, text, rel)
    with pytest.raises(ProfileError, match=f"^{path}: {problem}"):
        ProfileSet.load(tmp_path)


def test_unknown_kind_folder_and_missing_root(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="profile folder does not exist"):
        ProfileSet.load(tmp_path / "nowhere")
    write(tmp_path, BASE, "lamps/acme.toml")
    with pytest.raises(ProfileError, match="lamps: unknown kind folder"):
        ProfileSet.load(tmp_path)


def test_non_utf8_profile(tmp_path: Path) -> None:
    path = tmp_path / "smoke" / "acme.toml"
    path.parent.mkdir()
    path.write_bytes(BASE.encode() + b"description = '\xff'\n")
    with pytest.raises(ProfileError, match=f"^{path}: profile is not UTF-8"):
        ProfileSet.load(tmp_path)


def test_a_new_vendor_needs_only_a_file(tmp_path: Path) -> None:
    """The docs' promise: copy the shipped profiles, add a TOML file, decode the new model."""
    from gateway.decode import Decoder
    from gateway.ingest.topic import DeviceTopic
    from gateway.site import SiteIndex

    shutil.copytree(PROFILES_DIR, tmp_path, dirs_exist_ok=True)
    write(
        tmp_path,
        'kind = "heat"\nmodel = "acme-h1"\nheartbeat_s = 300\nts_field = "meta.t"\n'
        'ts_unit = "ns"\n[fields]\ntemp = "data.tempF"\n[scale]\ntemp = 0.5555555555555556\n'
        "[offset]\ntemp = -17.77777777777778\n",
        "heat/acme-h1.toml",
    )
    site = SiteIndex(SiteModel.model_validate({"profiles": {"heat": "acme-h1"}}))
    decoder = Decoder(ProfileSet.load(tmp_path), site, b"salt")
    topic = DeviceTopic("s", "b1", "heat", "H-1", "telemetry")
    ts_ns = 1_795_475_300_000_123_456
    payload = json.dumps({"meta": {"t": ts_ns}, "data": {"tempF": 212}}).encode()
    msg = decoder.decode(topic, payload, 1_795_475_306_083)
    assert msg.fields == {"temp": pytest.approx(100.0)}
    assert (msg.ts_ms, msg.ts_source) == (ts_ns // 1_000_000, "device")
