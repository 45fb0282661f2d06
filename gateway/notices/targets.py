"""Which terminals a notice goes to: named ones, a building's, or the site's gate screens.

The lookups are the fire engine's (`SiteLinkage.screens`, `.voice`), so a notice reaches
exactly the terminals a fire in the same building would.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from gateway.fire.linkage import GATES_BUILDING, SiteLinkage, Terminal
from gateway.notices.spec import NoticeError

KINDS: Final = ("screen", "voice")
MAX_TERMINALS: Final = 2000  # bound on one notice's fan-out (a large site has ~1,000)


@dataclass(frozen=True, slots=True)
class TerminalRef:
    """One terminal by its topic building and device id; `kind` only when ambiguous."""

    building: str
    device: str
    kind: str | None = None


@dataclass(frozen=True, slots=True)
class Targets:
    """Named terminals, plus every terminal of `kinds` in `buildings` (and at the gates)."""

    terminals: tuple[TerminalRef, ...] = ()
    buildings: tuple[str, ...] = ()
    gates: bool = False
    kinds: tuple[str, ...] = KINDS

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in the `posted` record and shown by the API."""
        return {
            "terminals": [
                {"building": t.building, "device": t.device, "kind": t.kind} for t in self.terminals
            ],
            "buildings": list(self.buildings),
            "gates": self.gates,
            "kinds": list(self.kinds),
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Targets:
        """The inverse of `to_dict` (KeyError/TypeError on a malformed record)."""
        refs = tuple(
            TerminalRef(str(t["building"]), str(t["device"]), t.get("kind"))
            for t in obj.get("terminals", ())
        )
        return cls(
            refs,
            tuple(str(b) for b in obj.get("buildings", ())),
            bool(obj.get("gates", False)),
            tuple(str(k) for k in obj.get("kinds", KINDS)),
        )


def resolve(linkage: SiteLinkage, targets: Targets) -> list[Terminal]:
    """The terminals `targets` names, in order, each once; NoticeError names a bad one."""
    bad = [k for k in targets.kinds if k not in KINDS]
    if bad or not targets.kinds:
        raise NoticeError(f"targets.kinds {list(targets.kinds)}: use screen and/or voice")
    found: dict[Terminal, None] = {}  # an ordered set
    for building in targets.buildings:
        if building not in linkage.buildings:
            raise NoticeError(
                f"targets.buildings: no building {building!r} in the site model"
                f" (known: {_sample(linkage.buildings)})"
            )
        if "screen" in targets.kinds:
            found.update(dict.fromkeys(linkage.screens(building, gates=False)))
        if "voice" in targets.kinds:
            found.update(dict.fromkeys(linkage.voice(building)))
    if targets.gates and "screen" in targets.kinds:
        gates = linkage.screens(GATES_BUILDING, gates=True)
        if not gates:
            raise NoticeError("targets.gates: the site model lists no gate_screens")
        found.update(dict.fromkeys(gates))
    for i, ref in enumerate(targets.terminals):
        found[_named(linkage, ref, i)] = None
    if not found:
        if not (targets.buildings or targets.gates or targets.terminals):
            raise NoticeError("targets: none given; name terminals, buildings or gates")
        raise NoticeError(
            f"targets: no {' or '.join(targets.kinds)} terminal in"
            f" {', '.join(targets.buildings) or 'the gates'}; name other buildings or kinds"
        )
    if len(found) > MAX_TERMINALS:
        raise NoticeError(f"targets: {len(found)} terminals; one notice may reach {MAX_TERMINALS}")
    return list(found)


def terminals_of(linkage: SiteLinkage, building: str) -> list[Terminal]:
    """Every screen and voice terminal under a topic building (`gates`: the gate screens)."""
    return [
        *linkage.screens(building, gates=building == GATES_BUILDING),
        *linkage.voice(building),
    ]


def _named(linkage: SiteLinkage, ref: TerminalRef, i: int) -> Terminal:
    where = f"targets.terminals[{i}]"
    if ref.kind is not None and ref.kind not in KINDS:
        raise NoticeError(f"{where}: kind {ref.kind!r}: use screen or voice")
    known = terminals_of(linkage, ref.building)
    matches = [t for t in known if t[2] == ref.device and (ref.kind is None or t[1] == ref.kind)]
    if not matches:
        have = _sample(f"{k}:{d}" for _, k, d in known) if known else "no screen or voice"
        raise NoticeError(
            f"{where}: {ref.building}/{ref.device} is not a screen or voice terminal of the"
            f" site model (under {ref.building}: {have})"
        )
    if len(matches) > 1:
        raise NoticeError(f"{where}: {ref.building}/{ref.device} is ambiguous: name its kind")
    return matches[0]


def _sample(names: Any, limit: int = 10) -> str:
    items = sorted(names)
    more = f", … ({len(items)} in all)" if len(items) > limit else ""
    return (", ".join(items[:limit]) or "none") + more
