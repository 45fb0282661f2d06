"""InfluxDB 1.x writer: `POST /write?db=&rp=&precision=ms` with aiohttp."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import aiohttp

from gateway.forward.writer import OK, WriteOutcome, outcome_for_status

log = logging.getLogger(__name__)

_MAX_MESSAGE = 500
_TEXT = {"Content-Type": "text/plain; charset=utf-8"}


class InfluxV1Writer:
    """Writes line protocol to an InfluxDB 1.x (or any server speaking its `/write`).

    One connection pool per writer, created on first use inside the running loop.
    """

    def __init__(
        self,
        url: str,
        database: str,
        retention_policy: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self._params = {"db": database, "precision": "ms"}
        if retention_policy:
            self._params["rp"] = retention_policy
        self._auth = aiohttp.BasicAuth(username, password or "") if username else None
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout_s),
                auth=self._auth,
            )
        return self._session

    async def write(self, lines: Sequence[str]) -> WriteOutcome:
        """Write the lines in one request; 204 is ok, see `WriteOutcome` for the rest."""
        if not lines:
            return OK
        body = "\n".join(lines).encode()
        try:
            async with self._client().post(
                f"{self.url}/write", params=self._params, data=body, headers=_TEXT
            ) as resp:
                if resp.status in (200, 204):
                    return OK
                text = await resp.text(errors="replace")
                return outcome_for_status(resp.status, _server_message(resp, text))
        except TimeoutError:
            return WriteOutcome(
                "retry", f"{self.url}/write: no answer within {self._timeout_s:g} s", "timeout"
            )
        except (aiohttp.ClientError, OSError) as exc:
            return WriteOutcome(
                "retry", f"{self.url}/write: {exc or type(exc).__name__}", "connect"
            )

    async def ensure_database(self) -> bool:
        """`CREATE DATABASE` (idempotent in 1.x) so a demo or test works out of the box.

        Never raises: a failure (no right to create, server down) is logged as a warning
        saying what to do, and False returned; writes go on and are retried as usual.
        """
        quoted = self.database.replace("\\", "\\\\").replace('"', '\\"')
        try:
            async with self._client().post(
                f"{self.url}/query", data={"q": f'CREATE DATABASE "{quoted}"'}
            ) as resp:
                text = await resp.text(errors="replace")
                if resp.status == 200 and '"error"' not in text:
                    return True
                message = _server_message(resp, text)
        except TimeoutError:
            message = f"no answer within {self._timeout_s:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            message = str(exc) or type(exc).__name__
        log.warning(
            "cannot create InfluxDB database %r at %s: %s (create it by hand or check"
            " [influx] url/username/password_file; writes are retried meanwhile)",
            self.database,
            self.url,
            message,
        )
        return False

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _server_message(resp: aiohttp.ClientResponse, text: str) -> str:
    """The `error` of InfluxDB's JSON answer, else its error header, else the body."""
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    message = ""
    if isinstance(doc, dict):
        if isinstance(doc.get("error"), str):
            message = doc["error"]
        elif isinstance(doc.get("message"), str):
            message = doc["message"]
        else:
            errors = [
                r["error"] for r in doc.get("results", []) if isinstance(r, dict) and "error" in r
            ]
            message = "; ".join(str(e) for e in errors)
    message = message or resp.headers.get("X-Influxdb-Error", "") or text.strip()
    message = message or f"HTTP {resp.status} {resp.reason or ''}".strip()
    return message[:_MAX_MESSAGE]
