"""Daily report renderers: printable HTML with inline SVG charts, CSV (zipped), XLSX.

All three render `tables(report)`, so their numbers are the same by construction.
"""

from __future__ import annotations

import csv
import html
import io
import zipfile
from collections.abc import Sequence
from typing import Final

from gateway.errors import GatewayError
from gateway.reports.daily import Cell, DailyReport
from gateway.reports.tables import TABLE_TITLES, tables

FORMATS: Final = {
    "html": ("text/html; charset=utf-8", "html"),
    "csv": ("application/zip", "csv.zip"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
}
_COLORS: Final = ("#c0392b", "#2471a3", "#229954", "#b9770e", "#7d3c98", "#17a589", "#566573")
_W, _H, _PAD = 720, 220, 40


class ReportError(GatewayError):
    """A report that cannot be made (unknown format, missing XLSX support)."""


def _cell_text(value: Cell) -> str:
    if value is None:
        return "–"
    return str(value)


def _html_table(columns: list[str], rows: list[list[Cell]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell_text(v))}</td>" for v in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def svg_lines(
    title: str, series: dict[str, Sequence[float | None]], hline: float | None = None
) -> str:
    """A line chart (x: hour of the day) as inline SVG; `None` values leave gaps."""
    n = max((len(v) for v in series.values()), default=0)
    top = max([v for vs in series.values() for v in vs if v is not None] + [hline or 0, 1])
    sx = (_W - 2 * _PAD) / max(n - 1, 1)

    def xy(i: int, v: float) -> str:
        return f"{_PAD + i * sx:.1f},{_H - _PAD - v / top * (_H - 2 * _PAD):.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H + 20 * len(series)}"'
        f' role="img" aria-label="{html.escape(title)}">',
        f'<text x="{_PAD}" y="16" font-size="13">{html.escape(title)} (max {top:g})</text>',
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#999"/>',
    ]
    for i in range(0, n, 3):
        parts.append(
            f'<text x="{_PAD + i * sx:.1f}" y="{_H - _PAD + 14}" font-size="10"'
            f' text-anchor="middle">{i:02d}</text>'
        )
    if hline is not None:
        y = _H - _PAD - hline / top * (_H - 2 * _PAD)
        parts.append(
            f'<line x1="{_PAD}" y1="{y:.1f}" x2="{_W - _PAD}" y2="{y:.1f}" stroke="#c0392b"'
            ' stroke-dasharray="4 3"/>'
        )
    for k, (name, values) in enumerate(series.items()):
        color = _COLORS[k % len(_COLORS)]
        runs: list[list[str]] = [[]]
        for i, v in enumerate(values):
            if v is None:
                runs.append([])
            else:
                runs[-1].append(xy(i, v))
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{color}"/>')
            elif run:
                parts.append(
                    f'<polyline fill="none" stroke="{color}" stroke-width="1.5"'
                    f' points="{" ".join(run)}"/>'
                )
        ly = _H + 14 + 20 * k
        parts.append(
            f'<rect x="{_PAD}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
            f'<text x="{_PAD + 16}" y="{ly}" font-size="11">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def svg_bars(title: str, bars: dict[str, float | None], limit: float) -> str:
    """Horizontal bars (e.g. seconds to on scene per incident) with the limit marked."""
    values = [v for v in bars.values() if v is not None]
    top = max([*values, limit]) * 1.1
    row, label_w = 22, 170
    scale = (_W - label_w - _PAD) / top
    height = 30 + row * max(len(bars), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" role="img"'
        f' aria-label="{html.escape(title)}">',
        f'<text x="4" y="16" font-size="13">{html.escape(title)}</text>',
    ]
    for k, (name, value) in enumerate(bars.items()):
        y = 24 + row * k
        parts.append(f'<text x="4" y="{y + 13}" font-size="11">{html.escape(name)}</text>')
        if value is None:
            parts.append(f'<text x="{label_w}" y="{y + 13}" font-size="11">–</text>')
            continue
        color = "#229954" if value <= limit else "#c0392b"
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{value * scale:.1f}" height="14"'
            f' fill="{color}"/><text x="{label_w + value * scale + 4:.1f}" y="{y + 14}"'
            f' font-size="11">{value:g} s</text>'
        )
    x = label_w + limit * scale
    parts.append(
        f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="{height}" stroke="#c0392b"'
        ' stroke-dasharray="4 3"/></svg>'
    )
    return "".join(parts)


def render_html(r: DailyReport) -> str:
    """A printable page: the tables, with charts of flows, occupancy and response times."""
    all_tables = tables(r)
    charts = {
        "flows": svg_lines(
            "每小时进入人数 people in per hour", {f.checkpoint: f.hourly_in for f in r.flows}
        ),
        "occupancy": svg_lines(
            "每小时在场峰值 hourly peak occupancy",
            {o.target: o.hourly_peak for o in r.occupancy},
        ),
    }
    if r.incidents:
        charts["incidents"] = svg_bars(
            f"到场时间 time to on scene (limit {r.deadline_s:g} s)",
            {i.id: i.on_scene_s for i in r.incidents},
            r.deadline_s,
        )
    body = [f"<h1>日报 Daily report: {html.escape(r.site)} {r.day.isoformat()}</h1>"]
    for name, (columns, rows) in all_tables.items():
        body.append(f"<h2>{html.escape(TABLE_TITLES[name])}</h2>")
        if name in charts:
            body.append(f'<div class="chart">{charts[name]}</div>')
        body.append(_html_table(columns, rows) if rows else "<p>–</p>")
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
        ".chart{page-break-inside:avoid}"
    )
    return (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>'
        f"{html.escape(r.site)} {r.day.isoformat()}</title><style>{style}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def render_csv(r: DailyReport) -> bytes:
    """A zip of one CSV per table (`{table}.csv`, UTF-8 with BOM so Excel reads Chinese)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, (columns, rows) in tables(r).items():
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\r\n")
            writer.writerow(columns)
            writer.writerows([["" if v is None else v for v in row] for row in rows])
            zf.writestr(f"{name}.csv", "\ufeff" + text.getvalue())
    return buf.getvalue()


def render_xlsx(r: DailyReport) -> bytes:
    """A workbook with one sheet per table (numbers stay numbers)."""
    try:
        from openpyxl import Workbook
        from openpyxl.styles import Font
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ReportError("XLSX needs openpyxl: pip install openpyxl") from exc
    wb = Workbook()
    if wb.active is not None:
        wb.remove(wb.active)  # the default empty sheet
    for name, (columns, rows) in tables(r).items():
        ws = wb.create_sheet(name)
        ws.append(columns)
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in rows:
            ws.append(list(row))
        ws.freeze_panes = "A2"
        for i, col in enumerate(columns, start=1):
            width = max([len(col)] + [len(_cell_text(row[i - 1])) for row in rows]) + 2
            ws.column_dimensions[ws.cell(1, i).column_letter].width = min(width, 40)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def render(r: DailyReport, fmt: str) -> tuple[bytes, str, str]:
    """The report in one format: (body, media type, file name)."""
    if fmt not in FORMATS:
        raise ReportError(f"report format {fmt!r} is unknown; use one of {', '.join(FORMATS)}")
    media, ext = FORMATS[fmt]
    if fmt == "html":
        data = render_html(r).encode()
    elif fmt == "csv":
        data = render_csv(r)
    else:
        data = render_xlsx(r)
    return data, media, f"report-{r.site}-{r.day.isoformat()}.{ext}"
