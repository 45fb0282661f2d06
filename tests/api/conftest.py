"""A real gateway with a tokens file: one token per role, and a client that sends them."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.api.auth import Role, new_token
from tests.e2e.harness import GatewayProcess, write_config
from tests.servers import MosquittoServer


class TokenGatewayProcess(GatewayProcess):
    """The harness's gateway, with its status read using an admin token."""

    admin_token = ""

    def status(self) -> dict[str, Any]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.api_port}/api/v1/status",
            headers={"Authorization": f"Bearer {self.admin_token}"},
        )
        with urllib.request.urlopen(req, timeout=2) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]


@dataclass
class SecuredGateway:
    """A running gateway and one token per role."""

    proc: TokenGatewayProcess
    tokens: dict[Role, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proc.api_port}"

    def client(self, role: Role | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=5)


def start_secured(tmp: Path, mqtt_port: int, client_id: str, *overrides: str) -> SecuredGateway:
    """Write a tokens file (hashes only) and start a gateway that uses it."""
    cfg, api_port = write_config(tmp, mqtt_port, api="none", client_id=client_id)
    tokens: dict[Role, str] = {}
    lines = ["# role name sha256(token)"]
    for role in Role:
        token, line = new_token(role.value, f"{role.value}-1")
        tokens[role] = token
        lines.append(line)
    tokens_file = tmp / "tokens.txt"
    tokens_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert all(t not in tokens_file.read_text() for t in tokens.values())
    proc = TokenGatewayProcess(
        cfg, api_port, tmp / "gateway.log", f"api.tokens_file={tokens_file}", *overrides
    )
    proc.admin_token = tokens[Role.ADMIN]
    proc.start()
    return SecuredGateway(proc, tokens)


@pytest.fixture(scope="module")
def secured(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer
) -> Iterator[SecuredGateway]:
    """One secured gateway per test module."""
    gw = start_secured(tmp_path_factory.mktemp("secured"), mosquitto.port, "gw-secured")
    try:
        yield gw
    finally:
        gw.proc.terminate()
