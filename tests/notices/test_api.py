"""`/api/v1/notices` through HTTP, with screens and voice terminals as real MQTT clients."""

from __future__ import annotations

import itertools
import time
from typing import Any

import httpx

from gateway.api.auth import Role
from tests.fire_e2e.devices import Field
from tests.notices.conftest import MAX_RETRIES, PREFIX, RETRY_S, NoticeSite
from tests.servers import wait_until

TEXT = "今晚20:00至22:00二号楼停水检修，请提前储水。"
QUIET_S = 0.5  # how long "nothing arrives" is watched (the gateway publishes in ms)


def _status(view: dict[str, Any]) -> dict[str, str]:
    return {t["terminal"]: t["status"] for t in view["terminals"]}


def _until_status(c: httpx.Client, notice: str, want: dict[str, str]) -> dict[str, Any]:
    views: list[dict[str, Any]] = []

    def reached() -> bool:
        views.append(c.get(f"/api/v1/notices/{notice}").json())
        return _status(views[-1]) == want

    try:
        wait_until(reached, 10.0, interval_s=0.05, what=f"{notice} statuses {want}")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; last: {_status(views[-1])}") from None
    return views[-1]


def test_a_notice_is_shown_said_acknowledged_and_cleared(site: NoticeSite) -> None:
    screen, voice = "b2/screen/SCR-b2", "b2/voice/VT-b2"
    with site.gw.client(Role.OPERATOR) as op, site.gw.client(Role.VIEWER) as viewer:
        r = op.post("/api/v1/notices", json={"text": TEXT, "targets": {"buildings": ["b2"]}})
        assert r.status_code == 201, r.text
        view = r.json()
        notice = view["id"]
        assert (view["by"], view["priority"], view["skipped"]) == ("operator-1", "notice", [])
        wait_until(
            lambda: site.notice_commands(screen, notice) and site.notice_commands(voice, notice),
            5.0,
            what="show on SCR-b2 and say on VT-b2",
        )
        (show,) = site.notice_commands(screen, notice)
        (say,) = site.notice_commands(voice, notice)
        assert (show["action"], show["priority"], show["ttl_s"], show["text"]) == (
            "show", "notice", 600, TEXT,
        )  # fmt: skip
        assert (say["action"], say["priority"], say["lang"]) == ("say", "notice", "zh")
        acked = _until_status(viewer, notice, {screen: "acked", voice: "acked"})
        assert {t["cmd_id"] for t in acked["terminals"]} == {show["cmd_id"], say["cmd_id"]}
        listed = viewer.get("/api/v1/notices", params={"state": "active"}).json()
        assert notice in [n["id"] for n in listed]

        r = op.delete(f"/api/v1/notices/{notice}")
        assert r.status_code == 200, r.text
        assert (r.json()["state"], r.json()["cleared_by"]) == ("cleared", "operator-1")
        wait_until(
            lambda: [len(site.notice_commands(k, notice)) for k in (screen, voice)] == [2, 2],
            5.0,
            what="clear on SCR-b2 and stop on VT-b2",
        )
        clear = site.notice_commands(screen, notice)[-1]
        stop = site.notice_commands(voice, notice)[-1]
        assert (clear["action"], clear["priority"]) == ("clear", "notice")
        assert (stop["action"], stop["priority"]) == ("stop", "notice")
        assert op.delete(f"/api/v1/notices/{notice}").status_code == 200  # already cleared


def test_an_unanswered_screen_is_retried_then_given_up(site: NoticeSite) -> None:
    screen = "b3/screen/SCR-b3"
    with site.gw.client(Role.OPERATOR) as op:
        body = {"text": "电梯维保中", "priority": "alert", "targets": {"buildings": ["b3"]}}
        r = op.post("/api/v1/notices", json=body)
        assert r.status_code == 201, r.text
        notice = r.json()["id"]
        view = _until_status(op, notice, {screen: "given_up"})
    (terminal,) = view["terminals"]
    assert terminal["attempts"] == MAX_RETRIES
    shows = site.notice_commands(screen, notice)
    assert len(shows) == 1 + MAX_RETRIES and len({s["cmd_id"] for s in shows}) == 1
    times = [m.t_ns / 1e9 for m in site.terminals[screen].inbox.items()]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(RETRY_S * 0.8 < gap < RETRY_S * 3 for gap in gaps), gaps


def test_a_notice_never_overrides_a_fire_message(site: NoticeSite) -> None:
    screen, voice, gate = "b1/screen/SCR-b1", "b1/voice/VT-b1", "gates/screen/SCR-gate-1"
    field = Field(site.port, PREFIX, lambda: time.time_ns() // 1_000_000)
    try:
        field.alarm("b1", "smoke", "SD-b1-1")
        field.alarm("b1", "callpoint", "CP-b1-1")  # confirms the fire at once
    finally:
        field.close()
    fire = {screen: "show", voice: "say", gate: "show"}

    def fire_everywhere() -> bool:
        return all(
            any(c["priority"] == "fire" for c in site.terminals[k].commands(action))
            for k, action in fire.items()
        )

    wait_until(fire_everywhere, 10.0, what="the fire text on SCR-b1, VT-b1 and the gates")
    incident = site.terminals[screen].commands("show")[0]["incident"]
    received = {k: len(site.terminals[k].inbox.items()) for k in fire}

    def nothing_but_fire() -> None:
        time.sleep(QUIET_S)
        for k, n in received.items():  # fire retries may come; nothing of a notice
            assert all("incident" in c for c in site.terminals[k].commands()[n:]), k

    with site.gw.client(Role.OPERATOR) as op:
        body = {"text": TEXT, "targets": {"buildings": ["b1"], "gates": True}}
        r = op.post("/api/v1/notices", json=body)
        assert r.status_code == 201, r.text
        view = r.json()
        assert {s["terminal"]: s["reason"] for s in view["skipped"]} == {
            screen: f"fire message on screen (incident {incident})",
            voice: f"fire message on voice terminal (incident {incident})",
            gate: f"fire message on screen (incident {incident})",
        }
        assert set(_status(view).values()) == {"skipped"}
        nothing_but_fire()
        r = op.delete(f"/api/v1/notices/{view['id']}")
        assert r.status_code == 200 and r.json()["clear_skipped"] == []
        nothing_but_fire()


def test_posting_and_clearing_need_an_operator(site: NoticeSite) -> None:
    body = {"text": TEXT, "targets": {"terminals": [{"building": "b2", "device": "SCR-b2"}]}}
    for role in (Role.VIEWER, Role.FIRE_TEAM):
        with site.gw.client(role) as c:
            r = c.post("/api/v1/notices", json=body)
            assert r.status_code == 403 and "operator" in r.json()["detail"], r.text
            assert c.delete("/api/v1/notices/notice-20260101-0001").status_code == 403
            assert c.get("/api/v1/notices").status_code == 200
    with site.gw.client(None) as anon:
        assert anon.post("/api/v1/notices", json=body).status_code == 401
    with site.gw.client(Role.ADMIN) as admin:
        assert admin.post("/api/v1/notices", json=body).status_code == 201


def test_bad_requests_get_a_422_that_says_what_is_wrong(site: NoticeSite) -> None:
    targets = {"buildings": ["b2"]}
    cases = [
        ({"text": TEXT, "priority": "fire", "targets": targets}, "belongs to the fire engine"),
        ({"text": "请" * 120, "targets": targets}, "120 characters; a voice announcement"),
        ({"text": "请" * 201, "targets": targets}, "at most 200 characters"),
        ({"text": "   ", "targets": targets}, "text is empty"),
        ({"text": TEXT, "targets": {"buildings": ["b9"]}}, "no building 'b9'"),
        ({"text": TEXT, "targets": {"terminals": [{"building": "b2", "device": "X"}]}},
         "b2/X is not a screen or voice terminal"),
        ({"text": TEXT, "ttl_s": 1, "targets": targets}, "greater than or equal to 10"),
        ({"text": TEXT, "targets": {}}, "targets: none given"),
    ]  # fmt: skip
    with site.gw.client(Role.OPERATOR) as op:
        for body, message in cases:
            r = op.post("/api/v1/notices", json=body)
            assert r.status_code == 422 and message in r.text, (body, r.text)
        r = op.get("/api/v1/notices/notice-20000101-0001")
        assert r.status_code == 404 and "no notice" in r.json()["detail"]
        assert op.delete("/api/v1/notices/nope").status_code == 404
