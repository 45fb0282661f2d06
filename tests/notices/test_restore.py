"""After a restart the notices are rebuilt from the stored records, beside the fire's."""

from __future__ import annotations

import json

from gateway.notices import NoticeRecord, TerminalRef, is_notice_record
from tests.fire.helpers import SITE
from tests.notices.helpers import Bench, status


def _stored_texts(bench: Bench) -> list[str]:
    """Every audit record (fire and notices) a commit would store, in order."""
    _, audit = bench.fire.take_pending()
    return [row.record for row in audit]


def test_notices_survive_a_restart_and_keep_their_ids_retries_and_fire_rule() -> None:
    before = Bench(command_retry_s=5)
    acked = before.post(buildings=("b2",))
    before.ack_all()
    pending = before.post(terminals=(TerminalRef("b2", "SCR-b2"),), priority="alert")
    covered = before.post(buildings=("b1",), kinds=("screen",), ttl_s=900)
    before.ack_all(len(before.sent) - 2)
    incident = before.confirm_fire("b1")
    texts = _stored_texts(before)
    assert any(is_notice_record(json.loads(t)) for t in texts)
    views = {n: before.notices.get(n) for n in (acked["id"], pending["id"], covered["id"])}

    after = Bench(clock=before.clock, command_retry_s=5)
    summary = after.fire.restore(texts)
    assert summary.skipped == () and summary.open_incidents == (incident,)
    for notice_id, view in views.items():
        assert after.notices.get(notice_id) == view
    sent = len(after.sent)
    assert after.post(buildings=("b2",), kinds=("voice",))["id"].endswith("-0004")
    after.ack_all(sent)

    sent = len(after.sent)
    after.clock.advance(5)
    after.tick()
    assert after.targets(sent) == {"b2/screen/SCR-b2"}  # still unanswered: retried
    sent = len(after.sent)
    after.fire.act(incident, "resolve", "op-1")
    shows = [p for t, p in after.sent[sent:] if p.get("notice") == covered["id"]]
    assert {p["ttl_s"] for p in shows} == {895} and len(shows) == 2
    assert set(status(after.notices.get(covered["id"])).values()) == {"pending"}


def test_a_malformed_notice_record_is_skipped_not_fatal() -> None:
    before = Bench()
    view = before.post(buildings=("b2",))
    texts = _stored_texts(before)
    broken = json.loads(texts[1])
    broken["data"].pop("cmd_id")
    orphan = NoticeRecord("notice-20260101-0001", 2, 1, "ack", "x", {"cmd_id": "c", "ok": True})
    after = Bench(clock=before.clock)
    after.fire.restore([texts[0], json.dumps(broken), json.dumps(orphan.to_dict()), *texts[2:]])
    restored = after.notices.get(view["id"])
    assert status(restored) == {"b2/screen/SCR-b2": "pending", "b2/voice/VT-b2": "pending"}
    assert restored["terminals"][0]["cmd_id"] is None  # its command record was unreadable


def test_records_round_trip_and_become_notice_points() -> None:
    bench = Bench()
    bench.post(buildings=("b2",), kinds=("screen",))
    posted, command = bench.stored()
    assert NoticeRecord.from_dict(json.loads(json.dumps(posted.to_dict()))) == posted
    line = command.line(SITE)
    assert line.startswith(f"notice,kind=command,notice={command.notice},seq=2,site={SITE} ")
    assert 'terminal="b2/screen/SCR-b2"' in line and 'action="show"' in line
