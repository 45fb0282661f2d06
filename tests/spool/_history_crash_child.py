"""Child of test_history_crash.py: commits numbered batches of report points and forwards
them (moving them to the history) until killed, printing each number once forwarded.

argv: spool path, first batch number, synchronous ("full" | "normal").
"""

from __future__ import annotations

import sys
from pathlib import Path

from gateway.spool import Spool, SpoolRow

ROWS = 200


def batch(number: int) -> list[SpoolRow]:
    return [
        SpoolRow(1, number, number, f"occupancy,b={number},i={i},site=s occupancy={i}i {number}")
        for i in range(ROWS)
    ]


def main() -> None:
    path, first, sync = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    spool = Spool(path, max_bytes=1 << 30, max_age_h=1e6, synchronous=sync)  # type: ignore[arg-type]
    print("ready", flush=True)
    number = first
    while True:
        spool.commit_batch(batch(number))
        while rows := spool.next_batch(75):
            spool.mark_forwarded([r.id for r in rows])
        print(number, flush=True)
        number += 1


if __name__ == "__main__":
    main()
