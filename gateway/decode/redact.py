"""Keep card numbers out of dead letters: a rejected payload is stored for diagnosis, but
the value of any key that names a card is replaced (card numbers are personal data)."""

from __future__ import annotations

import re

# A JSON key naming a card, then its value: a string (also one cut off before its closing
# quote) or a number.
_CARD_VALUE = re.compile(
    rb'("[^"\\]{0,40}card[^"\\]{0,40}"\s*:\s*)("(?:[^"\\]|\\.)*"?|-?[0-9][0-9.eE+-]*)',
    re.IGNORECASE,
)
# `card=…` / `CardNo: …` outside JSON (form-encoded or text payloads).
_CARD_PAIR = re.compile(rb"(card\w{0,20}\s*[=:]\s*)([^&\s;,\"}]+)", re.IGNORECASE)
REDACTED = b'"<redacted>"'


def redact_cards(payload: bytes) -> bytes:
    """`payload` with the values of card-like keys replaced; unchanged when there are none."""
    if b"card" not in payload.lower():
        return payload
    payload = _CARD_VALUE.sub(lambda m: m.group(1) + REDACTED, payload)
    return _CARD_PAIR.sub(lambda m: m.group(1) + b"<redacted>", payload)
