"""Charts for the console: inline SVG drawn on the server (no script, no external asset),
with a title and description for screen readers and every label escaped."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from markupsafe import Markup, escape

CHART_ID: Final = re.compile(r"[a-z][a-z0-9-]{0,40}")
INK: Final = "#1b1f23"
MUTED: Final = "#5b6470"
LINE: Final = "#d5dae0"
BAR: Final = "#0b5c8a"
SHADES: Final = ("#8fb8d4", "#3f86b5", "#0b5c8a")


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: its axis label, its value, and the value as people read it."""

    label: str
    value: float
    caption: str
    title: str = ""
    """What a screen reader or a hover says of the bar; ``label: caption`` by default."""

    @property
    def spoken(self) -> str:
        return self.title or f"{self.label}: {self.caption}"


def _num(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _open_svg(chart_id: str, title: str, description: str, width: int, height: int) -> str:
    if not CHART_ID.fullmatch(chart_id):
        raise ValueError(f"chart ids are short lowercase words, got {chart_id!r}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{chart_id}" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" data-testid="{chart_id}">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>'
    )


def _text(x: float, y: float, content: str, *, anchor: str = "start", size: int = 11) -> str:
    return (
        f'<text x="{_num(x)}" y="{_num(y)}" font-size="{size}" fill="{MUTED}" '
        f'text-anchor="{anchor}">{escape(content)}</text>'
    )


def column_chart(
    chart_id: str,
    title: str,
    description: str,
    bars: Sequence[Bar],
    *,
    label_every: int = 5,
    width: int = 720,
    height: int = 220,
) -> Markup:
    """Vertical bars (e.g. requests per day); every ``label_every``-th label and the last
    are written under the axis, every bar has its own title."""
    left, right, top, bottom = 36, 8, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((bar.value for bar in bars), default=0.0) or 1.0
    slot = plot_w / max(len(bars), 1)
    parts = [
        _open_svg(chart_id, title, description, width, height),
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" '
        f'stroke="{LINE}"/>',
        _text(left - 4, top + 8, _num(peak), anchor="end"),
        _text(left - 4, top + plot_h, "0", anchor="end"),
    ]
    for i, bar in enumerate(bars):
        h = plot_h * max(bar.value, 0.0) / peak
        x = left + i * slot + slot * 0.15
        parts.append(
            f'<rect x="{_num(x)}" y="{_num(top + plot_h - h)}" width="{_num(slot * 0.7)}" '
            f'height="{_num(h)}" fill="{BAR}"><title>{escape(bar.spoken)}</title></rect>'
        )
        if i % label_every == 0 or i == len(bars) - 1:
            parts.append(_text(x + slot * 0.35, top + plot_h + 14, bar.label, anchor="middle"))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above went through escape()


def bar_chart(
    chart_id: str,
    title: str,
    description: str,
    bars: Sequence[Bar],
    *,
    width: int = 560,
    row: int = 24,
    label_width: int = 150,
    shades: Sequence[str] = (BAR,),
) -> Markup:
    """Horizontal bars, each with its label before it and its caption after it; bar ``i``
    is coloured ``shades[i % len(shades)]`` (e.g. p50, p90, p99 in growing depth)."""
    caption_width = 170
    height = row * len(bars) + 8
    plot_w = width - label_width - caption_width
    peak = max((bar.value for bar in bars), default=0.0) or 1.0
    parts = [_open_svg(chart_id, title, description, width, height)]
    for i, bar in enumerate(bars):
        y = 4 + i * row
        w = plot_w * max(bar.value, 0.0) / peak
        parts += [
            _text(label_width - 6, y + row * 0.65, bar.label, anchor="end", size=12),
            f'<rect x="{label_width}" y="{_num(y + 3)}" width="{_num(w)}" '
            f'height="{_num(row - 8)}" fill="{shades[i % len(shades)]}">'
            f"<title>{escape(bar.spoken)}</title></rect>",
            _text(label_width + w + 6, y + row * 0.65, bar.caption, size=12),
        ]
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above went through escape()
