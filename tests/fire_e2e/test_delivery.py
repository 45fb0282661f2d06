"""Commands are tracked until the device answers: bounded retries, then a trouble alert;
doors are confirmed by the controller (ack or status), never assumed."""

from __future__ import annotations

from typing import Any

from tests.fire_e2e.conftest import SceneFactory
from tests.fire_e2e.scene import DOOR_CONFIRM_S, MAX_RETRIES, RETRY_S, TICK_S, Scene


def _troubles(scene: Scene, trouble: str) -> list[Any]:
    return scene.trouble.json(lambda t: t.get("trouble") == trouble)


async def test_command_never_acknowledged_is_retried_then_reported(
    make_scene: SceneFactory,
) -> None:
    scene = await make_scene({"SCR-b1-lift": {"ack": False}})
    lift = scene.terminals["SCR-b1-lift"]
    scene.field.alarm("b1", "callpoint", "CP-b1-3")
    inc = (await scene.app.until_alert(lambda a: a["state"] == "dispatched"))["id"]
    (first,) = await lift.until_command("show", inc)

    for copies in range(2, MAX_RETRIES + 2):
        await scene.advance(RETRY_S - TICK_S)
        await scene.settle()
        assert len(lift.commands("show", inc)) == copies - 1
        await scene.advance(TICK_S)
        await lift.until_command("show", inc, n=copies)
    # Each retry is the same command: same cmd_id, same payload.
    assert all(c == first for c in lift.commands("show", inc))
    assert _troubles(scene, "command_unacknowledged") == []

    await scene.advance(RETRY_S)
    await scene.trouble.inbox.until(lambda m: b"command_unacknowledged" in m.payload)
    (trouble,) = _troubles(scene, "command_unacknowledged")
    where = (trouble["building"], trouble["kind"], trouble["device"])
    assert where == ("b1", "screen", "SCR-b1-lift")
    what = (trouble["cmd_id"], trouble["incident"], trouble["action"])
    assert what == (first["cmd_id"], inc, "show")
    await scene.settle()  # the audit is committed right after the alert leaves
    (failed,) = scene.audit(inc, "command_failed")
    assert failed["data"]["cmd_id"] == first["cmd_id"]

    # Given up: no more copies, and every device that answered got its command once.
    await scene.advance(4 * RETRY_S)
    await scene.settle()
    assert len(lift.commands("show", inc)) == 1 + MAX_RETRIES
    assert len(scene.terminals["SCR-b1-lobby"].commands("show", inc)) == 1
    assert len(_troubles(scene, "command_unacknowledged")) == 1


async def test_door_not_confirmed_is_reported_recommanded_and_cleared_by_status(
    make_scene: SceneFactory,
) -> None:
    scene = await make_scene({"AC-b1": {"confirm": "none"}})
    controller = scene.doors["AC-b1"]
    scene.field.alarm("b1", "callpoint", "CP-b1-3")
    inc = (await scene.app.until_alert(lambda a: a["state"] == "dispatched"))["id"]
    (release,) = await controller.until_command("release", inc)
    assert release["doors"] == ["b1-d1", "b1-d2"]

    await scene.advance(DOOR_CONFIRM_S - TICK_S)
    await scene.settle()
    assert _troubles(scene, "door_not_released") == []
    await scene.advance(TICK_S)
    await scene.trouble.inbox.until(lambda m: b"door_not_released" in m.payload, n=2)
    raised = _troubles(scene, "door_not_released")
    assert sorted(t["door"] for t in raised) == ["b1-d1", "b1-d2"]
    assert {(t["state"], t["device"], t["incident"]) for t in raised} == {("raised", "AC-b1", inc)}
    # Re-commanded door by door, and the incident shows them unconfirmed.
    again = await controller.until_command("release", inc, n=3)
    assert sorted(tuple(c["doors"]) for c in again[1:]) == [("b1-d1",), ("b1-d2",)]
    unconfirmed = await scene.app.inbox.until(
        lambda m: m.topic.endswith(inc) and "unconfirmed" in m.json()["doors"].values()
    )
    assert unconfirmed[-1].json()["doors_confirmed"] == []

    controller.report_released()  # the controller's status finally says released
    await scene.trouble.inbox.until(lambda m: b'"cleared"' in m.payload, n=2)
    cleared = [t for t in _troubles(scene, "door_not_released") if t["state"] == "cleared"]
    assert sorted(t["door"] for t in cleared) == ["b1-d1", "b1-d2"]
    confirmed = await scene.app.inbox.until(
        lambda m: m.topic.endswith(inc) and len(m.json()["doors_confirmed"]) == 2
    )
    assert confirmed[-1].json()["doors"] == {"b1-d1": "confirmed", "b1-d2": "confirmed"}
    await scene.settle()
    vias = {r["data"]["via"] for r in scene.audit(inc, "door_confirmed")}
    assert vias == {"status"}


async def test_doors_confirmed_by_ack_or_by_status_raise_no_trouble(
    make_scene: SceneFactory,
) -> None:
    scene = await make_scene({"AC-gate-n": {"confirm": "status"}})
    scene.field.alarm("b2", "callpoint", "CP-b2-1")
    inc = (await scene.app.until_alert(lambda a: a["state"] == "dispatched"))["id"]
    await scene.expect_linkage(inc, "b2-f1")
    await scene.app.inbox.until(
        lambda m: m.topic.endswith(inc) and len(m.json()["doors_confirmed"]) == 2,
        what="both doors confirmed",
    )
    await scene.settle()
    via = {r["data"]["door"]: r["data"]["via"] for r in scene.audit(inc, "door_confirmed")}
    assert via == {"b2-d1": "ack", "gate-n-d1": "status"}

    await scene.advance(DOOR_CONFIRM_S * 3)
    await scene.settle()
    assert _troubles(scene, "door_not_released") == []
    assert len(scene.commands(inc, "release")) == 2, "a confirmed door is not re-commanded"
