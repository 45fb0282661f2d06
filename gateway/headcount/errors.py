"""The head-count engine's error: a caller passed something the site model does not know."""

from __future__ import annotations

from gateway.errors import GatewayError


class HeadcountError(GatewayError):
    """Bad input to the head-count engine (unknown target, index out of range, bad value)."""
