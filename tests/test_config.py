"""Config loading: the example sites, errors that name file:line and key, overrides, paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import DEFAULT_PROFILES_DIR, apply_override, load_config, parse_config
from gateway.decode import ProfileSet
from gateway.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
SITES = REPO / "deploy" / "sites"
MINIMAL = '[gateway]\nid = "gw-test"\nsite = "test"\n'


def line_of(text: str, needle: str) -> int:
    """1-based number of the first line of `text` that contains `needle`."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in text")


def error_of(text: str, source: str = "site.toml", overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source, overrides)
    return str(info.value)


# -- the example sites ---------------------------------------------------------------------


def test_urban_village_example_loads_with_advertised_size() -> None:
    cfg = load_config(SITES / "urban-village.toml")
    site = cfg.site
    smoke = [d for b in site.buildings for z in b.zones for d in z.smoke]
    assert len(site.buildings) == 120
    assert len(site.checkpoints) == 40
    assert 2700 <= len(smoke) <= 3300
    assert all(6 <= b.floors <= 9 and len(b.zones) == b.floors for b in site.buildings)
    assert all(1 <= len(cp.doors) <= 2 and cp.leads_to for cp in site.checkpoints)
    tiers = sorted({t.tier for t in site.fire_teams})
    assert tiers == [0, 1, 2]
    assert 2 <= sum(t.tier == 0 for t in site.fire_teams) <= 3
    assert site.card_salt == "demo-salt-change-me"
    # Every building is behind some lane entrance.
    assert {b for cp in site.checkpoints for b in cp.leads_to} == {b.id for b in site.buildings}


def test_garden_community_example_loads_with_advertised_size() -> None:
    cfg = load_config(SITES / "garden-community.toml")
    site = cfg.site
    assert len(site.buildings) == 30
    assert all(18 <= b.floors <= 33 for b in site.buildings)
    assert all(len(b.zones) == b.floors for b in site.buildings)
    assert len(site.checkpoints) == 6
    assert all(cp.access and cp.cameras for cp in site.checkpoints)
    assert len(site.gate_screens) == 6


@pytest.mark.parametrize("name", ["urban-village.toml", "garden-community.toml"])
def test_example_profile_rules_name_shipped_profiles(name: str) -> None:
    cfg = load_config(SITES / name)
    assert cfg.site.profile_rules, "the examples show vendor devices"
    ProfileSet.load(DEFAULT_PROFILES_DIR).check_site(cfg.site)  # raises for a missing one


# -- errors name file, line and key --------------------------------------------------------


def test_wrong_type_names_file_line_and_key() -> None:
    text = MINIMAL + '[mqtt]\nhost = "127.0.0.1"\nport = "eighteen"\n'
    msg = error_of(text)
    assert f"site.toml:{line_of(text, 'port =')}: mqtt.port:" in msg


def test_unknown_key_typo_is_rejected_with_its_line() -> None:
    text = MINIMAL + "[fire]\nack_s = 60\narive_s = 180\n"
    msg = error_of(text)
    assert f"site.toml:{line_of(text, 'arive_s')}: fire.arive_s:" in msg
    assert "Extra inputs are not permitted" in msg


def test_unknown_section_is_rejected() -> None:
    text = MINIMAL + "[mqqt]\nport = 1\n"
    assert f"site.toml:{line_of(text, '[mqqt]')}: mqqt:" in error_of(text)


def test_bad_enum_value_lists_the_choices() -> None:
    text = MINIMAL + '[influx]\napi = "v3"\n'
    msg = error_of(text)
    assert f"site.toml:{line_of(text, 'api =')}: influx.api:" in msg
    assert "'v1', 'v2' or 'none'" in msg


def test_missing_required_key_names_it() -> None:
    msg = error_of('[gateway]\nid = "gw"\n')
    assert "gateway.site: Field required" in msg


def test_every_problem_is_reported_at_once() -> None:
    text = MINIMAL + '[mqtt]\nport = 0\n[api]\nbind = "nowhere"\n'
    msg = error_of(text)
    assert f":{line_of(text, 'port =')}: mqtt.port:" in msg
    assert f":{line_of(text, 'bind =')}: api.bind:" in msg


def test_reserved_building_id_is_rejected() -> None:
    text = MINIMAL + '[[site.buildings]]\nid = "b1"\n[[site.buildings]]\nid = "alerts"\n'
    msg = error_of(text)
    assert f"site.toml:{line_of(text, 'alerts') - 1}: site.buildings.1:" in msg
    assert "reserved" in msg


def test_bad_device_id_in_a_zone_names_the_nested_key() -> None:
    text = MINIMAL + (
        '[[site.buildings]]\nid = "b1"\n'
        '[[site.buildings.zones]]\nid = "b1-f1"\nfloor = 1\nsmoke = ["SD 1"]\n'
    )
    msg = error_of(text)
    assert f"site.toml:{line_of(text, 'smoke =')}: site.buildings.0.zones.0.smoke.0:" in msg


@pytest.mark.parametrize(
    ("body", "duplicate"),
    [
        ('[[site.buildings]]\nid = "b1"\n[[site.buildings]]\nid = "b1"\n', "building id 'b1'"),
        (
            '[[site.buildings]]\nid = "b1"\n[[site.buildings.zones]]\nid = "z"\nfloor = 1\n'
            '[[site.buildings]]\nid = "b2"\n[[site.buildings.zones]]\nid = "z"\nfloor = 1\n',
            "zone id 'z'",
        ),
        (
            '[[site.checkpoints]]\nid = "c"\nbuilding = "gates"\n'
            '[[site.checkpoints]]\nid = "c"\nbuilding = "gates"\n',
            "checkpoint id 'c'",
        ),
    ],
)
def test_duplicate_ids_are_rejected(body: str, duplicate: str) -> None:
    text = MINIMAL + '[site]\nname = "x"\n' + body
    msg = error_of(text)
    assert f"site.toml:{line_of(text, '[site]')}: site:" in msg
    assert f"{duplicate} appears twice" in msg


def test_checkpoint_leading_to_unknown_building_is_rejected() -> None:
    text = MINIMAL + (
        '[site]\nname = "x"\n[[site.buildings]]\nid = "b1"\n'
        '[[site.checkpoints]]\nid = "cp-n01"\nbuilding = "gates"\nleads_to = ["b1", "b9"]\n'
    )
    msg = error_of(text)
    assert f"site.toml:{line_of(text, '[site]')}: site:" in msg
    assert "checkpoint 'cp-n01' leads_to unknown building 'b9'" in msg


def test_malformed_toml_names_file_and_line() -> None:
    text = MINIMAL + "[mqtt]\nport = 1883\nhost = \n"
    msg = error_of(text)
    assert msg.startswith("site.toml: not valid TOML")
    assert f"line {line_of(text, 'host =')}" in msg


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="cannot read config") as info:
        load_config(missing)
    assert str(missing) in str(info.value)


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "gbk.toml"
    path.write_bytes(MINIMAL.encode() + '[site]\nname = "沙嘴村"\n'.encode("gbk"))
    with pytest.raises(ConfigError, match="not UTF-8") as info:
        load_config(path)
    assert str(path) in str(info.value)


# -- --set overrides -----------------------------------------------------------------------


def test_set_overrides_scalar_values() -> None:
    cfg = parse_config(MINIMAL, overrides=["mqtt.port=21883", "influx.api=v2", "api.enabled=false"])
    assert cfg.mqtt.port == 21883
    assert cfg.influx.api == "v2"  # a bare word is taken as a string
    assert cfg.api.enabled is False


def test_set_wins_over_the_file_and_reaches_nested_tables() -> None:
    text = MINIMAL + "[mqtt]\nport = 1883\n"
    cfg = parse_config(text, overrides=['site.profiles.smoke="hx-jtyjg"', "fire.deadline_s=240.5"])
    assert cfg.site.profiles == {"smoke": "hx-jtyjg"}
    assert cfg.fire.deadline_s == 240.5
    assert parse_config(text, overrides=["mqtt.port=2883"]).mqtt.port == 2883


def test_set_with_bad_value_names_the_override() -> None:
    msg = error_of(MINIMAL + "[mqtt]\nport = 1883\n", overrides=("mqtt.port=abc",))
    assert "--set mqtt.port: mqtt.port:" in msg


@pytest.mark.parametrize("item", ["mqtt.port", "port=1", "=1", "mqtt..port=1", ".port=1"])
def test_set_with_bad_format_is_rejected(item: str) -> None:
    with pytest.raises(ConfigError, match=r"--set .*expected section\.key=value"):
        apply_override({}, item)


def test_set_into_a_scalar_is_rejected() -> None:
    msg = error_of(MINIMAL, overrides=("gateway.id.x=1",))
    assert "--set 'gateway.id.x=1'" in msg
    assert "'id' is not a section" in msg


# -- paths ---------------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    folder = tmp_path / "etc" / "site"
    folder.mkdir(parents=True)
    (folder / "mqtt.password").write_text("s3cret\n")
    (folder / "card.salt").write_text("pepper\n")
    path = folder / "site.toml"
    path.write_text(
        MINIMAL
        + '[mqtt]\npassword_file = "mqtt.password"\ntls_ca = "/etc/ssl/ca.crt"\n'
        + '[spool]\npath = "var/spool.db"\n[site]\ncard_salt_file = "card.salt"\n'
    )
    cfg = load_config(path)
    assert cfg.spool.path == folder / "var" / "spool.db"
    assert cfg.mqtt.password_file == folder / "mqtt.password"
    assert cfg.mqtt.tls_ca == Path("/etc/ssl/ca.crt")
    assert cfg.read_secret(cfg.mqtt.password_file) == "s3cret"
    assert cfg.card_salt() == b"pepper"
    assert cfg.source == str(path)


def test_relative_path_from_set_resolves_against_the_config_folder(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(MINIMAL)
    cfg = load_config(path, ["spool.path=data/s.db"])
    assert cfg.spool.path == tmp_path / "data" / "s.db"


def test_missing_secret_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(MINIMAL + '[influx]\ntoken_file = "token"\n')
    cfg = load_config(path)
    with pytest.raises(ConfigError, match="cannot read secret file"):
        cfg.read_secret(cfg.influx.token_file)
