"""The GB/T 26875.3 receiver as one gateway component: transports + protocol + callbacks.

```python
receiver = PanelReceiver(cfg.panels, cfg.gateway.site, clock, on_messages=…,
                         on_panel_seen=…, on_alerts=…)
tg.create_task(receiver.run())
```
`on_messages(messages, alarm)` is called once per frame that produced messages, before the
frame is confirmed; if it returns an awaitable, the confirm waits for it, so a panel's
upload is confirmed only once the gateway has stored it (the panel retransmits otherwise).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable

from gateway.clock import Clock
from gateway.decode.message import DeviceMessage
from gateway.devices.alerts import Alert
from gateway.protocols.gb26875.frame import Frame, FrameError, address_hex
from gateway.protocols.gb26875.mapping import PanelSettings, split_host_port
from gateway.protocols.gb26875.protocol import PanelProtocol
from gateway.protocols.gb26875.server import PanelServer

log = logging.getLogger(__name__)

MessagesCallback = Callable[[list[DeviceMessage], bool], Awaitable[None] | None]
PanelSeenCallback = Callable[[str], None]
AlertsCallback = Callable[[list[Alert]], Awaitable[None] | None]


class PanelReceiver:
    """Listens (TCP/UDP), dials, decodes panel frames and hands the results to callbacks."""

    def __init__(
        self,
        settings: PanelSettings,
        site: str,
        clock: Clock,
        on_messages: MessagesCallback,
        on_panel_seen: PanelSeenCallback | None = None,
        on_alerts: AlertsCallback | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.protocol = PanelProtocol(settings, site, clock)
        self.server = PanelServer(
            self.handle,
            idle_timeout_s=settings.idle_timeout_s,
            max_connections=settings.max_connections,
        )
        self._on_messages = on_messages
        self._on_panel_seen = on_panel_seen
        self._on_alerts = on_alerts

    async def run(self) -> None:
        """Run every configured transport until cancelled."""
        s = self.settings
        async with asyncio.TaskGroup() as tg:
            if s.listen:
                tg.create_task(self.server.serve_tcp(*split_host_port(s.listen)))
            if s.udp_listen:
                tg.create_task(self.server.serve_udp(*split_host_port(s.udp_listen)))
            for target in s.dial:
                tg.create_task(self.server.dial(*split_host_port(target), s.dial_retry_s))

    async def handle(self, item: Frame | FrameError, peer: str) -> Frame | None:
        """One frame from `peer`: callbacks first, then the reply to send (None: none)."""
        out = self.protocol.handle(item, self.clock.wall_ms())
        if isinstance(item, FrameError):
            log.info("GB/T 26875.3 %s: %s", peer, item)
        if out.panel is not None and self._on_panel_seen is not None:
            self._on_panel_seen(address_hex(out.panel))
        if out.messages:
            pending = self._on_messages(out.messages, out.alarm)
            if inspect.isawaitable(pending):
                await pending
        if out.alerts and self._on_alerts is not None:
            pending = self._on_alerts(out.alerts)
            if inspect.isawaitable(pending):
                await pending
        return out.reply

    def stats(self) -> dict[str, int]:
        """Every counter: protocol (`frames`, `frame_bad_checksum`, `type_2`, …) and transport."""
        merged = dict(self.protocol.stats)
        merged.update({f"net_{k}": v for k, v in self.server.stats.items()})
        merged["net_open_connections"] = self.server.open_connections
        return merged
