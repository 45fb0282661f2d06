"""The outbox table's SQL: reading a forwarder batch and deleting forwarded rows.

`Spool` holds the byte accounting and the locks; these functions run inside its
transactions (deletes) or on a reader connection (`select_batch`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from heapq import merge
from typing import Final

from gateway.spool import history as hist
from gateway.spool.records import OutboxRow

_BATCH_QUERY: Final = (
    "SELECT id, cls, received_ms, line FROM outbox WHERE cls = ? ORDER BY id LIMIT ?"
)
_UP_TO: Final = "(cls = ? AND id <= ?)"


def select_batch(conn: sqlite3.Connection, limit: int) -> list[OutboxRow]:
    """The oldest `limit` rows, alarms and events first (by id), then telemetry: per class
    always that class's oldest rows, which `delete_upto` relies on."""
    alarms = [OutboxRow(*r) for r in conn.execute(_BATCH_QUERY, (2, limit))]
    events = [OutboxRow(*r) for r in conn.execute(_BATCH_QUERY, (1, limit))]
    batch = list(merge(alarms, events))[:limit]
    if len(batch) < limit:
        batch += [OutboxRow(*r) for r in conn.execute(_BATCH_QUERY, (0, limit - len(batch)))]
    return batch


def last_ids(batch: Sequence[OutboxRow]) -> dict[int, int]:
    """Per class, the last id of a `select_batch` result."""
    upto: dict[int, int] = {}
    for row in batch:  # ascending ids within each class
        upto[row.cls] = row.id
    return upto


def delete_ids(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, tuple[int, int, int]]:
    """Delete rows by id; {id: (cls, bytes, received_ms)} of those that existed."""
    cur = conn.execute(
        f"DELETE FROM outbox WHERE {hist.BY_IDS} RETURNING id, cls, {hist.LEN}, received_ms",
        (json.dumps([int(i) for i in ids]),),
    )
    return {row_id: (cls, size, rec) for row_id, cls, size, rec in cur.fetchall()}


def delete_keeping_ids(
    conn: sqlite3.Connection, ids: Sequence[int], store: bool
) -> tuple[dict[int, tuple[int, int, int]], tuple[int, int]]:
    """`delete_ids`, first copying the rows the history keeps into it (or, with
    `store=False`, only counting them); (deleted rows, (history rows, bytes))."""
    kept = hist.keep(conn, hist.BY_IDS, (json.dumps([int(i) for i in ids]),), store)
    return delete_ids(conn, ids), kept


def delete_upto(
    conn: sqlite3.Connection, upto: dict[int, int], keep: bool | None
) -> tuple[list[tuple[int, int, int]], tuple[int, int]]:
    """Delete, per class, every row up to that class's id in `upto` (a `last_ids` of a
    batch: exactly its rows, minus any pruned or evicted since, as new rows get higher ids),
    first copying those the history keeps (`keep`: True) or counting them (False).

    In SQL, without a Python object per row: ~2.2 µs of CPU a row instead of ~4.4 for the
    ids. Returns ([(cls, rows, bytes)], (history rows, bytes)); the history copy is in id
    order across the classes, as `delete_keeping_ids` makes it.
    """
    where = " OR ".join([_UP_TO] * len(upto))
    params = [p for cls, last_id in sorted(upto.items()) for p in (cls, last_id)]
    kept = (0, 0) if keep is None else hist.keep(conn, where, params, keep)
    gone = conn.execute(
        f"SELECT cls, count(*), sum({hist.LEN}) FROM outbox WHERE {where} GROUP BY cls", params
    ).fetchall()
    conn.execute(f"DELETE FROM outbox WHERE {where}", params)
    return gone, kept
