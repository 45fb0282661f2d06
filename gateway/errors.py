"""The gateway's exception hierarchy: every user-facing error says what, where and what to do."""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """A config file or override is invalid; the message names the file, key and line."""


class TopicError(GatewayError):
    """An MQTT topic does not follow `{root}/{site}/{building}/{kind}/{device}/{channel}`."""


class DecodeError(GatewayError):
    """A payload cannot be turned into a canonical device message."""


class ProfileError(GatewayError):
    """A firmware profile file is invalid."""


class SpoolError(GatewayError):
    """The durable spool cannot store or read."""


class ForwardError(GatewayError):
    """The time-series database refused or could not be reached."""
