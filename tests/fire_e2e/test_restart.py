"""A gateway restart in the middle of a fire: the incident, its deadline and its released
doors survive, rebuilt from the spool by a new `Gateway` on the same file."""

from __future__ import annotations

from tests.fire_e2e.conftest import SceneFactory
from tests.fire_e2e.scene import DEADLINE_S, TICK_S


async def test_restart_mid_incident_keeps_incident_deadline_and_released_doors(
    make_scene: SceneFactory,
) -> None:
    scene = await make_scene()
    scene.field.alarm("b1", "callpoint", "CP-b1-3")
    opened = await scene.app.until_alert(lambda a: a["state"] == "dispatched")
    inc, t0 = opened["id"], opened["opened_at"]
    await scene.expect_linkage(inc, "b1-f3")
    scene.app.act(inc, "ack")
    await scene.app.until_alert(lambda a: a["state"] == "acknowledged")
    await scene.until_acked(inc)
    await scene.advance(30.0)
    await scene.settle()

    await scene.stop()
    sent_before = scene.commands(inc)
    scene.clock.advance(60.0)  # the gateway is down for a minute
    gw = await scene.start()

    (restored,) = gw.fire.engine.incidents(open_only=True)
    assert (restored.id, restored.state, restored.acknowledged_by) == (
        inc,
        "acknowledged",
        "mfs-near",
    )
    assert restored.deadline_at == opened["deadline_at"] == t0 + DEADLINE_S * 1000
    assert restored.doors == {"b1-d1": "confirmed", "b1-d2": "confirmed"}
    await scene.settle()
    assert scene.commands(inc) == sent_before, "a restart must not re-release or lock doors"

    # The deadline still fires at its original time (the arrive timer fired before it).
    await scene.advance(DEADLINE_S - 90.0 - TICK_S)
    await scene.settle()
    assert [r["data"]["reason"] for r in scene.audit(inc, "escalation")] == ["not_on_scene"]
    await scene.advance(TICK_S)
    breach = await scene.app.until_alert(lambda a: a["breach"], what="deadline breach")
    assert (breach["id"], breach["escalation"], breach["tier"]) == (inc, 2, 2)
    await scene.settle()
    (rec,) = [r for r in scene.audit(inc, "escalation") if r["data"]["reason"] == "deadline"]
    assert rec["data"]["due_at"] == rec["ts"] == opened["deadline_at"]
    assert scene.doors["AC-b1"].commands("normal") == [], "doors stay released until resolve"
    await scene.until_acked(inc)

    scene.app.act(inc, "resolve")
    await scene.app.until_alert(lambda a: a["state"] == "resolved")
    (normal,) = await scene.doors["AC-b1"].until_command("normal", inc)
    assert normal["doors"] == ["b1-d1", "b1-d2"]
    ids = [c["cmd_id"] for c in scene.commands(inc)]
    assert len(ids) == len(set(ids)), "cmd_id numbering must continue after a restart"
    assert max(ids) == normal["cmd_id"]
