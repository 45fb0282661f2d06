"""An incident's response report: timeline, command delays, response times vs the deadline.

Used for drill reports (`community-gateway drill`) and, later, incident evidence bundles.
Input is what the API serves: the incident's alert object and its audit records.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

_STEPS = (
    ("confirmed", "确认火警 confirmed"),
    ("dispatched", "派出队伍 dispatched"),
    ("acknowledged", "队伍确认 acknowledged"),
    ("on_scene", "到达现场 on scene"),
    ("resolved", "处置完毕 resolved"),
    ("false_alarm", "误报 false alarm"),
)


@dataclass(frozen=True, slots=True)
class Step:
    """One milestone: when it happened, seconds after the alarm, within which limit."""

    name: str
    label: str
    at_ms: int | None
    after_s: float | None
    limit_s: float | None

    @property
    def ok(self) -> bool | None:
        """Within its limit (None when it has none or did not happen)."""
        if self.limit_s is None or self.after_s is None:
            return None
        return self.after_s <= self.limit_s


@dataclass(frozen=True, slots=True)
class CommandRow:
    """One linkage command and how long its device took to acknowledge it."""

    device: str
    action: str
    sent_after_s: float
    ack_delay_ms: int | None
    ok: bool | None
    retries: int


def milestones(
    incident: dict[str, Any], timeline: list[dict[str, Any]], limits: dict[str, float]
) -> list[Step]:
    """The state changes of the incident, timed from the first alarm."""
    opened = int(incident["opened_at"])
    reached: dict[str, int] = {}
    for rec in timeline:
        if rec["kind"] == "state":
            reached.setdefault(str(rec["data"].get("to")), int(rec["ts"]))
    steps = []
    for name, label in _STEPS:
        at = reached.get(name)
        after = None if at is None else (at - opened) / 1000
        steps.append(Step(name, label, at, after, limits.get(name)))
    return steps


def command_rows(incident: dict[str, Any], timeline: list[dict[str, Any]]) -> list[CommandRow]:
    """Every command with its acknowledgement delay."""
    opened = int(incident["opened_at"])
    sent: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for rec in timeline:
        data = rec["data"]
        cmd_id = data.get("cmd_id")
        if rec["kind"] == "command" and cmd_id:
            sent[cmd_id] = {"rec": rec, "ack": None, "ok": None, "retries": 0}
            order.append(cmd_id)
        elif rec["kind"] == "ack" and cmd_id in sent and sent[cmd_id]["ack"] is None:
            sent[cmd_id]["ack"] = int(rec["ts"])
            sent[cmd_id]["ok"] = bool(data.get("ok"))
        elif rec["kind"] == "retry" and cmd_id in sent:
            sent[cmd_id]["retries"] += 1
    rows = []
    for cmd_id in order:
        item = sent[cmd_id]
        rec = item["rec"]
        ts = int(rec["ts"])
        ack = item["ack"]
        rows.append(
            CommandRow(
                device=str(rec["data"].get("device")),
                action=str(rec["data"].get("action")),
                sent_after_s=(ts - opened) / 1000,
                ack_delay_ms=None if ack is None else ack - ts,
                ok=item["ok"],
                retries=item["retries"],
            )
        )
    return rows


def markdown(
    incident: dict[str, Any], timeline: list[dict[str, Any]], limits: dict[str, float]
) -> str:
    """The report as Markdown."""
    title = "消防演练报告 Drill report" if incident.get("drill") else "火警处置报告 Incident report"
    lines = [
        f"# {title}: {incident['id']}",
        "",
        f"- 楼栋 building **{incident['building']}**, 楼层 floor {incident['floor']}, "
        f"分区 zone {incident['zone']}",
        f"- 最终状态 final state: **{incident['state']}**; team {incident.get('team')}, "
        f"escalations {incident.get('escalation', 0)}, deadline breached: "
        f"{'yes' if incident.get('breach') else 'no'}",
        "",
        "## 响应时间 Response times (from the first alarm)",
        "",
        "| step | after (s) | limit (s) | within |",
        "|---|---|---|---|",
    ]
    for s in milestones(incident, timeline, limits):
        after = "–" if s.after_s is None else f"{s.after_s:.1f}"
        limit = "–" if s.limit_s is None else f"{s.limit_s:.0f}"
        within = {True: "✅", False: "❌", None: "–"}[s.ok]
        lines.append(f"| {s.label} | {after} | {limit} | {within} |")
    lines += [
        "",
        "## 联动指令 Linkage commands",
        "",
        "| device | action | sent (s) | ack (ms) | ok | retries |",
        "|---|---|---|---|---|---|",
    ]
    for c in command_rows(incident, timeline):
        ack = "no ack" if c.ack_delay_ms is None else str(c.ack_delay_ms)
        lines.append(
            f"| {c.device} | {c.action} | {c.sent_after_s:.3f} | {ack} | {c.ok} | {c.retries} |"
        )
    lines += ["", "## 时间线 Timeline", "", "| t (s) | what | by | details |", "|---|---|---|---|"]
    opened = int(incident["opened_at"])
    for rec in timeline:
        details = ", ".join(
            f"{k}={v}" for k, v in rec["data"].items() if k not in {"payload", "topic"}
        )
        t = (int(rec["ts"]) - opened) / 1000
        lines.append(f"| {t:.3f} | {rec['kind']} | {rec['by']} | {details[:160]} |")
    return "\n".join(lines) + "\n"


def html_page(markdown_text: str, title: str) -> str:
    """A printable HTML page of the Markdown report (tables rendered, no scripts)."""
    body: list[str] = []
    in_table = False
    for line in markdown_text.splitlines():
        if line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-"):
                continue
            if not in_table:
                body.append("<table>")
                in_table = True
                body.append("<tr>" + "".join(f"<th>{c}</th>" for c in cells) + "</tr>")
            else:
                body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("- "):
            body.append(f"<p>{html.escape(line[2:]).replace('**', '')}</p>")
    if in_table:
        body.append("</table>")
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
    )
    return (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>'
        f"{html.escape(title)}</title><style>{style}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def limits_from(settings: Any) -> dict[str, float]:
    """Step limits from the first alarm (`[fire]` settings): on scene by the deadline."""
    return {"on_scene": float(settings.deadline_s)}
