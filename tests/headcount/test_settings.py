"""`[headcount]` settings and the site-model keys the engine reads: errors name the key."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.clock import ManualClock
from gateway.headcount import HeadcountEngine, HeadcountError, HeadcountSettings
from tests.headcount.conftest import site_model


def test_defaults_are_usable() -> None:
    settings = HeadcountSettings()
    assert (settings.bucket_s, settings.lateness_s, settings.timezone) == (10, 120, "Asia/Shanghai")
    assert settings.reset_time() == (4, 0)
    assert HeadcountSettings(daily_reset=None).reset_time() is None
    assert HeadcountSettings.model_validate({"daily_reset": ""}).reset_time() is None


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("bucket_s", 7, "bucket_s must divide 60 seconds"),
        ("timezone", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("daily_reset", "25:00", "must be local time HH:MM"),
        ("daily_reset", "4:00", "must be local time HH:MM"),
        ("clear_fraction", 1.0, "less than 1"),
        ("lateness_s", -1, "greater than or equal to 0"),
        ("tailgate_window", "2m", "'1m', '5m' or '1h'"),
        ("surprise", 1, "Extra inputs are not permitted"),
    ],
)
def test_bad_setting_names_the_key(key: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        HeadcountSettings.model_validate({key: value})
    assert key in str(info.value)
    assert message in str(info.value)


def test_site_model_limits_are_validated() -> None:
    with pytest.raises(ValidationError, match="inflow_limit_per_min"):
        site_model(checkpoints=[{"id": "g", "building": "gates", "inflow_limit_per_min": 0}])
    with pytest.raises(ValidationError, match="occupancy_limit"):
        site_model(buildings=[{"id": "b1", "occupancy_limit": -5}])


def test_a_building_named_site_is_refused() -> None:
    site = site_model(buildings=[{"id": "site"}], checkpoints=[])
    with pytest.raises(HeadcountError, match="building id 'site' clashes"):
        HeadcountEngine(site, HeadcountSettings(), ManualClock(), site_id="s")
