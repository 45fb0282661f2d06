"""Operator notices and announcements on screens and voice terminals, yielding to fire.

See docs/api.md ("Notices"). `NoticeBoard` decides (pure, clock-injected); `NoticeRuntime`
runs it as a guest of the fire runtime, under the fire engine's lock.
"""

from gateway.notices.board import Covering, NoticeAction, NoticeBoard
from gateway.notices.records import NoticeRecord, is_notice_record
from gateway.notices.runtime import NoticeRuntime
from gateway.notices.spec import (
    COLORS,
    LANGS,
    OPERATOR_PRIORITIES,
    REPEAT_MAX,
    SCREEN_MAX_CHARS,
    TTL_MAX_S,
    TTL_MIN_S,
    VOICE_MAX_CHARS,
    NoticeError,
    NoticeSpec,
    UnknownNotice,
    check_text,
)
from gateway.notices.state import Delivery, Notice
from gateway.notices.targets import Targets, TerminalRef, resolve

__all__ = [
    "COLORS",
    "LANGS",
    "OPERATOR_PRIORITIES",
    "REPEAT_MAX",
    "SCREEN_MAX_CHARS",
    "TTL_MAX_S",
    "TTL_MIN_S",
    "VOICE_MAX_CHARS",
    "Covering",
    "Delivery",
    "Notice",
    "NoticeAction",
    "NoticeBoard",
    "NoticeError",
    "NoticeRecord",
    "NoticeRuntime",
    "NoticeSpec",
    "Targets",
    "TerminalRef",
    "UnknownNotice",
    "check_text",
    "is_notice_record",
    "resolve",
]
