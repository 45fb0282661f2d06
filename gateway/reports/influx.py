"""Reports read from InfluxDB 1.x: the `History` protocol over `/query` (InfluxQL).

Reads back what `gateway.forward.influx_v1.InfluxV1Writer` stored (docs/storage.md): one
measurement, `GROUP BY *` so tags and fields come apart, `epoch=ms`, streamed in chunks
(`chunked=true`), at most `max_points` per read. Field types come from `SHOW FIELD KEYS`,
so a float stored as `12.0` (which the JSON answer writes `12`) comes back as a float and
the points equal those parsed from the spool's lines. Blocking (stdlib HTTP): call it from
a thread, as the report code already runs.

InfluxDB 2 has no InfluxQL `/query` here (Flux only), so with `api = "v2"` reports read the
spool's embedded history (docs/reports.md).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

from gateway.decode.message import FieldValue
from gateway.reports.lineparse import Point
from gateway.reports.render import ReportError

if TYPE_CHECKING:
    from gateway.config import GatewayConfig

MAX_POINTS: Final = 5_000_000  # per measurement and range, as for the spool readers
CHUNK_POINTS: Final = 10_000
_MESSAGE_MAX: Final = 300


class InfluxV1History:
    """`History` over an InfluxDB 1.x database (or anything answering its `/query`)."""

    def __init__(
        self,
        url: str,
        database: str,
        retention_policy: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
        *,
        max_points: int = MAX_POINTS,
        chunk_points: int = CHUNK_POINTS,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.retention_policy = retention_policy
        self.timeout_s = timeout_s
        self.max_points = max_points
        self.chunk_points = chunk_points
        self._headers = {"Accept": "application/json"}
        if username:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._types: dict[str, dict[str, str]] = {}

    @classmethod
    def from_config(cls, cfg: GatewayConfig) -> InfluxV1History:
        """The reader for `[influx]` (ReportError unless `api = "v1"`)."""
        influx = cfg.influx
        if influx.api != "v1":
            raise ReportError(
                f'reading reports from InfluxDB needs [influx] api = "v1" (it is'
                f" {influx.api!r}); use the spool's history (--source spool)"
            )
        return cls(
            influx.url,
            influx.database,
            influx.retention_policy,
            influx.username,
            cfg.read_secret(influx.password_file),
            influx.timeout_s,
        )

    def points(self, measurement: str, since_ms: int, until_ms: int) -> list[Point]:
        """Points of `measurement` in [since_ms, until_ms), oldest first."""
        types = self._field_types(measurement)
        query = (
            f"SELECT * FROM {self._source(measurement)} WHERE time >= {int(since_ms)}ms"
            f" AND time < {int(until_ms)}ms GROUP BY *"
        )
        out: list[Point] = []
        for doc in self._query(query, chunked=True):
            for series in _series(doc, query):
                tags = {k: str(v) for k, v in (series.get("tags") or {}).items() if v}
                columns = series.get("columns") or []
                for values in series.get("values") or []:
                    row = dict(zip(columns, values, strict=False))
                    ts = row.pop("time")
                    fields = {k: _typed(v, types.get(k)) for k, v in row.items() if v is not None}
                    out.append(Point(measurement, tags, fields, int(ts)))
                if len(out) > self.max_points:
                    raise ReportError(
                        f"InfluxDB {self.url}: more than {self.max_points} points of"
                        f" {measurement!r} in the range; report a shorter range"
                    )
        out.sort(key=lambda p: p.ts_ms)  # series by series → time order (stable per series)
        return out

    def _field_types(self, measurement: str) -> dict[str, str]:
        if measurement not in self._types:
            query = f"SHOW FIELD KEYS FROM {self._source(measurement)}"
            types: dict[str, str] = {}
            for doc in self._query(query, chunked=False):
                for series in _series(doc, query):
                    for key, kind in series.get("values") or []:
                        types.setdefault(str(key), str(kind))
            self._types[measurement] = types
        return self._types[measurement]

    def _source(self, measurement: str) -> str:
        name = _ident(measurement)
        return f"{_ident(self.retention_policy)}.{name}" if self.retention_policy else name

    def _query(self, query: str, *, chunked: bool) -> Iterator[dict[str, Any]]:
        """The answer's JSON documents (one per chunk); ReportError for any failure."""
        params = {"db": self.database, "q": query, "epoch": "ms"}
        if chunked:
            params |= {"chunked": "true", "chunk_size": str(self.chunk_points)}
        req = urllib.request.Request(
            f"{self.url}/query?{urllib.parse.urlencode(params)}", headers=self._headers
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                for raw in resp:
                    if raw.strip():
                        yield json.loads(raw)
        except urllib.error.HTTPError as exc:
            raise self._error(_http_message(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise self._error(f"cannot reach the server ({reason})") from None
        except ValueError as exc:
            raise self._error(f"the answer is not JSON ({exc})") from None

    def _error(self, message: str) -> ReportError:
        return ReportError(
            f"InfluxDB {self.url} (database {self.database!r}): {message[:_MESSAGE_MAX]};"
            " check [influx] url, database and credentials, or report from the spool"
            " (--source spool)"
        )


def _series(doc: dict[str, Any], query: str) -> list[dict[str, Any]]:
    if "error" in doc:
        raise ReportError(f"InfluxDB refused {query!r}: {doc['error']}")
    series: list[dict[str, Any]] = []
    for result in doc.get("results") or []:
        if "error" in result:
            raise ReportError(f"InfluxDB refused {query!r}: {result['error']}")
        series.extend(result.get("series") or [])
    return series


def _typed(value: Any, kind: str | None) -> FieldValue:
    """A JSON value as the type InfluxDB stored (JSON writes the float 12.0 as 12)."""
    if kind == "float" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str | bool | int | float):
        return value
    return str(value)


def _ident(name: str) -> str:
    """An InfluxQL double-quoted identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _http_message(exc: urllib.error.HTTPError) -> str:
    try:
        body = exc.read().decode("utf-8", "replace")
    except OSError:
        body = ""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        body = doc["error"]
    return f"HTTP {exc.code}: {body.strip() or exc.reason}"
