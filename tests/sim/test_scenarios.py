"""Fire scenarios of `community-gateway simulate --scenario` against a running gateway."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.sim import scenarios
from tests.e2e.harness import GatewayProcess, write_config
from tests.servers import MosquittoServer, wait_until


@pytest.fixture
def running(tmp_path: Path, mosquitto: MosquittoServer) -> tuple[GatewayProcess, Path]:
    cfg, api_port = write_config(tmp_path, mosquitto.port, api="none", client_id="gw-scen")
    gw = GatewayProcess(cfg, api_port, tmp_path / "gateway.log")
    gw.start()
    yield gw, cfg
    gw.terminate()


def _incidents(gw: GatewayProcess) -> list[dict[str, object]]:
    return list(gw.status()["incidents"])


def test_two_detectors_confirm_and_dispatch(running: tuple[GatewayProcess, Path]) -> None:
    gw, cfg = running
    lines: list[str] = []
    assert scenarios.run(load_config(cfg), "two-detectors", lines.append, time_scale=0.05) == 2
    wait_until(lambda: _incidents(gw) and _incidents(gw)[0]["state"] == "dispatched", 10,
               what="dispatched incident")  # fmt: skip
    assert any("pre_alarm" in line for line in lines)


def test_false_alarm_closes_the_pre_alarm_without_linkage(
    running: tuple[GatewayProcess, Path],
) -> None:
    gw, cfg = running
    scenarios.run(load_config(cfg), "false-alarm", lambda _: None, time_scale=0.05)
    wait_until(lambda: _incidents(gw) and _incidents(gw)[0]["state"] == "false_alarm", 10,
               what="false alarm verdict")  # fmt: skip
    assert _incidents(gw)[0]["team"] is None


def test_storm_in_one_zone_is_one_incident(running: tuple[GatewayProcess, Path]) -> None:
    gw, cfg = running
    assert scenarios.run(load_config(cfg), "storm", lambda _: None, time_scale=0.05) == 200
    wait_until(lambda: gw.status()["committed"] >= 200, 10, what="200 alarms stored")
    incidents = _incidents(gw)
    assert len(incidents) == 1 and len(incidents[0]["sources"]) == 2  # type: ignore[arg-type]


def test_unknown_scenario_names_the_known_ones(tmp_path: Path) -> None:
    cfg, _ = write_config(tmp_path, 1)
    with pytest.raises(scenarios.ScenarioError, match="two-detectors"):
        scenarios.build(load_config(cfg), "earthquake")
