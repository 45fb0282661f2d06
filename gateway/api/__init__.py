"""HTTP API, live feed and dashboard of the gateway (docs/api.md)."""

from gateway.api.auth import Principal, Role, new_token
from gateway.api.server import create_app, serve_api, status_snapshot

__all__ = ["Principal", "Role", "create_app", "new_token", "serve_api", "status_snapshot"]
