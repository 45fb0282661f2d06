"""Escalation timers through the broker, the clock driven by hand.

Each timer must not fire one tick (1/8 s) before its configured time and must fire at it:
the escalation record carries the configured due time to the millisecond, the alert is
republished with `escalation` raised, and the terminals are told again.
"""

from __future__ import annotations

from typing import Any

from tests.fire_e2e.scene import ACK_S, ARRIVE_S, DEADLINE_S, TICK_S, Scene


def _levels(scene: Scene, inc: str) -> list[int]:
    """The escalation levels the app has seen announced, each once, in order."""
    levels: list[int] = []
    for alert in scene.app.alerts(inc):
        if alert["escalation"] > (levels[-1] if levels else 0):
            levels.append(alert["escalation"])
    return levels


async def _not_before(scene: Scene, inc: str, seconds: float, expected: int) -> None:
    """Advance to one tick before a timer: no new escalation appears."""
    await scene.advance(seconds - TICK_S)
    await scene.settle()
    assert _levels(scene, inc) == list(range(1, expected + 1))
    assert len(scene.audit(inc, "escalation")) == expected


async def _fires(scene: Scene, inc: str, level: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Advance the last tick: the escalation alert and its audit record."""
    await scene.advance(TICK_S)
    alert = await scene.app.until_alert(
        lambda a: a["id"] == inc and a["escalation"] == level, what=f"escalation {level}"
    )
    await scene.settle()
    records = scene.audit(inc, "escalation")
    assert len(records) == level
    return alert, records[-1]


async def test_each_timer_escalates_at_its_configured_time(scene: Scene) -> None:
    scene.field.alarm("b1", "callpoint", "CP-b1-3")
    opened = await scene.app.until_alert(lambda a: a["state"] == "dispatched")
    inc, t0 = opened["id"], opened["opened_at"]
    assert opened["team"] == "mfs-near"
    await scene.until_acked(inc)
    lobby = scene.terminals["SCR-b1-lobby"]
    assert len(lobby.commands("show", inc)) == 1

    # ack_s: nobody acknowledged → the next team of the chain.
    await _not_before(scene, inc, ACK_S, 0)
    alert, rec = await _fires(scene, inc, 1)
    assert rec["data"]["reason"] == "no_ack"
    assert rec["data"]["due_at"] == rec["ts"] == t0 + ACK_S * 1000
    assert (alert["team"], alert["teams"], alert["tier"]) == ("mfs-far", ["mfs-near", "mfs-far"], 0)
    assert len(lobby.commands("show", inc)) == 2, "an escalation announces again"

    scene.app.act(inc, "ack", by="mfs-far")
    acked = await scene.app.until_alert(lambda a: a["state"] == "acknowledged")
    assert (acked["acknowledged_by"], acked["escalation"]) == ("mfs-far", 1)
    await scene.until_acked(inc)

    # arrive_s after confirmation: not on scene → the street command tier (tier ≥ 1).
    await _not_before(scene, inc, ARRIVE_S - ACK_S, 1)
    alert, rec = await _fires(scene, inc, 2)
    assert rec["data"]["reason"] == "not_on_scene"
    assert rec["data"]["due_at"] == rec["ts"] == opened["confirmed_at"] + ARRIVE_S * 1000
    assert (alert["team"], alert["tier"], alert["breach"]) == ("mfs-far", 1, False)
    assert alert["teams"] == ["mfs-near", "mfs-far", "street"]
    assert rec["data"]["team"] == "street"
    assert len(lobby.commands("show", inc)) == 3
    await scene.until_acked(inc)

    # deadline_s after opening: breach recorded, the top tier alerted.
    await _not_before(scene, inc, DEADLINE_S - ARRIVE_S, 2)
    alert, rec = await _fires(scene, inc, 3)
    assert rec["data"]["reason"] == "deadline"
    assert rec["data"]["due_at"] == rec["ts"] == opened["deadline_at"] == t0 + DEADLINE_S * 1000
    assert (rec["data"]["team"], alert["tier"], alert["breach"]) == ("district", 2, True)
    assert alert["teams"] == ["mfs-near", "mfs-far", "street", "district"]
    assert len(lobby.commands("show", inc)) == 4

    # Every timer has run once: more time brings no further escalation.
    await scene.advance(300.0)
    await scene.settle()
    assert len(scene.audit(inc, "escalation")) == 3
    assert _levels(scene, inc) == [1, 2, 3]


async def test_a_late_tick_runs_every_missed_timer_in_order_at_its_due_time(
    scene: Scene,
) -> None:
    scene.field.alarm("b1", "callpoint", "CP-b1-3")
    opened = await scene.app.until_alert(lambda a: a["state"] == "dispatched")
    inc, t0 = opened["id"], opened["opened_at"]
    await scene.until_acked(inc)
    # Nobody answers and the timer loop only runs once, long after the deadline.
    await scene.advance(DEADLINE_S + 60.0)
    await scene.app.until_alert(lambda a: a["escalation"] == 5, what="five escalations")
    await scene.settle()
    got = [
        ((r["data"]["due_at"] - t0) / 1000, r["data"]["reason"], r["data"]["team"])
        for r in scene.audit(inc, "escalation")
    ]
    assert got == [
        (ACK_S, "no_ack", "mfs-far"),
        (2 * ACK_S, "no_ack", "street"),
        (ARRIVE_S, "not_on_scene", "street"),
        (3 * ACK_S, "no_ack", "district"),  # the last team: the ack chain ends here
        (DEADLINE_S, "deadline", "district"),
    ]
    assert _levels(scene, inc) == [1, 2, 3, 4, 5]
