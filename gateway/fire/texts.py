"""Broadcast texts: per-site templates with the real building, floor and zone filled in.

A broadcast should last 10–30 s of speech (GB 50116 §4.8 alternates voice messages of
10–30 s with sounders): about 35–100 characters of Chinese. Templates are checked when
the config loads, rendered with a typical building and floor.
"""

from __future__ import annotations

import string
from typing import Final

DEFAULT_TEXT_FIRE: Final = (
    "{building}栋{floor}楼发生火警，请立即从最近的安全出口疏散，切勿乘坐电梯，"
    "疏散时请用湿毛巾捂住口鼻，低姿前进。"
)
DEFAULT_TEXT_DRILL: Final = (
    "消防演练：{building}栋{floor}楼模拟火警，请按演练安排从最近的安全出口有序疏散，"
    "切勿乘坐电梯，这是一次演练。"
)
DEFAULT_TEXT_PREALARM: Final = (
    "{building}栋{floor}楼火灾报警正在核实，请保持冷静，留意广播通知，做好疏散准备，切勿乘坐电梯。"
)
MIN_CHARS: Final = 35
MAX_CHARS: Final = 100
PLACEHOLDERS: Final = frozenset({"building", "floor", "zone"})
UNKNOWN_FLOOR: Final = "某"  # "a certain": reads naturally as 某楼 when the floor is unknown
# Building names often end in 栋 already ("1栋"); the templates add it themselves.
_BUILDING_SUFFIX: Final = "栋"


def building_label(building_id: str, name: str = "") -> str:
    """What `{building}` becomes: the name without a trailing 栋, else the id."""
    if name:
        trimmed = name.removesuffix(_BUILDING_SUFFIX)
        return trimmed or name
    return building_id


def render(template: str, building: str, floor: int | None, zone: str) -> str:
    """Fill a template; `building` is a `building_label`, `zone` a zone name or id."""
    floor_text = UNKNOWN_FLOOR if floor is None else str(floor)
    return template.format(building=building, floor=floor_text, zone=zone)


def template_problem(template: str) -> str | None:
    """Why `template` cannot be used as a broadcast text, or None when it can."""
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        return f"not a valid template ({exc}); write literal braces as {{{{ and }}}}"
    unknown = names - PLACEHOLDERS
    if unknown:
        return (
            f"unknown placeholder(s) {', '.join(sorted('{' + n + '}' for n in unknown))}; "
            f"allowed: {{building}}, {{floor}}, {{zone}}"
        )
    sample = render(template, "12", 12, "12栋12层")
    if not MIN_CHARS <= len(sample) <= MAX_CHARS:
        return (
            f"renders to {len(sample)} characters ({sample!r}); keep a broadcast between "
            f"{MIN_CHARS} and {MAX_CHARS} characters (10–30 s of speech)"
        )
    return None
