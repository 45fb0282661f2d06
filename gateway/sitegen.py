"""Generate complete, realistic site config files (Shenzhen urban village or garden community).

The output is a whole TOML config (every section, commented defaults) that
`gateway.config.parse_config` accepts; `python -m gateway.sitegen --help` for the CLI.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, get_args

from pydantic import BaseModel

from gateway.config import DEFAULT_PROFILES_DIR, GatewayConfig
from gateway.errors import ConfigError
from gateway.ingest.topic import is_valid_name

Preset = Literal["urban-village", "garden"]
PRESETS: Final[tuple[str, ...]] = get_args(Preset)
_DEFAULTS: Final = {  # preset: (site id, buildings, entrances, site name)
    "urban-village": ("shazui", 120, 40, "沙嘴村"),
    "garden": ("meilin-garden", 30, 6, "梅林花园"),
}
# (kind, model) vendor profiles the generator may assign to a share of the devices.
_VENDOR_PROFILES: Final = (
    ("smoke", "hx-jtyjg"),
    ("access", "dh-asc"),
    ("camera", "hik-pc"),
    ("voice", "generic-amp"),
)
_SIDES: Final = (("n", "北"), ("e", "东"), ("s", "南"), ("w", "西"))


@dataclass
class _Zone:
    id: str
    floor: int
    smoke: list[str]
    callpoints: list[str]
    egress_doors: list[str]


@dataclass
class _Building:
    id: str
    name: str
    floors: int
    position_m: tuple[float, float]
    zones: list[_Zone] = field(default_factory=list)
    screens: list[str] = field(default_factory=list)
    voice: list[str] = field(default_factory=list)
    access: list[str] = field(default_factory=list)


@dataclass
class _Checkpoint:
    id: str
    name: str
    doors: list[str]
    leads_to: list[str]

    @property
    def access(self) -> list[str]:
        return [f"AC-{self.id}"]

    @property
    def cameras(self) -> list[str]:
        return [f"CAM-{self.id}"]


def generate_site_toml(
    preset: Preset,
    *,
    site_id: str,
    buildings: int,
    entrances: int,
    seed: int = 1,
    name: str | None = None,
    gateway_id: str | None = None,
    profiles_dir: Path = DEFAULT_PROFILES_DIR,
) -> str:
    """A complete config file for a generated site, deterministic for a given seed.

    Vendor profile rules are emitted only for profiles present in `profiles_dir`
    (`<kind>/<model>.toml`); without any, every device speaks the canonical contract.
    Raises ConfigError for arguments no site can have.
    """
    if preset not in PRESETS:
        raise ConfigError(f"preset {preset!r}: expected one of {', '.join(PRESETS)}")
    if not is_valid_name(site_id):
        raise ConfigError(f"site id {site_id!r} is not [A-Za-z0-9_-]{{1,64}}")
    if not 1 <= buildings <= 9999:
        raise ConfigError(f"buildings {buildings}: expected 1..9999")
    if not 0 <= entrances <= 999:
        raise ConfigError(f"entrances {entrances}: expected 0..999")
    rng = random.Random(seed)
    urban = preset == "urban-village"
    blds = _buildings(rng, buildings, urban)
    cps = _checkpoints(rng, blds, entrances, urban)
    available = {(k, m) for k, m in _VENDOR_PROFILES if (profiles_dir / k / f"{m}.toml").is_file()}
    out: list[str] = []
    smoke = sum(len(z.smoke) for b in blds for z in b.zones)
    zones = sum(len(b.zones) for b in blds)
    out += [
        f"# community-gateway site config: {name or _DEFAULTS[preset][3]} ({preset})",
        f"# Generated: python -m gateway.sitegen --preset {preset} --site-id {site_id}"
        f" --buildings {buildings} --entrances {entrances} --seed {seed}",
        f"# {len(blds)} buildings, {zones} fire zones, {smoke} smoke detectors,"
        f" {len(cps)} checkpoints.",
        "# Every key is explained in docs/configuration.md. Relative paths resolve against",
        "# this file's folder. Override any scalar at start: --set mqtt.port=21883",
        "",
    ]
    out += _settings_sections(gateway_id or f"gw-{site_id}", site_id)
    out += _site_section(
        rng, name=name or _DEFAULTS[preset][3], blds=blds, cps=cps, urban=urban, available=available
    )
    return "\n".join(out) + "\n"


def _buildings(rng: random.Random, n: int, urban: bool) -> list[_Building]:
    width = max(3, len(str(n)))
    # Handshake buildings stand ~11 m apart (8 m footprint, lanes of 2-3 m); towers ~45 m.
    pitch = 11.0 if urban else 45.0
    cols = max(1, math.ceil(math.sqrt(n * (1.5 if urban else 1.0))))
    out = []
    for i in range(n):
        bid = f"b{i + 1:0{width}d}"
        floors = rng.randint(6, 9) if urban else rng.randint(18, 33)
        row, col = divmod(i, cols)
        pos = (
            round(col * pitch + rng.uniform(-1, 1), 1),
            round(row * pitch + rng.uniform(-1, 1), 1),
        )
        b = _Building(bid, f"{i + 1}栋", floors, pos)
        door = f"{bid}-d1"
        for f in range(1, floors + 1):
            # Urban: ~3.3 per floor (stair, corridor, units); towers: the lobby has 4, upper
            # floors 2 (lift lobby, corridor).
            count = (4 if rng.random() < 1 / 3 else 3) if urban else (4 if f == 1 else 2)
            b.zones.append(
                _Zone(
                    id=f"{bid}-f{f}",
                    floor=f,
                    smoke=[f"SD-{bid}-{f}-{k}" for k in range(1, count + 1)],
                    callpoints=[f"CP-{bid}-{f}"],
                    # The building door is every floor's way out: a fire on any floor opens it.
                    egress_doors=[door],
                )
            )
        b.screens, b.voice, b.access = [f"SCR-{bid}"], [f"VT-{bid}"], [f"AC-{bid}"]
        out.append(b)
    return out


def _checkpoints(
    rng: random.Random, blds: list[_Building], n: int, urban: bool
) -> list[_Checkpoint]:
    counters = dict.fromkeys((s for s, _ in _SIDES), 0)
    xs = [b.position_m[0] for b in blds]
    ys = [b.position_m[1] for b in blds]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    out = []
    for i in range(n):
        if urban:
            # Each lane entrance encloses the run of buildings along its lane.
            lo, hi = i * len(blds) // n, (i + 1) * len(blds) // n
            behind = blds[lo : max(hi, lo + 1)]
            cx = sum(b.position_m[0] for b in behind) / len(behind)
            cy = sum(b.position_m[1] for b in behind) / len(behind)
            dist = {"n": cy - y0, "s": y1 - cy, "w": cx - x0, "e": x1 - cx}
            side = min(dist, key=lambda s: dist[s])
            leads_to = [b.id for b in behind]
        else:
            side = _SIDES[i % 4][0]
            leads_to = []  # garden gates are the perimeter of the whole compound
        counters[side] += 1
        cid = f"cp-{side}{counters[side]:02d}"
        label = dict(_SIDES)[side]
        label = f"{label}{counters[side]}号巷口" if urban else f"{label}{counters[side]}门"
        doors = [f"{cid}-d{k}" for k in range(1, (rng.randint(1, 2) if urban else 3) + 1)]
        out.append(_Checkpoint(cid, label, doors, leads_to))
    return out


def _q(value: Any) -> str:
    """A TOML literal (JSON strings, numbers and arrays are valid TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_q(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


# Comments and values that differ from the model's defaults, keyed by (section, key).
_NOTES: Final[dict[tuple[str, str], str]] = {
    ("gateway", "id"): "unique per gateway: names its MQTT session and metrics",
    ("gateway", "site"): "the {site} segment of every topic",
    ("mqtt", "host"): "the site's Mosquitto; the gateway is one client of it",
    ("mqtt", "root"): "first topic segment: {root}/{site}/{building}/{kind}/{device}/{channel}",
    ("mqtt", "session_expiry_s"): "the broker keeps QoS 1 messages while the gateway is down",
    ("mqtt", "receive_maximum"): "unacknowledged QoS 1 messages the broker may send at once",
    ("influx", "api"): '"v1" (/write), "v2" (token, org, bucket) or "none": spool keeps history',
    ("influx", "database"): "v1 only",
    ("influx", "org"): "v2 only",
    ("spool", "path"): "SQLite WAL file; the outbox and the embedded history",
    ("spool", "max_bytes"): "telemetry is evicted oldest-first beyond this; alarms never",
    ("spool", "synchronous"): '"full": an acknowledged message survives a power cut',
    ("ingest", "batch_max_ms"): "bulk lane micro-batch; alarms never wait for it",
    ("api", "bind"): "HOST:PORT of the REST API, dashboard, /metrics and /healthz",
    ("fire", "confirm_window_s"): "a second source within this window confirms a pre-alarm",
    ("fire", "verify_s"): "an unverified pre-alarm is confirmed after this",
    ("fire", "ack_s"): "no team acknowledgement: dispatch the next team",
    ("fire", "arrive_s"): "not on scene: escalate to the street command tier",
    ("fire", "deadline_s"): "the 5-minute rule: breach recorded and escalated",
}
# Optional keys shown commented out, with an example value.
_EXAMPLES: Final[dict[tuple[str, str], str]] = {
    ("gateway", "profiles_dir"): '"/etc/community-gateway/firmware_configs"',
    ("vision", "models_dir"): '"/etc/community-gateway/edge_models"',
    ("mqtt", "username"): '"gateway"',
    ("mqtt", "password_file"): '"/etc/community-gateway/mqtt.password"',
    ("mqtt", "tls_ca"): '"/etc/community-gateway/ca.crt"',
    ("mqtt", "tls_cert"): '"/etc/community-gateway/gateway.crt"',
    ("mqtt", "tls_key"): '"/etc/community-gateway/gateway.key"',
    ("mqtt", "client_id"): '"community-gateway-gw-1"',
    ("influx", "retention_policy"): '"autogen"',
    ("influx", "username"): '"gateway"',
    ("influx", "password_file"): '"/etc/community-gateway/influx.password"',
    ("influx", "token_file"): '"/etc/community-gateway/influx.token"',
}


# Defaults that are paths on the machine that generates the file: shown commented out.
_MACHINE_PATHS: Final = frozenset({"profiles_dir", "models_dir"})


def _settings_sections(gateway_id: str, site_id: str) -> list[str]:
    values = {
        ("gateway", "id"): gateway_id,
        ("gateway", "site"): site_id,
        ("spool", "path"): "/var/lib/community-gateway/spool.db",
    }
    out: list[str] = []
    for section, info in GatewayConfig.model_fields.items():
        model = info.annotation
        if section == "site" or not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        out.append(f"[{section}]")
        for key, f in model.model_fields.items():
            note = _NOTES.get((section, key)) or f.description
            comment = f"  # {note}" if note else ""
            if (section, key) in values:
                out.append(f"{key} = {_q(values[section, key])}{comment}")
            elif (section, key) in _EXAMPLES or f.default is None or key in _MACHINE_PATHS:
                example = _EXAMPLES.get((section, key), '"..."')
                out.append(f"# {key} = {example}{comment or '  # optional'}")
            elif not f.is_required():
                default = f.get_default(call_default_factory=True)
                if isinstance(default, BaseModel | dict):
                    continue
                out.append(f"{key} = {_q(default)}{comment}")
        out.append("")
    return out


def _site_section(
    rng: random.Random,
    *,
    name: str,
    blds: list[_Building],
    cps: list[_Checkpoint],
    urban: bool,
    available: set[tuple[str, str]],
) -> list[str]:
    out = [
        "[site]",
        f"name = {_q(name)}",
        "# Card numbers are stored and published only as salted hashes. Set a secret salt per",
        "# site (or card_salt_file) before going live: changing it later breaks hash continuity.",
        'card_salt = "demo-salt-change-me"',
        '# card_salt_file = "/etc/community-gateway/card.salt"',
    ]
    if not urban:
        out.append("# Screens at the gates publish under the topic building segment `gates`.")
        out.append(f"gate_screens = {_q([f'SCR-{c.id}' for c in cps])}")
    out += ["", *_profile_rules(rng, blds, cps, available)]
    out += _fire_teams(rng, blds)
    for c in cps:
        out += [
            "[[site.checkpoints]]",
            f"id = {_q(c.id)}",
            f"name = {_q(c.name)}",
            'building = "gates"  # topic segment its devices publish under',
            f"doors = {_q(c.doors)}",
            f"access = {_q(c.access)}",
            f"cameras = {_q(c.cameras)}",
            f"leads_to = {_q(c.leads_to)}" + ("" if c.leads_to else "  # perimeter gate"),
            "",
        ]
    for b in blds:
        out += [
            "[[site.buildings]]",
            f"id = {_q(b.id)}",
            f"name = {_q(b.name)}",
            f"floors = {b.floors}",
            f"position_m = {_q(list(b.position_m))}",
            f"screens = {_q(b.screens)}",
            f"voice = {_q(b.voice)}",
            f"access = {_q(b.access)}",
        ]
        for z in b.zones:
            out += [
                "[[site.buildings.zones]]",
                f"id = {_q(z.id)}",
                f"floor = {z.floor}",
                f"smoke = {_q(z.smoke)}",
                f"callpoints = {_q(z.callpoints)}",
                f"egress_doors = {_q(z.egress_doors)}",
            ]
        out.append("")
    return out


def _profile_rules(
    rng: random.Random,
    blds: list[_Building],
    cps: list[_Checkpoint],
    available: set[tuple[str, str]],
) -> list[str]:
    """Rules giving a realistic share of devices a vendor profile (refits, other installers)."""
    rules: list[tuple[str, str, str, str]] = []  # kind, prefix, model, why
    # Buildings are refitted in batches of ten ids (b040-b049): about a third of them;
    # small sites in single buildings.
    decades = sorted({b.id[:-1] for b in blds})
    groups = decades if len(decades) >= 3 else [f"{b.id}-" for b in blds]
    sizes = {g: sum(1 for b in blds if f"{b.id}-".startswith(g)) for g in groups}
    rng.shuffle(groups)
    picked, share, target = [], 0, len(blds) / 3
    for g in groups:
        if share + sizes[g] <= target * 1.1 or (share == 0 and sizes[g] <= len(blds) / 2):
            picked.append(g)
            share += sizes[g]
    for g in sorted(picked):
        rules.append(("smoke", f"SD-{g}", "hx-jtyjg", f"{_label(g)}: refitted with HX detectors"))
    rest = [g for g in groups if g not in picked]
    for g in sorted(rest[: max(1, len(picked) // 2)]):
        rules.append(("voice", f"VT-{g}", "generic-amp", f"{_label(g)}: plain amplifiers"))
    sides = sorted({c.id[3] for c in cps})
    if len(sides) >= 2:  # one side's gates came from another installer
        rules.append(("access", f"AC-cp-{sides[-1]}", "dh-asc", "readers of that side's gates"))
        rules.append(("camera", f"CAM-cp-{sides[0]}", "hik-pc", "counting cameras of that side"))
    out = [
        "# Firmware profiles (firmware_configs/<kind>/<model>.toml): the first rule whose kind",
        "# and id prefix match wins; every other device speaks the canonical contract.",
    ]
    for kind, prefix, model, why in rules:
        if (kind, model) in available:
            out += [
                "[[site.profile_rules]]",
                f"kind = {_q(kind)}",
                f"prefix = {_q(prefix)}  # {why}",
                f"model = {_q(model)}",
                "",
            ]
    return out if len(out) > 2 else []


def _label(prefix: str) -> str:
    return f"building {prefix[:-1]}" if prefix.endswith("-") else f"buildings {prefix}x"


def _fire_teams(rng: random.Random, blds: list[_Building]) -> list[str]:
    xs = [b.position_m[0] for b in blds]
    ys = [b.position_m[1] for b in blds]
    x1, y1 = max(xs), max(ys)
    count = 3 if len(blds) >= 200 else 2
    names = [("mfs-north", "北片微型消防站"), ("mfs-south", "南片微型消防站")]
    names.append(("mfs-central", "中心微型消防站"))
    ys_at = [0.0, y1, y1 / 2]
    teams = [
        (tid, label, 0, (round(x1 * rng.uniform(0.3, 0.7), 1), round(ys_at[i], 1)))
        for i, (tid, label) in enumerate(names[:count])
    ]
    teams.append(("street-command", "街道消防指挥", 1, (round(x1 + 600.0, 1), -400.0)))
    teams.append(("district-fire", "区消防救援大队", 2, (round(x1 + 2500.0, 1), -1800.0)))
    out = ["# Dispatch order: nearest tier-0 micro fire station first, then tier 1, then 2."]
    for tid, label, tier, pos in teams:
        out += [
            "[[site.fire_teams]]",
            f"id = {_q(tid)}",
            f"name = {_q(label)}",
            f"tier = {tier}",
            f"position_m = {_q(list(pos))}",
            "",
        ]
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI: print a generated site config to stdout (or `--output FILE`)."""
    parser = argparse.ArgumentParser(
        prog="python -m gateway.sitegen", description="Generate a complete site config file."
    )
    parser.add_argument("--preset", choices=PRESETS, required=True)
    parser.add_argument("--site-id", help="topic {site} segment (default: per preset)")
    parser.add_argument("--buildings", type=int, help="number of buildings (default: per preset)")
    parser.add_argument("--entrances", type=int, help="enclosed entrances / gates")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--name", help="the site's display name")
    parser.add_argument("--gateway-id", help="default: gw-<site-id>")
    parser.add_argument("--output", "-o", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    site_id, n_buildings, n_entrances, _ = _DEFAULTS[args.preset]
    try:
        text = generate_site_toml(
            args.preset,
            site_id=args.site_id or site_id,
            buildings=n_buildings if args.buildings is None else args.buildings,
            entrances=n_entrances if args.entrances is None else args.entrances,
            seed=args.seed,
            name=args.name,
            gateway_id=args.gateway_id,
        )
    except ConfigError as exc:
        parser.error(str(exc))
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
