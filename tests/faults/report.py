"""Per-fault numbers: messages sent / stored / lost / duplicated, printed and kept as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class FaultResult:
    """What one fault test measured; `extra` holds fault-specific numbers (drain rate, ...)."""

    fault: str
    sent: int
    stored: int
    lost: int
    duplicated: int
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        more = " ".join(f"{k}={v}" for k, v in self.extra.items())
        return (
            f"{self.fault:<24} sent={self.sent:<6} stored={self.stored:<6} lost={self.lost:<4}"
            f" duplicated={self.duplicated:<4} {self.seconds:6.1f}s {more}"
        )


class FaultReport:
    """Collects the results of a session; written to `path` after every record."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.results: list[FaultResult] = []

    def record(self, result: FaultResult) -> FaultResult:
        self.results.append(result)
        print(f"\nFAULT {result.line()}")
        self.path.write_text(
            json.dumps([asdict(r) for r in self.results], indent=2, ensure_ascii=False),
            encoding="utf-8",
        )
        return result

    def summary(self) -> list[str]:
        return [r.line() for r in self.results]
