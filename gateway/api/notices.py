"""`/api/v1/notices`: operator notices and announcements on screens and voice terminals.

Posting and clearing need `operator` (commands); reading needs `viewer`. A notice never
overrides a fire message: terminals that carry one are skipped and listed in `skipped`
(docs/api.md, "Notices").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from gateway.api.auth import COMMAND, READ, Principal
from gateway.notices import (
    REPEAT_MAX,
    SCREEN_MAX_CHARS,
    TTL_MAX_S,
    TTL_MIN_S,
    NoticeError,
    NoticeSpec,
    Targets,
    TerminalRef,
    UnknownNotice,
)
from gateway.notices.targets import MAX_TERMINALS

if TYPE_CHECKING:
    from gateway.api.routes import Need
    from gateway.app import Gateway

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Kind = Literal["screen", "voice"]
KINDS: tuple[Kind, ...] = ("screen", "voice")
Color = Literal["white", "yellow", "green", "blue", "orange", "red"]  # spec.COLORS
Status = Literal["skipped", "pending", "acked", "failed", "given_up", "preempted", "replaced"]
NoticeState = Literal["active", "expired", "cleared"]


class TerminalTarget(BaseModel):
    """One terminal: its topic building (`gates` for gate screens) and device id."""

    model_config = ConfigDict(extra="forbid")

    building: Name
    device: Name
    kind: Kind | None = Field(default=None, description="only when the id is ambiguous")


class NoticeTargets(BaseModel):
    """Named terminals, plus every terminal of `kinds` in `buildings` and at the gates."""

    model_config = ConfigDict(extra="forbid")

    terminals: list[TerminalTarget] = Field(default_factory=list, max_length=MAX_TERMINALS)
    buildings: list[Name] = Field(default_factory=list, max_length=MAX_TERMINALS)
    gates: bool = Field(default=False, description="the site's gate screens")
    kinds: list[Kind] = Field(default_factory=lambda: [*KINDS], min_length=1, max_length=2)


class NoticeRequest(BaseModel):
    """A notice: what to show and say, how urgent, for how long, and where."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        min_length=1,
        max_length=SCREEN_MAX_CHARS,
        description="at most 200 characters on screens, 100 when voice terminals say it",
    )
    priority: Literal["notice", "alert"] = Field(
        default="notice", description="fire is the fire engine's only"
    )
    ttl_s: int = Field(default=600, ge=TTL_MIN_S, le=TTL_MAX_S)
    color: Color | None = None
    lang: Literal["zh", "en"] = "zh"
    repeat: int = Field(default=1, ge=1, le=REPEAT_MAX)
    targets: NoticeTargets
    by: str | None = Field(default=None, min_length=1, max_length=128)

    @field_validator("priority", mode="before")
    @classmethod
    def _not_fire(cls, value: object) -> object:
        if value == "fire":
            raise ValueError("priority fire belongs to the fire engine; use notice or alert")
        return value


class TerminalStatus(BaseModel):
    """One terminal of a notice: its latest command and what became of it."""

    terminal: str
    building: str
    kind: str
    device: str
    status: Status
    action: str | None
    cmd_id: str | None
    attempts: int
    incident: str | None
    replaced_by: str | None
    error: str | None
    sent_at: int | None
    acked_at: int | None


class SkippedTerminal(BaseModel):
    """A terminal left alone because a fire message is on it."""

    terminal: str
    reason: str
    incident: str


class NoticeView(BaseModel):
    """A notice, its terminals' status, and those skipped for a fire message."""

    id: str
    by: str
    text: str
    priority: str
    ttl_s: int
    color: str | None
    lang: str
    repeat: int
    targets: NoticeTargets
    created_at: int
    expires_at: int
    state: NoticeState
    cleared_by: str | None
    cleared_at: int | None
    terminals: list[TerminalStatus]
    skipped: list[SkippedTerminal]
    clear_skipped: list[SkippedTerminal]


def notices_router(gw: Gateway, need: Need) -> APIRouter:
    """The notice routes over `gw.notices`; `need(roles)` is the auth dependency."""
    r = APIRouter(prefix="/api/v1")
    # Dependencies as defaults: annotations are strings here and cannot name locals.
    reader = Depends(need(READ))
    commander = Depends(need(COMMAND))

    @r.post("/notices", status_code=201)
    async def post_notice(body: NoticeRequest, who: Principal = commander) -> NoticeView:
        try:
            spec = NoticeSpec(
                body.text, body.priority, body.ttl_s, body.color, body.lang, body.repeat
            )
            view = gw.notices.post(spec, _targets(body.targets), body.by or who.name)
        except NoticeError as exc:
            raise HTTPException(422, str(exc)) from None
        return NoticeView.model_validate(view)

    @r.get("/notices")
    async def list_notices(
        state: NoticeState | None = None,
        limit: int = Query(default=50, ge=1, le=500),
        _: Principal = reader,
    ) -> list[NoticeView]:
        return [NoticeView.model_validate(v) for v in gw.notices.recent(limit, state)]

    @r.get("/notices/{notice_id}")
    async def get_notice(notice_id: str, _: Principal = reader) -> NoticeView:
        try:
            return NoticeView.model_validate(gw.notices.get(notice_id))
        except UnknownNotice as exc:
            raise HTTPException(404, str(exc)) from None

    @r.delete("/notices/{notice_id}")
    async def clear_notice(notice_id: str, who: Principal = commander) -> NoticeView:
        try:
            return NoticeView.model_validate(gw.notices.clear(notice_id, who.name))
        except UnknownNotice as exc:
            raise HTTPException(404, str(exc)) from None
        except NoticeError as exc:
            raise HTTPException(422, str(exc)) from None

    return r


def _targets(body: NoticeTargets) -> Targets:
    refs = tuple(TerminalRef(t.building, t.device, t.kind) for t in body.terminals)
    return Targets(refs, tuple(body.buildings), body.gates, tuple(dict.fromkeys(body.kinds)))
