"""Inline SVG charts for the HTML report: no library, no network, readable without colour.

Every chart is drawn on the server (it is static; the browser only draws the table), carries a
``<title>``/``<desc>`` for screen readers and a ``<title>`` tooltip on every mark, labels its
series in text, and is backed by a data table in the page. Colours are ``STATE_COLOURS``.
Text comes from reports: everything is escaped with markupsafe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

from fleet.report.common import STATE_COLOURS, STATES, short_time


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _nice(peak: int, ticks: int = 4) -> int:
    """The smallest round axis maximum >= peak: ``ticks`` whole steps of a round size."""
    if peak <= ticks:
        return ticks
    step = peak / ticks
    magnitude = int(10 ** (len(str(int(step))) - 1))
    for factor in (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5, 8, 10):
        size = factor * magnitude
        if size >= step and size == int(size):
            return int(size) * ticks
    return 10 * magnitude * ticks


def state_bar(by_state: Mapping[str, int], *, width: int = 640, height: int = 28) -> Markup:
    """One horizontal bar split by state, worst on the right."""
    total = sum(int(by_state.get(s, 0)) for s in STATES)
    parts = [
        f'<svg class="chart state-bar" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="none" aria-labelledby="state-bar-title">',
        '<title id="state-bar-title">Clusters by state: '
        + escape(", ".join(f"{by_state.get(s, 0)} {s}" for s in reversed(STATES)))
        + "</title>",
    ]
    x = 0.0
    for s in STATES:
        n = int(by_state.get(s, 0))
        if not n or not total:
            continue
        w = width * n / total
        parts.append(
            f'<rect x="{_n(x)}" y="0" width="{_n(w)}" height="{height}" fill="{STATE_COLOURS[s]}">'
            f"<title>{n} {s} ({100 * n / total:.1f}%)</title></rect>"
        )
        x += w
    parts.append("</svg>")
    return Markup("".join(parts))


def trend_chart(
    points: Sequence[Mapping[str, Any]], *, width: int = 760, height: int = 260
) -> Markup:
    """Stacked columns of clusters per state for each sweep, with the compliance line on top.

    ``points`` are ``History.trends()`` entries (oldest first).
    """
    if not points:
        return Markup("")
    left, right, top, bottom = 48, 48, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice(
        max(int(p.get("clusters") or sum((p.get("byState") or {}).values())) for p in points)
    )
    n = len(points)
    slot = plot_w / n
    bar = max(2.0, min(36.0, slot * 0.7))
    out = [
        f'<svg class="chart trend" role="img" viewBox="0 0 {width} {height}" width="100%" '
        'aria-labelledby="trend-title trend-desc">',
        '<title id="trend-title">States and compliance over the last sweeps</title>',
        f'<desc id="trend-desc">{n} sweeps from '
        f"{escape(short_time(points[0].get('finishedAt')))} to "
        f"{escape(short_time(points[-1].get('finishedAt')))}; columns: clusters per state; line: "
        "compliance percent (right axis).</desc>",
    ]
    # Axes and grid: clusters on the left, percent on the right.
    for i in range(5):
        y = top + plot_h * i / 4
        out.append(
            f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{_n(y)}" y2="{_n(y)}"/>'
        )
        out.append(
            f'<text class="axis" x="{left - 6}" y="{_n(y + 4)}" text-anchor="end">'
            f"{round(peak * (4 - i) / 4)}</text>"
        )
        out.append(
            f'<text class="axis" x="{left + plot_w + 6}" y="{_n(y + 4)}">{100 - 25 * i}%</text>'
        )
    label_every = max(1, n // 8)
    line: list[str] = []
    dots: list[str] = []
    for i, p in enumerate(points):
        cx = left + slot * i + slot / 2
        by_state = p.get("byState") or {}
        y = top + plot_h
        when = escape(short_time(p.get("finishedAt")))
        for s in STATES:
            v = int(by_state.get(s, 0))
            if not v:
                continue
            h = plot_h * v / peak
            y -= h
            out.append(
                f'<rect x="{_n(cx - bar / 2)}" y="{_n(y)}" width="{_n(bar)}" height="{_n(h)}" '
                f'fill="{STATE_COLOURS[s]}"><title>{when}: {v} {s}</title></rect>'
            )
        pct = p.get("compliancePercent")
        if pct is not None:
            py = top + plot_h * (1 - float(pct) / 100)
            line.append(f"{_n(cx)},{_n(py)}")
            dots.append(
                f'<circle class="pct" cx="{_n(cx)}" cy="{_n(py)}" r="3.5">'
                f"<title>{when}: {float(pct):.1f}% compliant</title></circle>"
            )
        if i % label_every == 0 or i == n - 1:
            label = escape(short_time(p.get("finishedAt"))[5:16])
            out.append(
                f'<text class="axis" x="{_n(cx)}" y="{height - bottom + 16}" '
                f'text-anchor="middle">{label}</text>'
            )
    # The line over the columns, its dots over the line.
    if len(line) > 1:
        out.append(f'<polyline class="pct" points="{" ".join(line)}"/>')
    out.extend(dots)
    out.append(f'<text class="axis" x="{left}" y="{height - 6}">clusters</text>')
    out.append(
        f'<text class="axis" x="{left + plot_w}" y="{height - 6}" '
        'text-anchor="end">compliance %</text>'
    )
    out.append("</svg>")
    return Markup("".join(out))


def sparkline(
    values: Sequence[float | None], label: str, *, width: int = 120, height: int = 28
) -> Markup:
    """A small compliance line (0-100%) with its values in the tooltip."""
    known = [(i, v) for i, v in enumerate(values) if v is not None]
    text = ", ".join("–" if v is None else f"{v:.1f}%" for v in values)
    out = [
        f'<svg class="spark" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}">',
        f"<title>{escape(label)}: {escape(text)}</title>",
    ]
    if known:
        step = (width - 6) / max(1, len(values) - 1)
        pts = [f"{_n(3 + i * step)},{_n(3 + (height - 6) * (1 - v / 100))}" for i, v in known]
        if len(pts) > 1:
            out.append(f'<polyline points="{" ".join(pts)}"/>')
        last_x, last_y = pts[-1].split(",")
        out.append(f'<circle cx="{last_x}" cy="{last_y}" r="2.5"/>')
    out.append("</svg>")
    return Markup("".join(out))


def version_bars(rows: Sequence[tuple[str, int, str]], *, width: int = 640) -> Markup:
    """Horizontal bars per extension version: (version, clusters, window label)."""
    if not rows:
        return Markup("")
    bar_h, gap, label_w, count_w = 22, 6, 90, 190
    height = len(rows) * (bar_h + gap)
    peak = max(1, max(n for _, n, _ in rows))
    plot = width - label_w - count_w
    out = [
        f'<svg class="chart versions" role="img" viewBox="0 0 {width} {height}" width="100%" '
        'aria-labelledby="versions-title">',
        '<title id="versions-title">Clusters per microsoft.flux extension version</title>',
    ]
    for i, (version, n, window) in enumerate(rows):
        y = i * (bar_h + gap)
        w = max(1.0, plot * n / peak)
        cls = "in" if window == "in window" else "out" if window == "out of window" else "mixed"
        out.append(
            f'<text class="axis" x="{label_w - 8}" y="{y + 15}" '
            f'text-anchor="end">{escape(version)}</text>'
        )
        out.append(
            f'<rect class="ver-{cls}" x="{label_w}" y="{y}" width="{_n(w)}" height="{bar_h}">'
            f"<title>{escape(version)}: {n} clusters, {escape(window)}</title></rect>"
        )
        out.append(
            f'<text class="axis" x="{_n(label_w + w + 6)}" y="{y + 15}">'
            f"{n} · {escape(window)}</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))
