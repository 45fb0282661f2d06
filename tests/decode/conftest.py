"""Fixtures for the decoder: the shipped profiles, a small site model, a decoder."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.decode import Decoder, DeviceMessage, ProfileSet
from gateway.ingest.topic import DeviceTopic
from gateway.site import SiteIndex, SiteModel

PROFILES_DIR = Path(__file__).resolve().parents[2] / "firmware_configs"
SALT = b"test-site-salt"
RECEIVED_MS = ManualClock().wall_ms()

SITE = {
    "name": "shazui",
    "buildings": [
        {
            "id": "b12",
            "floors": 10,
            "zones": [{"id": "b12-f3", "floor": 3, "smoke": ["SD-1", "HX-1"], "heat": ["HD-1"]}],
            "cameras": ["CAM-Z"],
        }
    ],
    "checkpoints": [
        {
            "id": "n-gate",
            "building": "gates",
            "doors": ["n-gate-1", "AC-01-door-0"],
            "access": ["AR-1", "AC-01"],
            "cameras": ["CAM-1", "HIK-1"],
        }
    ],
    "profile_rules": [
        {"kind": "smoke", "prefix": "HX-", "model": "hx-jtyjg"},
        {"kind": "access", "prefix": "AC-", "model": "dh-asc"},
        {"kind": "camera", "prefix": "HIK-", "model": "hik-pc"},
        {"kind": "voice", "prefix": "AMP-", "model": "generic-amp"},
    ],
}


def card_hash(card: str) -> str:
    """The reference card hash of CONTRACT.md: blake2b(salt + card), 16-byte digest."""
    return hashlib.blake2b(SALT + card.encode(), digest_size=16).hexdigest()


@pytest.fixture(scope="session")
def profiles() -> ProfileSet:
    return ProfileSet.load(PROFILES_DIR)


@pytest.fixture(scope="session")
def site() -> SiteIndex:
    return SiteIndex(SiteModel.model_validate(SITE))


@pytest.fixture
def decoder(profiles: ProfileSet, site: SiteIndex) -> Decoder:
    return Decoder(profiles, site, SALT)


Decode = Callable[..., DeviceMessage]


@pytest.fixture
def decode(decoder: Decoder) -> Decode:
    """`decode(kind, channel, payload, device=..., building=...)` with a fixed receive time."""

    def run(
        kind: str, channel: str, payload: bytes, device: str = "", building: str = ""
    ) -> DeviceMessage:
        topic = DeviceTopic(
            "shazui",
            building or ("gates" if kind in ("access", "camera") else "b12"),
            kind,
            device or _DEFAULT_DEVICE[kind],
            channel,
        )
        return decoder.decode(topic, payload, RECEIVED_MS)

    return run


_DEFAULT_DEVICE = {
    "smoke": "SD-1",
    "heat": "HD-1",
    "callpoint": "CP-1",
    "access": "AR-1",
    "camera": "CAM-1",
    "screen": "SCR-1",
    "voice": "VT-1",
}
