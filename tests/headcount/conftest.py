"""A small site with one checkpoint of every kind the counting rules tell apart."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway.site import SiteModel

# 03:58:00 in Shanghai: a 04:00 daily reset comes two minutes into a test.
START_MS = int(datetime(2026, 11, 24, 3, 58, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()) * 1000

SITE: dict[str, Any] = {
    "buildings": [{"id": "b1", "occupancy_limit": 6}, {"id": "b2"}, {"id": "b3"}],
    "checkpoints": [
        # perimeter, reader + camera: counts by camera, tailgating watched
        {
            "id": "g1",
            "building": "gates",
            "doors": ["g1-d1"],
            "access": ["AC-g1"],
            "cameras": ["CAM-g1"],
            "inflow_limit_per_min": 4,
            "tailgate_min_count": 1,
        },
        # perimeter, reader only: counts granted passages
        {"id": "g2", "building": "gates", "doors": ["g2-d1"], "access": ["AC-g2"]},
        # building door, reader only
        {"id": "d1", "building": "b1", "doors": ["d1-d1"], "leads_to": ["b1"]},
        # building door, camera only
        {"id": "c1", "building": "b1", "cameras": ["CAM-c1"], "leads_to": ["b1"]},
        # lane to several buildings: site only
        {"id": "m1", "building": "gates", "cameras": ["CAM-m1"], "leads_to": ["b2", "b3"]},
        # behind the perimeter: its building only
        {
            "id": "i1",
            "building": "b2",
            "access": ["AC-i1"],
            "cameras": ["CAM-i1"],
            "leads_to": ["b2"],
            "inside_perimeter": True,
            "tailgate_ratio": 2.0,
        },
        # no device listed: counts whatever camera counts arrive
        {"id": "e1", "building": "gates"},
    ],
}


def site_model(**changes: Any) -> SiteModel:
    """The test site, with top-level keys replaced."""
    return SiteModel.model_validate({**SITE, **changes})
