"""Atheris over the raw MQTT message path, by hand (not in CI).

    cd /work/main && PYTHONPATH=. python tests/fuzz/atheris_raw.py -max_total_time=300

Splits the fuzz input into a topic and a payload and checks the invariants of
`tests/fuzz/raw_path.py`: no exception, acked once, placed in exactly one outcome class.
"""

from __future__ import annotations

import sys

import atheris  # type: ignore[import-not-found]

with atheris.instrument_imports():
    from tests.fuzz.raw_path import ROOT, SITE_ID, check_outcome, run_raw

_PREFIXES = [f"{ROOT}/{SITE_ID}/b12/smoke/SD-1/", f"{ROOT}/{SITE_ID}/gates/access/AC-01/", ""]


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    prefix = _PREFIXES[fdp.ConsumeIntInRange(0, len(_PREFIXES) - 1)]
    topic = prefix + fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 64))
    payload = fdp.ConsumeBytes(fdp.remaining_bytes())
    items = [(topic, payload)]
    check_outcome(items, run_raw(items))


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
