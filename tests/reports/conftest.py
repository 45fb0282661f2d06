"""A real spool in a temp dir and a config pointing at it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from gateway.config import GatewayConfig, GatewaySection, SpoolSection
from gateway.decode.message import SpoolClass
from gateway.fire import AuditRecord
from gateway.site import SiteModel
from gateway.spool import AuditRow, Spool, SpoolRow
from tests.fire.helpers import SITE, site_model


def config_for(path: Path, site: SiteModel | None = None) -> GatewayConfig:
    """A gateway config whose spool is `path` (site `shazui`, the fire tests' site model)."""
    return GatewayConfig(
        gateway=GatewaySection(id="gw-test", site=SITE),
        spool=SpoolSection(path=path),
        site=site or site_model(),
    )


def store(
    spool: Spool, lines: Sequence[tuple[int, str]], audit: Sequence[AuditRecord] = ()
) -> None:
    """Commit points and audit records as the gateway does (audit also as `incident` points)."""
    rows = [SpoolRow(SpoolClass.EVENT, ts, ts, line) for ts, line in lines]
    rows += [SpoolRow(SpoolClass.EVENT, r.ts, r.ts, r.line(SITE)) for r in audit]
    audit_rows = [
        AuditRow(r.ts, r.incident, json.dumps(r.to_dict(), ensure_ascii=False)) for r in audit
    ]
    spool.commit_batch(rows, audit=audit_rows)


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    s = Spool(tmp_path / "spool.db", 64 * 1024**2, 24 * 30, "normal", keep_history=True)
    yield s
    s.close()
