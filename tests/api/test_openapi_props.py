"""Property test over the served OpenAPI spec (schemathesis strategies, bounded examples).

For every operation: generated requests with an admin token never get a 5xx, and the
same requests with a token of a role the route does not admit get 403.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.api.auth import COMMAND, READ, RESPOND, Role
from tests.api.conftest import SecuredGateway, start_secured
from tests.servers import MosquittoServer

schemathesis = pytest.importorskip("schemathesis")

EXAMPLES = 15
NEEDS = {"POST /api/v1/incidents/{incident_id}/actions": RESPOND,
         "POST /api/v1/occupancy/{target}": COMMAND, "POST /api/v1/drills": COMMAND,
         "POST /api/v1/notices": COMMAND,
         "DELETE /api/v1/notices/{notice_id}": COMMAND}  # fmt: skip
PUBLIC = {"GET /healthz", "GET /metrics"}


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer
) -> Iterator[SecuredGateway]:
    # Own gateway: generated writes (drills, corrections) must not disturb other modules.
    g = start_secured(tmp_path_factory.mktemp("props"), mosquitto.port, "gw-props")
    try:
        yield g
    finally:
        g.proc.terminate()


def test_no_5xx_and_wrong_roles_refused_for_every_operation(gw: SecuredGateway) -> None:
    with gw.client(Role.ADMIN) as admin:
        spec = admin.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) >= 14
    clients = {r: gw.client(r) for r in Role}
    seen: set[str] = set()
    try:
        for op in ops:
            label = f"{op.method.upper()} {op.path}"
            seen.add(label)
            allowed = NEEDS.get(label, READ)
            denied = [r for r in Role if r not in allowed and r is not Role.ADMIN]

            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            @given(
                case=op.as_strategy(),
                wrong=st.sampled_from(denied or [None]),
                label=st.just(label),
            )
            def check(case: object, wrong: Role | None, label: str) -> None:
                kwargs = case.as_transport_kwargs(base_url=gw.url)  # type: ignore[attr-defined]
                kwargs.pop("headers", None)
                method, url = kwargs.pop("method"), kwargs.pop("url")
                body = {k: v for k, v in kwargs.items() if k in {"json", "params", "content"}}
                r = clients[Role.ADMIN].request(method, url, **body)
                assert r.status_code < 500, (label, r.status_code, r.text)
                if label in PUBLIC:
                    return
                assert httpx.request(method, url, timeout=5, **body).status_code == 401, label
                if wrong is not None:
                    r = clients[wrong].request(method, url, **body)
                    assert r.status_code == 403, (label, wrong, r.status_code)

            check()
    finally:
        for c in clients.values():
            c.close()
    assert {"POST /api/v1/drills", "GET /api/v1/incidents/{incident_id}"} <= seen
