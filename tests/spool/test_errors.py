"""Spool failures are SpoolErrors that name the file and say what to do; nothing half-done."""

from __future__ import annotations

import os
import random
import re
import sqlite3
from pathlib import Path

import pytest

from gateway.errors import SpoolError
from gateway.spool import SCHEMA_VERSION, DeadLetter, Spool, SpoolRow

T0 = 1_795_475_306_083


def rows(n: int, cls: int = 0, width: int = 150) -> list[SpoolRow]:
    return [SpoolRow(cls, T0 + i, T0, f"m,n={i} v={'x' * width!r} {T0 + i}") for i in range(n)]


def open_spool(path: Path) -> Spool:
    return Spool(path, max_bytes=1 << 30, max_age_h=1)


def test_path_under_a_regular_file_is_a_spool_error_naming_the_path(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("x")
    path = tmp_path / "not-a-dir" / "spool.db"
    with pytest.raises(SpoolError, match=re.escape(str(path))) as info:
        open_spool(path)
    assert "cannot create the directory" in str(info.value)


def test_directory_as_spool_path_is_a_spool_error(tmp_path: Path) -> None:
    with pytest.raises(SpoolError, match=re.escape(str(tmp_path))):
        open_spool(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory_is_a_spool_error(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(SpoolError, match=re.escape(str(ro / "spool.db"))):
            open_spool(ro / "spool.db")
    finally:
        ro.chmod(0o700)


def test_file_of_random_bytes_is_a_spool_error_saying_it_is_damaged(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    path.write_bytes(random.Random(1).randbytes(16384))
    with pytest.raises(SpoolError, match=re.escape(str(path))) as info:
        open_spool(path)
    assert "damaged" in str(info.value)


def test_spool_with_damaged_pages_is_a_spool_error(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    s = open_spool(path)
    s.commit_batch(rows(3000))
    s.close()
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 10 * page
    garbage = random.Random(2).randbytes(len(data) - page)
    data[page:] = garbage  # keep the header page, destroy every table and index page
    path.write_bytes(bytes(data))

    with pytest.raises(SpoolError, match=re.escape(str(path))):
        s = open_spool(path)
        s.next_batch(10)  # only reached if opening did not notice


def test_spool_of_a_newer_gateway_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    open_spool(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SpoolError, match=rf"{re.escape(str(path))}.*newer gateway"):
        open_spool(path)


def test_sqlite_file_of_another_program_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.close()
    with pytest.raises(SpoolError, match="not a gateway spool"):
        open_spool(path)


def test_full_disk_is_a_spool_error_and_rolls_back_the_whole_batch(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    s = open_spool(path)
    s.commit_batch(rows(10, cls=2))
    before = s.stats()
    # SQLite returns the same SQLITE_FULL "database or disk is full" for a page limit as for a
    # full filesystem; the limit makes the condition reproducible without a tiny mount.
    pages = s._w.execute("PRAGMA page_count").fetchone()[0]
    s._w.execute(f"PRAGMA max_page_count = {pages + 5}")

    with pytest.raises(SpoolError, match=rf"{re.escape(str(path))}.*full.*free disk space"):
        s.commit_batch(rows(2000), [DeadLetter(T0, "t", b"p", "r", "decode")])

    assert s.stats() == before
    assert len(s.next_batch(100_000)) == 10
    assert s.dead_letters() == []
    s._w.execute("PRAGMA max_page_count = 1073741823")
    assert s.commit_batch(rows(2000)).rows == 2000  # usable again once there is room
    after = s.stats()
    assert after.rows == 2010
    s.close()
    assert open_spool(path).stats().rows == 2010


def test_use_after_close_is_a_spool_error(tmp_path: Path) -> None:
    s = open_spool(tmp_path / "spool.db")
    s.close()
    s.close()  # closing twice is harmless
    with pytest.raises(SpoolError, match="after close"):
        s.commit_batch(rows(1))
    with pytest.raises(SpoolError, match="after close"):
        s.next_batch(1)


@pytest.mark.parametrize(
    ("max_bytes", "max_age_h", "sync"), [(0, 1.0, "full"), (1, 0.0, "full"), (1, 1.0, "off")]
)
def test_bad_settings_are_spool_errors(
    tmp_path: Path, max_bytes: int, max_age_h: float, sync: str
) -> None:
    with pytest.raises(SpoolError, match=re.escape(str(tmp_path / "s.db"))):
        Spool(tmp_path / "s.db", max_bytes, max_age_h, sync)  # type: ignore[arg-type]
