"""Tokens file, constant-time comparison and the failure limiter, on a manual clock."""

from __future__ import annotations

import hmac
import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from gateway.api.auth import (
    READ,
    RESPOND,
    ApiAuth,
    AuthFailure,
    FailureLimiter,
    Role,
    TokenStore,
    new_token,
    parse_tokens,
)
from gateway.clock import ManualClock
from gateway.errors import ConfigError


def _store(tmp_path: Path, *lines: str) -> TokenStore:
    path = tmp_path / "tokens.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return TokenStore(path)


def test_new_token_line_admits_only_that_token(tmp_path: Path) -> None:
    token, line = new_token("fire_team", "mfs-north")
    assert token not in line
    store = _store(tmp_path, line)
    principal = store.verify(token)
    assert principal is not None and (principal.name, principal.role) == (
        "mfs-north",
        Role.FIRE_TEAM,
    )
    assert store.verify(token + "x") is None and store.verify("") is None


def test_tokens_are_compared_with_compare_digest_against_every_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [new_token("viewer", f"v{i}")[1] for i in range(3)]
    token, line = new_token("admin", "root")
    store = _store(tmp_path, line, *lines)
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert store.verify(token) is not None
    assert len(calls) == 4  # no early exit on the first match


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("viewer bob", "expected `role name sha256`"),
        ("boss bob " + "0" * 64, "unknown role 'boss'"),
        ("viewer b/ob " + "0" * 64, "bad token name"),
        ("viewer bob cafe", "SHA-256"),
    ],
)
def test_bad_tokens_file_lines_are_named(line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        parse_tokens(f"# comment\n\n{line}\n", "tokens.txt")
    assert "tokens.txt:3" in str(err.value)


def test_tokens_file_changes_are_picked_up_and_bad_edits_keep_old_tokens(tmp_path: Path) -> None:
    a, line_a = new_token("viewer", "a")
    b, line_b = new_token("viewer", "b")
    store = _store(tmp_path, line_a)
    store.path.write_text(line_b + "\n")
    os.utime(store.path, ns=(1, 10**18))
    assert store.verify(a) is None and store.verify(b) is not None
    store.path.write_text("garbage\n")
    os.utime(store.path, ns=(1, 2 * 10**18))
    assert store.verify(b) is not None


def test_limiter_blocks_after_max_failures_in_window_and_unblocks_later() -> None:
    clock = ManualClock()
    lim = FailureLimiter(clock, max_failures=3, window_s=60, block_s=300)
    assert not lim.fail("10.0.0.1") and not lim.fail("10.0.0.1")
    clock.advance(61)  # the first two fall out of the window
    assert not lim.fail("10.0.0.1") and not lim.fail("10.0.0.1")
    assert lim.blocked_for("10.0.0.1") == 0
    assert lim.fail("10.0.0.1")
    assert lim.blocked_for("10.0.0.1") == pytest.approx(300)
    assert lim.blocked_for("10.0.0.2") == 0  # per address
    clock.advance(299)
    assert lim.blocked_for("10.0.0.1") == pytest.approx(1)
    clock.advance(1)
    assert lim.blocked_for("10.0.0.1") == 0


def test_role_matrix_and_blocking(tmp_path: Path) -> None:
    tokens = {r: new_token(r.value, r.value) for r in Role}
    store = _store(tmp_path, *(line for _, line in tokens.values()))
    clock = ManualClock()
    auth = ApiAuth(store, FailureLimiter(clock, 2, 60, 30), CollectorRegistry())
    for role, (token, _) in tokens.items():
        assert auth.check(token, "c", READ).role is role
        if role is Role.VIEWER:
            with pytest.raises(AuthFailure) as err:
                auth.check(token, "c", RESPOND)
            assert err.value.status == 403
        else:
            assert auth.check(token, "c", RESPOND).role is role
    with pytest.raises(AuthFailure) as err:
        auth.check(None, "c", READ)
    assert err.value.status == 401
    for _ in range(2):
        with pytest.raises(AuthFailure):
            auth.check("wrong", "c", READ)
    with pytest.raises(AuthFailure) as err:
        auth.check(tokens[Role.ADMIN][0], "c", READ)
    assert (err.value.status, err.value.retry_after_s) == (429, 31)
    clock.advance(30)
    assert auth.check(tokens[Role.ADMIN][0], "c", READ).role is Role.ADMIN


def test_without_tokens_file_everything_is_admitted_as_loopback_admin() -> None:
    auth = ApiAuth(None, FailureLimiter(ManualClock(), 1, 1, 1), CollectorRegistry())
    assert not auth.enabled
    assert auth.check(None, "127.0.0.1", RESPOND).role is Role.ADMIN


def test_new_token_refuses_unknown_role_and_bad_name() -> None:
    with pytest.raises(ConfigError, match="role 'root'"):
        new_token("root", "x")
    with pytest.raises(ConfigError, match="token name"):
        new_token("viewer", "a b")
