"""Decode: payload bytes → canonical `DeviceMessage`, through firmware profiles."""

from gateway.decode.decoder import Decoder
from gateway.decode.message import (
    DeviceMessage,
    FieldValue,
    SpoolClass,
    may_be_alarm,
)
from gateway.decode.profiles import EVENTS, Profile, ProfileSet, load_profile

__all__ = [
    "EVENTS",
    "Decoder",
    "DeviceMessage",
    "FieldValue",
    "Profile",
    "ProfileSet",
    "SpoolClass",
    "load_profile",
    "may_be_alarm",
]
