"""InfluxDB 2.x writer (`/api/v2/write`) through the official async client.

Also speaks to anything that accepts the v2 write API: InfluxDB 1.8+, VictoriaMetrics.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.client.write_api_async import WriteApiAsync
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from gateway.forward.writer import OK, WriteOutcome, outcome_for_status

_MAX_MESSAGE = 500


class InfluxV2Writer:
    """Writes line protocol to an org/bucket with a token (none for servers without auth).

    The client must be created inside the running loop, so it is made on first write.
    """

    def __init__(
        self,
        url: str,
        org: str,
        bucket: str,
        token: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.org = org
        self.bucket = bucket
        self._token = token or ""  # empty: no Authorization header
        self._timeout_s = timeout_s
        self._client: InfluxDBClientAsync | None = None

    def _write_api(self) -> WriteApiAsync:
        if self._client is None:
            self._client = InfluxDBClientAsync(
                url=self.url,
                token=self._token,
                org=self.org,
                timeout=round(self._timeout_s * 1000),
            )
        return self._client.write_api()

    async def write(self, lines: Sequence[str]) -> WriteOutcome:
        """Write the lines in one request; see `WriteOutcome` for what comes back."""
        if not lines:
            return OK
        where = f"{self.url}/api/v2/write (bucket {self.bucket!r})"
        try:
            api = self._write_api()
            await api.write(
                bucket=self.bucket,
                org=self.org,
                record="\n".join(lines),
                write_precision=WritePrecision.MS,  # type: ignore[arg-type]  # a str constant
            )
        except ApiException as exc:
            message = getattr(exc, "message", None) or exc.reason or str(exc)
            if isinstance(message, bytes):
                message = message.decode("utf-8", "replace")
            status = int(exc.status or 0)
            if status == 0:
                return WriteOutcome("retry", f"{where}: {message}"[:_MAX_MESSAGE], "client")
            return outcome_for_status(status, str(message)[:_MAX_MESSAGE])
        except TimeoutError:
            return WriteOutcome(
                "retry", f"{where}: no answer within {self._timeout_s:g} s", "timeout"
            )
        except (aiohttp.ClientError, OSError) as exc:
            return WriteOutcome("retry", f"{where}: {exc or type(exc).__name__}", "connect")
        except InfluxDBError as exc:
            return WriteOutcome("retry", f"{where}: {exc.message}"[:_MAX_MESSAGE], "client")
        return OK

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()  # type: ignore[no-untyped-call]
            self._client = None
