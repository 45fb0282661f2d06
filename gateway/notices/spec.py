"""What an operator may put on screens and voice terminals: a checked notice request.

Priorities from people are `notice` and `alert` only; `fire` belongs to the fire engine,
and a notice never reaches a terminal that carries a fire message (docs/api.md). Texts are
bounded: a voice announcement of at most 100 characters is at most about 30 s of speech
(the fire texts' bound, GB 50116 §4.8: 10–30 s per message); a screen shows at most 200.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from gateway.errors import GatewayError
from gateway.fire.texts import MAX_CHARS as VOICE_MAX_CHARS

RANK: Final = {"notice": 0, "alert": 1, "fire": 2}  # CONTRACT.md: fire > alert > notice
OPERATOR_PRIORITIES: Final = ("notice", "alert")
SCREEN_MAX_CHARS: Final = 200
TTL_MIN_S: Final = 10
TTL_MAX_S: Final = 7 * 24 * 3600  # the audit replayed at start covers 7 days
REPEAT_MAX: Final = 5
COLORS: Final = ("white", "yellow", "green", "blue", "orange", "red")
LANGS: Final = ("zh", "en")
BY_MAX_CHARS: Final = 128

__all__ = [
    "COLORS",
    "LANGS",
    "OPERATOR_PRIORITIES",
    "RANK",
    "REPEAT_MAX",
    "SCREEN_MAX_CHARS",
    "TTL_MAX_S",
    "TTL_MIN_S",
    "VOICE_MAX_CHARS",
    "NoticeError",
    "NoticeSpec",
    "UnknownNotice",
    "check_by",
    "check_text",
]


class NoticeError(GatewayError):
    """A notice that cannot be sent or cleared as asked; the message says what and why."""


class UnknownNotice(NoticeError):
    """No notice with that id (the API answers 404)."""


@dataclass(frozen=True, slots=True)
class NoticeSpec:
    """What to show or say: text, priority, lifetime and the terminals' options.

    `ttl_s` is the screen text's lifetime (sent as the `show`'s `ttl_s`) and how long the
    notice counts as active; `color` is for screens, `lang` and `repeat` for voice.
    """

    text: str
    priority: str = "notice"
    ttl_s: int = 600
    color: str | None = None
    lang: str = "zh"
    repeat: int = 1

    def __post_init__(self) -> None:
        if self.priority not in OPERATOR_PRIORITIES:
            why = " (fire belongs to the fire engine)" if self.priority == "fire" else ""
            raise NoticeError(f"priority {self.priority!r}: use notice or alert{why}")
        if not TTL_MIN_S <= self.ttl_s <= TTL_MAX_S:
            raise NoticeError(f"ttl_s {self.ttl_s}: use {TTL_MIN_S}..{TTL_MAX_S} seconds")
        if self.color is not None and self.color not in COLORS:
            raise NoticeError(f"color {self.color!r}: use one of {', '.join(COLORS)}")
        if self.lang not in LANGS:
            raise NoticeError(f"lang {self.lang!r}: use one of {', '.join(LANGS)}")
        if not 1 <= self.repeat <= REPEAT_MAX:
            raise NoticeError(f"repeat {self.repeat}: use 1..{REPEAT_MAX}")

    def fields(self) -> dict[str, object]:
        """The spec as stored in the `posted` record."""
        return {
            "text": self.text,
            "priority": self.priority,
            "ttl_s": self.ttl_s,
            "color": self.color,
            "lang": self.lang,
            "repeat": self.repeat,
        }


def check_text(text: str, kinds: Iterable[str]) -> str:
    """The text without surrounding blanks; NoticeError when the terminals cannot take it.

    `kinds` are the kinds of terminal it goes to: with any voice terminal the bound is
    VOICE_MAX_CHARS, else SCREEN_MAX_CHARS. Line breaks are allowed, other control
    characters and unpaired surrogates are not (they break displays and the JSON).
    """
    clean = text.strip()
    if not clean:
        raise NoticeError("text is empty: write what the screens show or the voice says")
    for i, ch in enumerate(clean):
        if ch == "\n":
            continue
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs"):
            what = "an unpaired surrogate" if category == "Cs" else "a control character"
            raise NoticeError(
                f"text: {what} U+{ord(ch):04X} at position {i}; only line breaks are allowed"
            )
    kinds = set(kinds)
    if "voice" in kinds and len(clean) > VOICE_MAX_CHARS:
        raise NoticeError(
            f"text: {len(clean)} characters; a voice announcement takes at most "
            f"{VOICE_MAX_CHARS} (about 30 s of speech): shorten it, or send it to screens "
            'only (targets.kinds = ["screen"], at most '
            f"{SCREEN_MAX_CHARS})"
        )
    if len(clean) > SCREEN_MAX_CHARS:
        raise NoticeError(
            f"text: {len(clean)} characters; a screen shows at most {SCREEN_MAX_CHARS}"
        )
    return clean


def check_by(by: str) -> str:
    """Who acts: a non-empty name without control characters, at most BY_MAX_CHARS."""
    clean = by.strip() if isinstance(by, str) else ""
    if not clean or len(clean) > BY_MAX_CHARS:
        raise NoticeError(f"'by' must name who acts (1..{BY_MAX_CHARS} characters)")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in clean):
        raise NoticeError("'by' must not contain control characters")
    return clean
