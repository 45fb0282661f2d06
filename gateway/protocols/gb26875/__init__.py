"""GB/T 26875.3 (城市消防远程监控系统 第3部分：报警传输网络通信协议) receiver."""

from gateway.protocols.gb26875.appdata import (
    AppData,
    AppDataError,
    ComponentState,
    ComponentStatus,
    DeviceState,
    DeviceStatus,
    SystemStatus,
    decode_appdata,
    encode_appdata,
)
from gateway.protocols.gb26875.frame import Command, Frame, FrameError, FrameTime, decode_frame
from gateway.protocols.gb26875.mapping import PanelSettings, PanelUnit, kind_for_component
from gateway.protocols.gb26875.protocol import Outcome, PanelProtocol
from gateway.protocols.gb26875.receiver import PanelReceiver
from gateway.protocols.gb26875.server import PanelServer
from gateway.protocols.gb26875.stream import FrameSplitter

__all__ = [
    "AppData",
    "AppDataError",
    "Command",
    "ComponentState",
    "ComponentStatus",
    "DeviceState",
    "DeviceStatus",
    "Frame",
    "FrameError",
    "FrameSplitter",
    "FrameTime",
    "Outcome",
    "PanelProtocol",
    "PanelReceiver",
    "PanelServer",
    "PanelSettings",
    "PanelUnit",
    "SystemStatus",
    "decode_appdata",
    "decode_frame",
    "encode_appdata",
    "kind_for_component",
]
