"""`community-gateway` command line: run, check-config, demo, simulate, generate-site."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from pathlib import Path

from gateway.config import GatewayConfig, load_config
from gateway.errors import GatewayError

log = logging.getLogger("gateway")
GIL_SWITCH_INTERVAL_S = 0.002
# Young-generation GC threshold while running (CPython's default: 700); see run_gateway.
GC_YOUNG_THRESHOLD = 20_000


def _add_config_args(p: argparse.ArgumentParser, positional: bool = False) -> None:
    if positional:
        p.add_argument("config", type=Path, help="site config TOML file")
    else:
        p.add_argument("--config", "-c", type=Path, required=True, help="site config TOML file")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config key (repeatable), e.g. --set mqtt.port=21883",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the docs and tests)."""
    parser = argparse.ArgumentParser(prog="community-gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the gateway for one site")
    _add_config_args(p)

    p = sub.add_parser("check-config", help="validate a config file without running")
    _add_config_args(p, positional=True)

    p = sub.add_parser("demo", help="embedded broker + simulated community + live dashboard")
    p.add_argument("--duration", type=float, default=0, help="seconds to run (0: until Ctrl-C)")
    p.add_argument("--rate", type=float, default=300, help="simulated messages per second")
    p.add_argument("--api-port", type=int, default=8080, help="dashboard port (0: any free)")

    p = sub.add_parser("simulate", help="publish simulated device traffic to a broker")
    _add_config_args(p)
    p.add_argument("--rate", type=float, default=1000, help="messages per second")
    p.add_argument("--duration", type=float, default=10, help="seconds")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--scenario",
        help="play a fire scenario instead of everyday traffic: single-detector, "
        "two-detectors, callpoint, false-alarm, storm, silent-team",
    )

    p = sub.add_parser("drill", help="run a fire drill on the running gateway and report it")
    _add_config_args(p)
    p.add_argument("--building", required=True)
    p.add_argument("--zone", required=True)
    p.add_argument("--by", default="drill-operator", help="who starts the drill")
    p.add_argument("--timeout", type=float, default=None, help="seconds (default deadline + 60)")
    p.add_argument("--out", type=Path, default=Path(), help="folder for the report")

    p = sub.add_parser("token", help="create an API token (printed once) for a role")
    p.add_argument("role", choices=["viewer", "operator", "fire_team", "admin"])
    p.add_argument("name", help="who holds it, e.g. duty-room-1")
    p.add_argument("--tokens-file", type=Path, help="append the token's line to this file")

    p = sub.add_parser("incident", help="incident tools")
    isub = p.add_subparsers(dest="incident_cmd", required=True)
    e = isub.add_parser("export", help="write an incident's evidence bundle (zip)")
    _add_config_args(e)
    e.add_argument("id", help="incident id, e.g. inc-20261124-0007")
    e.add_argument("--out", type=Path, default=Path(), help="folder or .zip path")

    p = sub.add_parser("report", help="daily report (HTML, CSV, XLSX) from the spool or InfluxDB")
    _add_config_args(p)
    p.add_argument("--date", default="yesterday", help="YYYY-MM-DD, today or yesterday")
    p.add_argument("--format", default="html,csv,xlsx", help="comma-separated formats")
    p.add_argument("--out", type=Path, default=Path("reports"), help="output folder")
    p.add_argument(
        "--source",
        choices=["auto", "spool", "influx"],
        default="auto",
        help="where points come from: the spool's history, InfluxDB 1.x, or auto"
        " (the spool for the last spool.history_days days, else InfluxDB v1)",
    )

    sub.add_parser(
        "provision",
        help="generate Mosquitto accounts, ACL and listeners from the site model (--help)",
    )
    sub.add_parser(
        "generate-site", help="write a realistic site config to stdout (generate-site --help)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["provision"]:
        from gateway.provision import main as provision_main

        return provision_main(argv[1:])
    if argv[:1] == ["generate-site"]:
        from gateway.sitegen import main as sitegen_main

        return sitegen_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return _dispatch(args)
    except GatewayError as exc:
        print(f"community-gateway {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "check-config":
        from gateway.decode import ProfileSet

        cfg = load_config(args.config, args.overrides)
        ProfileSet.load(cfg.gateway.profiles_dir).check_site(cfg.site)
        _summarize(cfg)
        return 0
    if args.command == "run":
        cfg = load_config(args.config, args.overrides)
        logging.getLogger().setLevel(cfg.gateway.log_level)
        return asyncio.run(run_gateway(cfg))
    if args.command == "demo":
        from gateway.demo import run_demo

        return asyncio.run(run_demo(args.duration, args.rate, args.api_port))
    if args.command == "simulate":
        from gateway.sim import scenarios
        from gateway.sim.publisher import simulate

        cfg = load_config(args.config, args.overrides)
        if args.scenario:
            sent = scenarios.run(cfg, args.scenario)
            print(f"scenario {args.scenario}: {sent} messages published")
            return 0
        report = simulate(cfg, args.rate, args.duration, seed=args.seed, progress=True)
        print(f"sent {report.sent}, acknowledged {report.acked} in {report.elapsed_s:.1f} s")
        return 0 if report.acked == report.sent else 1
    if args.command == "token":
        from gateway.api.auth import new_token

        token, line = new_token(args.role, args.name)
        if args.tokens_file is not None:
            args.tokens_file.touch(mode=0o600, exist_ok=True)
            with args.tokens_file.open("a", encoding="utf-8") as f:
                f.write(line.rstrip("\n") + "\n")
            print(f"added {args.role} token {args.name!r} to {args.tokens_file}", file=sys.stderr)
        print(token)
        return 0
    if args.command == "incident":
        from gateway.reports import export_incident

        cfg = load_config(args.config, args.overrides)
        print(export_incident(cfg, args.id, args.out))
        return 0
    if args.command == "report":
        from gateway.reports import daily_report

        cfg = load_config(args.config, args.overrides)
        formats = args.format.split(",")
        for path in daily_report(cfg, args.date, args.out, formats, source=args.source):
            print(path)
        return 0
    if args.command == "drill":
        from gateway.fire.drill import run_drill

        cfg = load_config(args.config, args.overrides)
        final, report_path = run_drill(
            cfg, args.building, args.zone, args.by, args.timeout, args.out
        )
        print(f"drill {final['id']}: {final['state']}; report {report_path}")
        return 0
    raise AssertionError(args.command)


def _summarize(cfg: GatewayConfig) -> None:
    site = cfg.site
    n_zones = sum(len(b.zones) for b in site.buildings)
    n_smoke = sum(len(z.smoke) for b in site.buildings for z in b.zones)
    print(
        f"{cfg.source}: OK — gateway {cfg.gateway.id!r}, site {cfg.gateway.site!r}: "
        f"{len(site.buildings)} buildings, {n_zones} zones, {n_smoke} smoke detectors, "
        f"{len(site.checkpoints)} checkpoints, {len(site.fire_teams)} fire teams; "
        f"mqtt {cfg.mqtt.host}:{cfg.mqtt.port}, influx {cfg.influx.api}, spool {cfg.spool.path}"
    )


async def run_gateway(cfg: GatewayConfig) -> int:
    """Run one gateway until SIGTERM/SIGINT; exit code 0 after a clean drain."""
    from gateway import malloc
    from gateway.app import Gateway

    malloc.tune()  # before the gateway's threads exist
    # The alarm lane runs on the MQTT thread; a shorter GIL switch interval (default 5 ms)
    # bounds how long it can wait behind a batch being encoded on the event loop. Shorter
    # still (0.5 ms was tried) costs ~10 % of ingest in forced GIL hand-overs.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    gw = Gateway(cfg)
    # The site model, registry and imported modules live as long as the process: frozen,
    # the cyclic GC stops re-scanning them (a full collection took ~80 ms, several a
    # minute under load). The batch in flight holds thousands of young containers, so the
    # default young threshold promoted most of them and ran ~17 % of the gateway's CPU in
    # GC (measured with gc.callbacks, bench/README.md); at 20,000 most die young, freed by
    # reference counting, and GC time fell below 2 %.
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await gw.run(stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
