"""Child of test_crash.py: commits numbered batches until killed, printing each committed number.

argv: spool path, first batch number, synchronous ("full" | "normal"), max_bytes.
Each batch: KEPT rows of classes 1 and 2 (never evicted) and TELEMETRY rows of class 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gateway.spool import DeadLetter, Spool, SpoolRow

KEPT = 100
TELEMETRY = 400


def batch(number: int) -> list[SpoolRow]:
    rows = []
    for i in range(KEPT + TELEMETRY):
        cls = (1 + i % 2) if i < KEPT else 0
        rows.append(
            SpoolRow(cls, number, number, f'crash,b={number},i={i} pad="{"x" * 60}" {number}')
        )
    return rows


def main() -> None:
    path, first, sync, max_bytes = (
        Path(sys.argv[1]),
        int(sys.argv[2]),
        sys.argv[3],
        int(sys.argv[4]),
    )
    spool = Spool(path, max_bytes=max_bytes, max_age_h=1e6, synchronous=sync)  # type: ignore[arg-type]
    print("ready", flush=True)
    number = first
    while True:
        spool.commit_batch(batch(number), [DeadLetter(number, f"b/{number}", b"x", "r", "decode")])
        print(number, flush=True)
        number += 1


if __name__ == "__main__":
    main()
