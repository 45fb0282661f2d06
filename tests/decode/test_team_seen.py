"""Camera `team_seen` (a fire team's member recognised at a checkpoint), canonical and vendor."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.decode import ProfileSet, SpoolClass
from gateway.decode.redact import redact_cards
from gateway.errors import DecodeError, ProfileError
from tests.decode.conftest import RECEIVED_MS, SALT, Decode

TS = RECEIVED_MS - 5_000
SEEN = {"ts": TS, "event": "team_seen", "team": "mfs-north", "confidence": 0.93}


def js(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def member_hash(member: str) -> str:
    """The same salted hash as a card number's (CONTRACT.md), independently computed."""
    return hashlib.blake2b(SALT + member.encode(), digest_size=16).hexdigest()


# -- canonical -------------------------------------------------------------------------


def test_team_seen_takes_the_checkpoint_of_the_camera_in_the_site_model(decode: Decode) -> None:
    msg = decode("camera", "event", js({**SEEN, "member": "E0042"}), "CAM-1")
    assert msg.event == "team_seen"
    assert msg.tags == {"team": "mfs-north", "checkpoint": "n-gate"}
    assert msg.fields == {"confidence": 0.93, "member_hash": member_hash("E0042")}
    assert msg.ts_ms == TS
    # A bulk-lane event, kept forever: never the alarm lane.
    assert not msg.is_alarm
    assert msg.spool_class is SpoolClass.EVENT


def test_team_seen_checkpoint_in_the_payload_wins(decode: Decode) -> None:
    msg = decode("camera", "event", js({**SEEN, "checkpoint": "b12-gate"}), "CAM-1")
    assert msg.tags == {"team": "mfs-north", "checkpoint": "b12-gate"}


def test_team_seen_by_a_camera_at_no_checkpoint_keeps_only_its_topic_building(
    decode: Decode,
) -> None:
    # CAM-Z is a building camera of b12, CAM-9 is not in the site model at all.
    for device, building in (("CAM-Z", "b12"), ("CAM-9", "gates")):
        msg = decode("camera", "event", js(SEEN), device, building)
        assert msg.tags == {"team": "mfs-north"}
        assert msg.topic.building == building


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"team": None}, r"camera/event: missing required field 'team'"),
        ({"team": 3}, r"field 'team': expected a string, got int"),
        ({"team": "mfs north"}, r"field 'team': 'mfs north' is not \[A-Za-z0-9_-\]"),
        ({"team": ""}, r"field 'team': '' is not \[A-Za-z0-9_-\]"),
        ({"confidence": None}, r"missing required field 'confidence'"),
        ({"confidence": 1.2}, r"'confidence': 1.2 is not between 0 and 1"),
        ({"confidence": "high"}, r"field 'confidence': expected a number, got str"),
        ({"checkpoint": "north gate"}, r"field 'checkpoint': 'north gate' is not"),
    ],
)
def test_bad_team_seen_is_rejected_with_the_reason(
    decode: Decode, change: dict[str, Any], reason: str
) -> None:
    payload = {k: v for k, v in {**SEEN, **change}.items() if v is not None}
    with pytest.raises(DecodeError, match=reason):
        decode("camera", "event", js(payload), "CAM-1")


def test_bad_member_is_rejected_without_echoing_it(decode: Decode) -> None:
    with pytest.raises(DecodeError, match=r"field 'member': expected a string, got int") as err:
        decode("camera", "event", js({**SEEN, "member": 73310042}), "CAM-1")
    assert "73310042" not in str(err.value)


def test_a_payload_cannot_forge_the_member_hash(decode: Decode) -> None:
    msg = decode("camera", "event", js({**SEEN, "member_hash": 1.0, "member": "E1"}), "CAM-1")
    assert msg.fields["member_hash"] == member_hash("E1")


def test_member_ids_never_reach_a_dead_letter() -> None:
    canonical = js({"event": "team_seen", "member": "E0042", "confidence": 2})
    vendor = js({"eventType": "FaceMatch", "faceMatch": {"employeeNo": 73310042}})
    for payload, secret in ((canonical, b"E0042"), (vendor, b"73310042")):
        out = redact_cards(payload)
        assert secret not in out and b"<redacted>" in out
        assert b"team_seen" in out or b"FaceMatch" in out


# -- camera/hik-pc: a face-library match --------------------------------------------------

HIK_MATCH = {
    "ipAddress": "10.0.0.5",
    "portNo": 80,
    "channelID": 1,
    "dateTime": "2026-11-24T08:15:00+08:00",
    "eventType": "FaceMatch",
    "faceMatch": {"faceLibName": "mfs-north", "similarity": 93.5, "employeeNo": "E0042"},
}


def test_hik_face_match_becomes_team_seen(decode: Decode) -> None:
    msg = decode("camera", "event", js(HIK_MATCH), "HIK-1")
    assert msg.event == "team_seen"
    assert msg.tags == {"team": "mfs-north", "checkpoint": "n-gate"}
    assert msg.fields == pytest.approx({"confidence": 0.935, "member_hash": member_hash("E0042")})
    assert not msg.is_alarm


@pytest.mark.parametrize(
    ("match", "reason"),
    [
        ({"similarity": 90}, r"missing required field 'team' \(vendor field "
         r"'faceMatch.faceLibName' of profile camera/hik-pc\)"),
        ({"faceLibName": "mfs-north"}, r"missing required field 'confidence' \(vendor field "
         r"'faceMatch.similarity'"),
        ({"faceLibName": "消防北站", "similarity": 90}, r"field 'team' \(vendor field "
         r"'faceMatch.faceLibName' of profile camera/hik-pc\): '消防北站' is not"),
        ({"faceLibName": "mfs-north", "similarity": 130}, r"1.3 is not between 0 and 1"),
    ],
)  # fmt: skip
def test_bad_hik_face_match_names_the_vendor_field(
    decode: Decode, match: dict[str, Any], reason: str
) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode("camera", "event", js({**HIK_MATCH, "faceMatch": match}), "HIK-1")


# -- profiles --------------------------------------------------------------------------

VENDOR = """kind = "camera"
model = "acme-face"
heartbeat_s = 60
[fields]
team = "group"
confidence = "score"
[[events]]
field = "type"
map = { MATCH = "team_seen" }
"""


def _load(tmp_path: Path, text: str) -> ProfileSet:
    path = tmp_path / "camera" / "acme-face.toml"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    return ProfileSet.load(tmp_path)


def test_a_vendor_profile_may_translate_face_library_codes_to_team_ids(tmp_path: Path) -> None:
    profile = _load(tmp_path, VENDOR + '[values.team]\n"3" = "mfs-north"\n').get(
        "camera", "acme-face"
    )
    assert profile.values["team"] == {"3": "mfs-north"}
    assert profile.events[0].map == {"MATCH": "team_seen"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (VENDOR + '[values.team]\n"3" = 3\n', "values.team.3: team is a string, got 3"),
        (
            VENDOR.replace('team = "group"', 'team = "group"\nmember_hash = "who"'),
            "fields.member_hash: 'member_hash' is written by the gateway itself",
        ),
    ],
)
def test_bad_team_seen_mappings_are_refused(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ProfileError, match=problem):
        _load(tmp_path, text)
