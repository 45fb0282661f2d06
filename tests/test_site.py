"""The site model's index (where is this device, which checkpoint owns this door, which
profile does it speak) and the site generator that writes the example configs."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from gateway.config import GatewayConfig, load_config, parse_config
from gateway.errors import ConfigError
from gateway.site import DevicePlace, SiteIndex
from gateway.sitegen import generate_site_toml, main

REPO = Path(__file__).resolve().parent.parent
SITE = """\
[gateway]
id = "gw-test"
site = "test"

[site]
gate_screens = ["SCR-cp-n01"]
profiles = { camera = "hik-pc" }

[[site.profile_rules]]
kind = "smoke"
prefix = "SD-b02"
model = "hx-jtyjg"

[[site.profile_rules]]
kind = "smoke"
prefix = "SD-"
model = "other"

[[site.checkpoints]]
id = "cp-n01"
building = "gates"
doors = ["cp-n01-d1", "cp-n01-d2"]
access = ["AC-cp-n01"]
cameras = ["CAM-cp-n01"]
leads_to = ["b01"]

[[site.buildings]]
id = "b01"
screens = ["SCR-b01"]
access = ["AC-b01"]

[[site.buildings.zones]]
id = "b01-f1"
floor = 1
smoke = ["SD-b01-1-1", "SD-b01-1-2"]
callpoints = ["CP-b01-1"]

[[site.buildings.zones]]
id = "b01-f2"
floor = 2
smoke = ["SD-b01-2-1"]
heat = ["HD-b01-2-1"]

[[site.buildings]]
id = "b02"
[[site.buildings.zones]]
id = "b02-f1"
floor = 1
smoke = ["SD-b02-1-1"]
"""


@pytest.fixture
def index() -> SiteIndex:
    return SiteIndex(parse_config(SITE).site)


def test_detector_place_is_its_zone_and_floor(index: SiteIndex) -> None:
    assert index.place("b01", "smoke", "SD-b01-2-1") == DevicePlace("b01-f2", 2, None)
    assert index.place("b01", "heat", "HD-b01-2-1") == DevicePlace("b01-f2", 2, None)
    assert index.place("b01", "callpoint", "CP-b01-1") == DevicePlace("b01-f1", 1, None)


def test_place_needs_building_kind_and_device_to_match(index: SiteIndex) -> None:
    assert index.place("b02", "smoke", "SD-b01-2-1") is None  # wrong building
    assert index.place("b01", "heat", "SD-b01-2-1") is None  # wrong kind
    assert index.place("b01", "smoke", "SD-b01-9-9") is None  # not provisioned


def test_checkpoint_devices_are_placed_at_their_checkpoint(index: SiteIndex) -> None:
    at_gate = DevicePlace(None, None, "cp-n01")
    assert index.place("gates", "access", "AC-cp-n01") == at_gate
    assert index.place("gates", "camera", "CAM-cp-n01") == at_gate
    assert index.place("b01", "access", "AC-b01") == DevicePlace(None, None, None)
    assert index.place("gates", "screen", "SCR-cp-n01") == DevicePlace(None, None, None)


def test_door_maps_to_its_checkpoint(index: SiteIndex) -> None:
    assert index.door_checkpoint == {"cp-n01-d1": "cp-n01", "cp-n01-d2": "cp-n01"}


def test_profile_rules_first_match_wins_then_kind_default_then_canonical(
    index: SiteIndex,
) -> None:
    assert index.profile_for("smoke", "SD-b02-1-1") == "hx-jtyjg"
    assert index.profile_for("smoke", "SD-b01-1-1") == "other"
    assert index.profile_for("camera", "CAM-cp-n01") == "hik-pc"  # [site] profiles
    assert index.profile_for("access", "AC-cp-n01") == "canonical"
    assert index.profile_for("heat", "SD-b02-1-1") == "canonical"  # rules are per kind


def test_device_count_counts_every_provisioned_device(index: SiteIndex) -> None:
    # 4 smoke + 1 heat + 1 callpoint + screen + building access + gate reader, camera, screen
    assert index.device_count() == 11
    assert index.building_ids == {"b01", "b02"}


# -- the generator -------------------------------------------------------------------------


def _load(text: str) -> GatewayConfig:
    return parse_config(text, "generated.toml")


def test_generated_urban_village_is_a_valid_complete_config() -> None:
    text = generate_site_toml("urban-village", site_id="lianhua", buildings=20, entrances=7)
    raw = tomllib.loads(text)
    assert set(raw) == {
        "gateway",
        "mqtt",
        "influx",
        "spool",
        "ingest",
        "api",
        "fire",
        "headcount",
        "vision",
        "panels",
        "site",
    }
    cfg = _load(text)
    assert cfg.gateway.site == "lianhua"
    site = cfg.site
    assert len(site.buildings) == 20
    assert len(site.checkpoints) == 7
    for b in site.buildings:
        assert [z.floor for z in b.zones] == list(range(1, b.floors + 1))
        assert all(3 <= len(z.smoke) <= 4 and len(z.callpoints) == 1 for z in b.zones)
        assert len(b.screens) == len(b.voice) == len(b.access) == 1
        assert {d for z in b.zones for d in z.egress_doors} == {f"{b.id}-d1"}
    # Each building sits behind exactly one lane entrance.
    behind = [b for cp in site.checkpoints for b in cp.leads_to]
    assert sorted(behind) == sorted(b.id for b in site.buildings)
    assert all(cp.building == "gates" for cp in site.checkpoints)


def test_generated_ids_are_readable_and_valid() -> None:
    cfg = _load(generate_site_toml("urban-village", site_id="s", buildings=3, entrances=1))
    b = cfg.site.buildings[0]
    assert b.id == "b001"
    assert b.zones[2].id == "b001-f3"
    assert b.zones[2].smoke[0] == "SD-b001-3-1"
    assert b.zones[2].callpoints == ["CP-b001-3"]
    assert (b.screens, b.voice, b.access) == (["SCR-b001"], ["VT-b001"], ["AC-b001"])
    cp = cfg.site.checkpoints[0]
    assert re.fullmatch(r"cp-[nesw]01", cp.id)
    assert cp.access == [f"AC-{cp.id}"] and cp.cameras == [f"CAM-{cp.id}"]
    assert cp.doors[0] == f"{cp.id}-d1"


def test_generated_garden_has_towers_gates_and_gate_screens() -> None:
    cfg = _load(generate_site_toml("garden", site_id="g", buildings=5, entrances=6, seed=4))
    site = cfg.site
    assert all(18 <= b.floors <= 33 for b in site.buildings)
    assert len(site.checkpoints) == 6
    assert all(cp.leads_to == [] for cp in site.checkpoints)  # perimeter gates
    assert site.gate_screens == [f"SCR-{cp.id}" for cp in site.checkpoints]
    index = SiteIndex(site)
    for cp in site.checkpoints:
        assert index.place("gates", "camera", f"CAM-{cp.id}") == DevicePlace(None, None, cp.id)


def test_fire_teams_have_all_tiers() -> None:
    cfg = _load(generate_site_toml("urban-village", site_id="s", buildings=250, entrances=9))
    teams = cfg.site.fire_teams
    assert sum(t.tier == 0 for t in teams) == 3  # a large village gets a third station
    assert {t.tier for t in teams} == {0, 1, 2}


def test_generator_is_deterministic_per_seed() -> None:
    one = generate_site_toml("urban-village", site_id="s", buildings=30, entrances=10, seed=7)
    two = generate_site_toml("urban-village", site_id="s", buildings=30, entrances=10, seed=7)
    other = generate_site_toml("urban-village", site_id="s", buildings=30, entrances=10, seed=8)
    assert one == two
    assert one != other


def test_profile_rules_only_for_profiles_that_exist(tmp_path: Path) -> None:
    bare = generate_site_toml(
        "urban-village", site_id="s", buildings=40, entrances=8, profiles_dir=tmp_path
    )
    assert _load(bare).site.profile_rules == []
    (tmp_path / "smoke").mkdir()
    (tmp_path / "smoke" / "hx-jtyjg.toml").write_text("")
    text = generate_site_toml(
        "urban-village", site_id="s", buildings=40, entrances=8, profiles_dir=tmp_path
    )
    site = _load(text).site
    assert {(r.kind, r.model) for r in site.profile_rules} == {("smoke", "hx-jtyjg")}
    index = SiteIndex(site)
    smoke = [d for b in site.buildings for z in b.zones for d in z.smoke]
    vendor = sum(index.profile_for("smoke", d) == "hx-jtyjg" for d in smoke)
    assert 0.2 <= vendor / len(smoke) <= 0.5  # a share, not all


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"site_id": "bad site"}, "site id"),
        ({"buildings": 0}, "buildings"),
        ({"entrances": -1}, "entrances"),
    ],
)
def test_generator_rejects_bad_arguments(kwargs: dict[str, object], problem: str) -> None:
    args: dict[str, object] = {"site_id": "s", "buildings": 2, "entrances": 1, **kwargs}
    with pytest.raises(ConfigError, match=problem):
        generate_site_toml("urban-village", **args)  # type: ignore[arg-type]


def test_cli_writes_a_loadable_big_site(tmp_path: Path) -> None:
    out = tmp_path / "big.toml"
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.sitegen", "--preset", "urban-village",
         "--buildings", "400", "--entrances", "300"],
        cwd=REPO, capture_output=True, check=True,
    )  # fmt: skip
    out.write_bytes(proc.stdout)
    cfg = load_config(out)
    assert len(cfg.site.buildings) == 400
    assert len(cfg.site.checkpoints) == 300
    assert {b for cp in cfg.site.checkpoints for b in cp.leads_to} == {
        b.id for b in cfg.site.buildings
    }


def test_cli_output_option_and_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "g.toml"
    assert main(["--preset", "garden", "--site-id", "xili", "-o", str(out)]) == 0
    assert load_config(out).gateway.site == "xili"
    with pytest.raises(SystemExit) as info:
        main(["--preset", "garden", "--buildings", "0"])
    assert info.value.code == 2
    assert "buildings 0" in capsys.readouterr().err


def test_checked_in_examples_match_the_generator() -> None:
    for name, preset, site_id in (
        ("urban-village.toml", "urban-village", "shazui"),
        ("garden-community.toml", "garden", "meilin-garden"),
    ):
        text = (REPO / "deploy" / "sites" / name).read_text(encoding="utf-8")
        header = text.splitlines()[1]
        n, e, seed = (int(x) for x in re.findall(r"--(?:buildings|entrances|seed) (\d+)", header))
        fresh = generate_site_toml(preset, site_id=site_id, buildings=n, entrances=e, seed=seed)
        assert text == fresh, f"deploy/sites/{name} is stale: regenerate it with{header[12:]}"
