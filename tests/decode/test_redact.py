"""Card numbers never reach the dead-letter table."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.decode.redact import redact_cards


def test_card_values_are_replaced_quoted_or_not() -> None:
    payload = b'{"ts": 1795475306083, "event": "swipe", "card": "0012345678", "CardNo": 9876543210}'
    out = redact_cards(payload)
    assert b"0012345678" not in out and b"9876543210" not in out
    assert b"1795475306083" in out and out.count(b"<redacted>") == 2


def test_payload_without_card_keys_is_untouched() -> None:
    payload = b'{"ts": 1, "smoke": 0.2}'
    assert redact_cards(payload) is payload


@given(
    st.text(alphabet="0123456789", min_size=6, max_size=20),
    st.sampled_from(["card", "cardNo", "Card_Number"]),
)
def test_any_card_number_under_any_card_key_is_removed(number: str, key: str) -> None:
    payload = f'{{"event": "swipe", "{key}": "{number}", "door": 7'.encode()  # malformed JSON
    assert number.encode() not in redact_cards(payload)


def test_cut_off_and_non_json_card_values_are_replaced() -> None:
    cut = b'{"ts": 1, "event": "swipe", "card": "0030569309025904'
    form = b"event=swipe&card=0030569309025904&door=7"
    for payload in (cut, form):
        assert b"0030569309025904" not in redact_cards(payload)
