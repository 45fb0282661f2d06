"""Config of the GB/T 26875.3 receiver (`[panels]`) and panel component → site mapping.

```toml
[panels]
listen = "0.0.0.0:5000"          # TCP; "" turns it off
udp_listen = "0.0.0.0:5000"      # UDP; "" turns it off
dial = ["192.0.2.7:6000"]        # client mode: connect out and act as the centre there
utc_offset_h = 8                 # panels send local time (China Standard Time)

[[panels.units]]
address = "0000000a1b2c"         # the transmission device's 6-byte address, 12 hex digits
building = "b12"

[[panels.units.components]]
sys_type = 1                     # 1: fire alarm system
sys_addr = 1                     # which controller
component = 1032                 # the 4-byte component address (loop × 256 + point, typ.)
zone = "b12-f3"
device = "SD-000123"             # as listed in the site model's zone, or any new id
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from gateway.site import Name, SiteModel

Address = Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f]{12}$")]
DetectorKind = Literal["smoke", "heat", "callpoint"]
_HEAT_TYPES: Final = frozenset(range(21, 29))  # 感温火灾探测器 (point/line/fibre)
_CALLPOINT_TYPES: Final = frozenset({81, 82})  # 手动火灾报警按钮, 消火栓按钮


def kind_for_component(comp_type: int) -> DetectorKind:
    """The contract's kind for a GB/T 26875.3 component type (table of component types).

    Heat detectors (21–28) are `heat`, manual call points and hydrant buttons (81, 82) are
    `callpoint`; everything else that can report fire (smoke, flame, gas, composite,
    modules) is `smoke`, so its alarm always reaches the fire engine as a detector.
    """
    if comp_type in _HEAT_TYPES:
        return "heat"
    if comp_type in _CALLPOINT_TYPES:
        return "callpoint"
    return "smoke"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _bind(value: str) -> str:
    if value == "":
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f'{value!r} must be HOST:PORT, e.g. 0.0.0.0:5000 (or "" for off)')
    return value


def split_host_port(value: str) -> tuple[str, int]:
    """`HOST:PORT` → (host, port); IPv6 hosts may be in brackets."""
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


class ComponentMap(_Strict):
    """One panel component and the site device it is."""

    sys_type: int = Field(default=1, ge=0, le=255)
    sys_addr: int = Field(default=1, ge=0, le=255)
    component: int = Field(ge=0, le=0xFFFFFFFF)
    zone: Name | None = None
    device: Name
    kind: DetectorKind | None = None  # default: from the component type of each frame


class PanelUnit(_Strict):
    """One user information transmission device and the building its panel serves."""

    address: Address
    building: Name
    name: str = ""
    components: list[ComponentMap] = []

    @field_validator("address")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @model_validator(mode="after")
    def _unique_components(self) -> PanelUnit:
        seen: set[tuple[int, int, int]] = set()
        for c in self.components:
            key = (c.sys_type, c.sys_addr, c.component)
            if key in seen:
                raise ValueError(
                    f"panel {self.address}: component sys_type={key[0]} sys_addr={key[1]} "
                    f"component={key[2]} is mapped twice"
                )
            seen.add(key)
        return self


class PanelSettings(_Strict):
    """`[panels]`: the GB/T 26875.3 receiver (docs/gb26875.md)."""

    enabled: bool = False
    listen: str = "0.0.0.0:5000"
    udp_listen: str = ""
    dial: list[str] = []
    dial_retry_s: float = Field(default=5.0, gt=0, le=3600)
    centre_address: Address = "000000000000"
    utc_offset_h: float = Field(default=8.0, ge=-12, le=14)
    idle_timeout_s: float = Field(default=600.0, gt=0)
    max_connections: int = Field(default=2000, ge=1)
    units: list[PanelUnit] = []

    @field_validator("listen", "udp_listen")
    @classmethod
    def _binds(cls, value: str) -> str:
        return _bind(value)

    @field_validator("dial")
    @classmethod
    def _dials(cls, values: list[str]) -> list[str]:
        for v in values:
            if not v:
                raise ValueError("dial entries must be HOST:PORT")
            _bind(v)
        return values

    @model_validator(mode="after")
    def _unique_units(self) -> PanelSettings:
        seen: set[str] = set()
        for u in self.units:
            if u.address in seen:
                raise ValueError(f"panel address {u.address} appears twice in [[panels.units]]")
            seen.add(u.address)
        return self

    def site_problems(self, site: SiteModel) -> list[str]:
        """Buildings and zones named here that the site model does not have."""
        buildings = {b.id: {z.id for z in b.zones} for b in site.buildings}
        problems: list[str] = []
        for u in self.units:
            if u.building not in buildings:
                problems.append(f"panel {u.address}: building {u.building!r} is not in [site]")
                continue
            for c in u.components:
                if c.zone is not None and c.zone not in buildings[u.building]:
                    problems.append(
                        f"panel {u.address} component {c.component}: zone {c.zone!r} is not "
                        f"a zone of building {u.building!r}"
                    )
        return problems


@dataclass(frozen=True, slots=True)
class ComponentPlace:
    """Where a panel component is in the site: its topic building, device and zone."""

    building: str
    device: str
    zone: str | None
    kind: DetectorKind | None
    mapped: bool


class PanelMap:
    """Lookups built once from `PanelSettings`: address → unit, component → place."""

    def __init__(self, settings: PanelSettings, default_building: str = "panels") -> None:
        self.default_building = default_building
        self.units: dict[int, PanelUnit] = {int(u.address, 16): u for u in settings.units}
        self._components: dict[tuple[int, int, int, int], ComponentPlace] = {}
        for addr, unit in self.units.items():
            for c in unit.components:
                self._components[(addr, c.sys_type, c.sys_addr, c.component)] = ComponentPlace(
                    unit.building, c.device, c.zone, c.kind, True
                )

    def building(self, panel: int) -> str:
        """The panel's building; an unknown panel lands in `default_building`."""
        unit = self.units.get(panel)
        return unit.building if unit is not None else self.default_building

    def place(self, panel: int, sys_type: int, sys_addr: int, comp: int) -> ComponentPlace:
        """The mapped place, or an id derived from the addresses with zone None."""
        found = self._components.get((panel, sys_type, sys_addr, comp))
        if found is not None:
            return found
        device = f"gb{panel:012x}-{sys_type}-{sys_addr}-{comp}"
        return ComponentPlace(self.building(panel), device, None, None, False)
