"""`scene`: a started in-process gateway with its simulated devices, stopped afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fire_e2e.scene import Scene
from tests.servers import MosquittoServer

SceneFactory = Callable[..., Awaitable[Scene]]


@pytest.fixture
async def make_scene(tmp_path: Path, mosquitto: MosquittoServer) -> AsyncIterator[SceneFactory]:
    """`await make_scene(behaviour={...})`: devices up, gateway started."""
    if not mosquitto.running:
        mosquitto.start()
    made: list[Scene] = []

    async def make(behaviour: dict[str, dict[str, Any]] | None = None) -> Scene:
        scene = Scene(mosquitto.port, tmp_path / f"scene{len(made)}", behaviour)
        made.append(scene)
        await scene.start()
        return scene

    try:
        yield make
    finally:
        for scene in made:
            try:
                await scene.stop()
            finally:
                scene.close()


@pytest.fixture
async def scene(make_scene: SceneFactory) -> Scene:
    """A started scene where every device answers every command."""
    return await make_scene()
