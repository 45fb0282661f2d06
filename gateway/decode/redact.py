"""Keep card numbers and recognised people's ids out of dead letters: a rejected payload is
stored for diagnosis, but the value of any key that names a card or a person (`member`,
a vendor's `employeeNo`) is replaced (personal data)."""

from __future__ import annotations

import re

_KEY = rb"(?:card|member|employee)"
# A JSON key naming a card or person, then its value: a string (also one cut off before
# its closing quote) or a number.
_CARD_VALUE = re.compile(
    rb'("[^"\\]{0,40}' + _KEY + rb'[^"\\]{0,40}"\s*:\s*)("(?:[^"\\]|\\.)*"?|-?[0-9][0-9.eE+-]*)',
    re.IGNORECASE,
)
# `card=…` / `CardNo: …` outside JSON (form-encoded or text payloads).
_CARD_PAIR = re.compile(rb"(" + _KEY + rb"\w{0,20}\s*[=:]\s*)([^&\s;,\"}]+)", re.IGNORECASE)
_HINTS = (b"card", b"member", b"employee")
REDACTED = b'"<redacted>"'


def redact_cards(payload: bytes) -> bytes:
    """`payload` with the values of card- or person-like keys replaced; unchanged without."""
    lower = payload.lower()
    if not any(hint in lower for hint in _HINTS):
        return payload
    payload = _CARD_VALUE.sub(lambda m: m.group(1) + REDACTED, payload)
    return _CARD_PAIR.sub(lambda m: m.group(1) + b"<redacted>", payload)
