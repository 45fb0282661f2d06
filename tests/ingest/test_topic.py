"""Topic grammar of CONTRACT.md."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import TopicError
from gateway.ingest.topic import (
    DEVICE_KINDS,
    INBOUND_CHANNELS,
    DeviceTopic,
    FireActionTopic,
    parse_topic,
)


@pytest.mark.parametrize("kind", sorted(DEVICE_KINDS))
@pytest.mark.parametrize("channel", sorted(INBOUND_CHANNELS))
def test_every_kind_and_inbound_channel_parses(kind: str, channel: str) -> None:
    parsed = parse_topic(f"community/shazui/b12/{kind}/SD-1/{channel}", "community", "shazui")
    assert parsed == DeviceTopic("shazui", "b12", kind, "SD-1", channel)


def test_outbound_channels_are_ignored_not_rejected() -> None:
    assert parse_topic("community/shazui/b12/screen/S1/cmd", "community", "shazui") is None
    assert parse_topic("community/shazui/b12/smoke/S1/config", "community", "shazui") is None


def test_fire_action_topic() -> None:
    parsed = parse_topic("community/shazui/alerts/fire/inc-7/action", "community", "shazui")
    assert parsed == FireActionTopic("shazui", "inc-7")


@pytest.mark.parametrize(
    ("topic", "why"),
    [
        ("community/shazui/b12/smoke/SD-1", "6 segments"),
        ("community/shazui/b12/smoke/SD-1/telemetry/x", "6 segments"),
        ("other/shazui/b12/smoke/SD-1/telemetry", "root"),
        ("community/futian/b12/smoke/SD-1/telemetry", "site"),
        ("community/shazui/b12/toaster/SD-1/telemetry", "unknown device kind"),
        ("community/shazui/b12/smoke/SD 1/telemetry", "device"),
        ("community/shazui/b1é/smoke/SD-1/telemetry", "building"),
        ("community/shazui/b12/smoke/SD-1/gossip", "unknown channel"),
        ("community/shazui/state/smoke/SD-1/telemetry", "reserved"),
        ("community/shazui/alerts/trouble/x/action", "alerts/fire"),
        ("community/shazui/b12/smoke//telemetry", "device"),
    ],
)
def test_bad_topics_say_what_is_wrong(topic: str, why: str) -> None:
    with pytest.raises(TopicError, match=why):
        parse_topic(topic, "community", "shazui")


@given(st.text(max_size=300))
def test_any_string_parses_or_raises_topic_error(topic: str) -> None:
    with contextlib.suppress(TopicError):
        parse_topic(topic, "community", "shazui")
