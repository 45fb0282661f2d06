"""Bearer-token auth of the HTTP API: roles, the tokens file, and failure rate limiting.

The tokens file holds one token a line, `role name sha256-hex-of-token`, so the file never
holds a token itself (`new_token` makes both). Tokens are compared as SHA-256 digests with
`hmac.compare_digest` against every entry, so timing says nothing about which one matched.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import weakref
from collections import OrderedDict, deque
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter

from gateway.clock import Clock
from gateway.errors import ConfigError

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MAX_TRACKED_CLIENTS = 10_000  # bounds memory when many addresses fail


class Role(StrEnum):
    """What a token may do; `admin` may do everything."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    FIRE_TEAM = "fire_team"
    ADMIN = "admin"


READ: frozenset[Role] = frozenset(Role)
RESPOND: frozenset[Role] = frozenset({Role.OPERATOR, Role.FIRE_TEAM, Role.ADMIN})
COMMAND: frozenset[Role] = frozenset({Role.OPERATOR, Role.ADMIN})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: the token's name and role."""

    name: str
    role: Role


class AuthFailure(Exception):
    """A refused request: HTTP status, a message for the client, and `Retry-After` if blocked."""

    def __init__(self, status: int, detail: str, retry_after_s: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after_s = retry_after_s


def token_digest(token: str) -> str:
    """The SHA-256 hex digest stored in the tokens file."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token(role: str, name: str) -> tuple[str, str]:
    """A fresh random token and the tokens-file line that admits it: `(token, line)`."""
    try:
        r = Role(role)
    except ValueError:
        raise ConfigError(
            f"token role {role!r}: expected one of {', '.join(x.value for x in Role)}"
        ) from None
    if not _NAME.match(name):
        raise ConfigError(f"token name {name!r}: use 1-64 of A-Z a-z 0-9 _ . @ -")
    token = "cgw_" + secrets.token_urlsafe(32)
    return token, f"{r.value} {name} {token_digest(token)}"


def parse_tokens(text: str, source: str) -> list[tuple[Principal, str]]:
    """Entries of a tokens file; ConfigError names the file and line of a bad one."""
    entries: list[tuple[Principal, str]] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        where = f"{source}:{n}"
        if len(parts) != 3:
            raise ConfigError(f"{where}: expected `role name sha256`, got {len(parts)} fields")
        role, name, digest = parts
        if role not in Role.__members__.values():
            raise ConfigError(
                f"{where}: unknown role {role!r} (viewer, operator, fire_team, admin)"
            )
        if not _NAME.match(name):
            raise ConfigError(f"{where}: bad token name {name!r}")
        if not _HEX64.match(digest):
            raise ConfigError(
                f"{where}: the third field must be the token's SHA-256 (64 lowercase hex digits)"
            )
        entries.append((Principal(name, Role(role)), digest))
    return entries


class TokenStore:
    """The tokens file, re-read when it changes (so tokens are revoked without a restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime_ns = -1
        self._entries: list[tuple[Principal, bytes]] = []
        self._load()

    def _load(self) -> None:
        try:
            stat = self.path.stat()
            text = self.path.read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"api.tokens_file {self.path}: cannot read: {exc}") from exc
        entries = parse_tokens(text, str(self.path))
        self._entries = [(p, bytes.fromhex(d)) for p, d in entries]
        self._mtime_ns = stat.st_mtime_ns
        if not entries:
            log.warning("api: %s holds no tokens: every request will be refused", self.path)

    def _maybe_reload(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            return  # keep the tokens we have; a missing file is logged on the next change
        if mtime != self._mtime_ns:
            try:
                self._load()
                log.info("api: reloaded %d tokens from %s", len(self._entries), self.path)
            except ConfigError as exc:
                self._mtime_ns = mtime
                log.error("api: kept the previous tokens: %s", exc)

    def verify(self, token: str) -> Principal | None:
        """The principal of `token`, or None; compares against every entry in constant time."""
        self._maybe_reload()
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        found: Principal | None = None
        for principal, expected in self._entries:
            if hmac.compare_digest(digest, expected):
                found = principal
        return found


class FailureLimiter:
    """Blocks a client address after `max_failures` bad tokens within `window_s`."""

    def __init__(self, clock: Clock, max_failures: int, window_s: float, block_s: float) -> None:
        self._clock = clock
        self.max_failures = max_failures
        self.window_s = window_s
        self.block_s = block_s
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._blocked_until: dict[str, float] = {}

    def blocked_for(self, client: str) -> float:
        """Seconds left of the client's block (0 when not blocked)."""
        until = self._blocked_until.get(client)
        if until is None:
            return 0.0
        left = until - self._clock.monotonic()
        if left <= 0:
            del self._blocked_until[client]
            return 0.0
        return left

    def fail(self, client: str) -> bool:
        """Count one failure; True when it blocks the client."""
        now = self._clock.monotonic()
        times = self._failures.pop(client, None) or deque()
        times.append(now)
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if len(times) >= self.max_failures:
            self._blocked_until[client] = now + self.block_s
            return True
        self._failures[client] = times
        while len(self._failures) > _MAX_TRACKED_CLIENTS:
            self._failures.popitem(last=False)
        return False


_COUNTERS: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()


def _failure_counter(registry: CollectorRegistry) -> Counter:
    # One counter per registry even when several apps are built over one gateway.
    counter = _COUNTERS.get(registry)
    if counter is None:
        counter = Counter(
            "gateway_api_auth_failures",
            "API requests refused by auth",
            ["reason"],
            registry=registry,
        )
        _COUNTERS[registry] = counter
    return counter


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ApiAuth:
    """Decides every request: the token's principal when its role may, else AuthFailure."""

    LOOPBACK = Principal("loopback", Role.ADMIN)

    def __init__(
        self,
        tokens: TokenStore | None,
        limiter: FailureLimiter,
        registry: CollectorRegistry,
    ) -> None:
        self.tokens = tokens
        self.limiter = limiter
        self.failures = _failure_counter(registry)

    @property
    def enabled(self) -> bool:
        """False when no tokens file is configured (loopback-only, unauthenticated)."""
        return self.tokens is not None

    def check(self, token: str | None, client: str, allowed: frozenset[Role]) -> Principal:
        """The request's principal; AuthFailure with 401, 403 or 429 otherwise."""
        if self.tokens is None:
            return self.LOOPBACK
        left = self.limiter.blocked_for(client)
        if left > 0:
            self.failures.labels("blocked").inc()
            raise AuthFailure(429, "too many failed attempts; try again later", int(left) + 1)
        if not token:
            self.failures.labels("missing").inc()
            raise AuthFailure(401, "a bearer token is required")
        principal = self.tokens.verify(token)
        if principal is None:
            self.failures.labels("invalid").inc()
            if self.limiter.fail(client):
                log.warning("api: %s blocked after repeated bad tokens", client)
            raise AuthFailure(401, "invalid token")
        if principal.role not in allowed and principal.role is not Role.ADMIN:
            self.failures.labels("forbidden").inc()
            need = " or ".join(sorted(r.value for r in allowed if r is not Role.ADMIN))
            raise AuthFailure(403, f"role {principal.role.value} may not do this (needs {need})")
        return principal
