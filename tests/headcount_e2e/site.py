"""The site of the morning-rush tests: the example urban village with two alert limits."""

from __future__ import annotations

from pathlib import Path
from typing import Final

SITE_TOML: Final = Path(__file__).resolve().parents[2] / "deploy" / "sites" / "urban-village.toml"
CROWD_AT: Final = "cp-n01"
TAILGATE_AT: Final = "cp-n02"
LIMITS: Final = {
    CROWD_AT: "inflow_limit_per_min = 30",
    TAILGATE_AT: "tailgate_min_count = 3\ntailgate_ratio = 1.5",
}
LATENESS_S: Final = 10  # whole buckets: which windows start-up writes follows from its bucket
INTERVAL_S: Final = 10  # occupancy sampled every bucket: more samples to compare
# `[headcount]` of the tests: no daily reset in the middle of a run.
HEADCOUNT: Final = (
    f"headcount.lateness_s={LATENESS_S}",
    'headcount.daily_reset=""',
    f"headcount.occupancy_interval_s={INTERVAL_S}",
)


def site_copy(tmp: Path) -> Path:
    """The example site with the rush's alert limits on two of its checkpoints."""
    text = SITE_TOML.read_text(encoding="utf-8")
    for cp, keys in LIMITS.items():
        anchor = f'id = "{cp}"\n'
        assert text.count(anchor) == 1, f"{SITE_TOML}: checkpoint {cp} not found once"
        text = text.replace(anchor, f"{anchor}{keys}\n")
    path = tmp / "urban-village.toml"
    path.write_text(text, encoding="utf-8")
    return path
