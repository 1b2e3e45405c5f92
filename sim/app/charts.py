"""The classroom page's charts as SVG text: regional shares, shares by state, the map.

Drawn by hand rather than with matplotlib because a projected page needs two things a
PNG cannot give: text that stays legible (every label is at least `MIN_TEXT` units, and
the page shows a chart at about one unit per screen pixel at 1400 px wide and larger
beyond) and charts that grow with the window (an SVG with a viewBox fills its tile). A
chart is a few kilobytes of text built in about a millisecond, so a step redraws only the
lines, not a whole figure.

Each function takes the model's history (`ClassroomModel.history()`) or its current
state and returns one `<svg>` element; nothing here runs a model, reads a file or needs
Solara. A ghost (the unchanged scenario's history, same seed) is drawn as thin dashed
lines under the run's own lines; a posterior band (`sim.app.classroom.posterior_band`) as
pale areas behind them.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

import numpy as np

from sim.output.maps import CAPITALS, EXTENT, LAND, WATER, outlines
from sim.output.plots import power_colour, power_label
from sim.world.quarters import next_quarter, quarter_year
from sim.world.vocabulary import HISTORY_END

MIN_TEXT = 16
"""Smallest font size used, in SVG units (about 15 px on the page at 1400 x 900)."""
TEXT = 17
TITLE = 18
WIDTH, HEIGHT = 500, 400
"""The viewBox of every chart: about the shape of a tile on a 1400 x 900 screen."""
PROJECTION_START = quarter_year(next_quarter(HISTORY_END))
"""Decimal year at which history ends and the projection starts (2026.0, after 2025Q4)."""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _text(x: float, y: float, text: object, size: float = TEXT, anchor: str = "start",
          weight: str = "normal", fill: str = "#222", extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}"{extra}>{_e(text)}</text>')


def _svg(name: str, body: Sequence[str], label: str, step: int, extra: str = "") -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'data-chart="{name}" data-step="{step}" role="img" aria-label="{_e(label)}" '
            f'font-family="DejaVu Sans, Arial, Helvetica, sans-serif" '
            f'preserveAspectRatio="xMidYMid meet" style="width:100%;height:100%;'
            f'display:block"{extra}>' + "".join(body) + "</svg>")


class _Frame:
    """A plot area: data (decimal years, shares) -> SVG units."""

    def __init__(self, left: float, top: float, right: float, bottom: float,
                 x0: float, x1: float, y1: float):
        self.left, self.top, self.right, self.bottom = left, top, right, bottom
        self.x0, self.x1, self.y1 = x0, x1, y1

    def x(self, year: float) -> float:
        return self.left + (year - self.x0) / (self.x1 - self.x0) * (self.right - self.left)

    def y(self, share: float) -> float:
        return self.bottom - share / self.y1 * (self.bottom - self.top)

    def line(self, years: np.ndarray, values: np.ndarray, colour: str, width: float,
             dash: str = "", opacity: float = 1.0) -> str:
        if len(years) == 1:  # a single quarter: a short flat stroke so it shows
            years, values = np.append(years, years + 0.25), np.repeat(values, 2)
        pts = " ".join(f"{self.x(a):.1f},{self.y(b):.1f}" for a, b in zip(years, values,
                                                                            strict=True))
        style = f' stroke-dasharray="{dash}"' if dash else ""
        return (f'<polyline points="{pts}" fill="none" stroke="{colour}" '
                f'stroke-width="{width}" stroke-linejoin="round" opacity="{opacity}"{style}/>')

    def area(self, years: np.ndarray, low: np.ndarray, high: np.ndarray, colour: str,
             opacity: float) -> str:
        """A band between two lines (low and high at each year), filled pale."""
        if len(years) == 1:
            years = np.append(years, years + 0.25)
            low, high = np.repeat(low, 2), np.repeat(high, 2)
        top = [f"{self.x(a):.1f},{self.y(b):.1f}" for a, b in zip(years, high, strict=True)]
        bottom = [f"{self.x(a):.1f},{self.y(b):.1f}"
                  for a, b in zip(years[::-1], low[::-1], strict=True)]
        return (f'<polygon points="{" ".join(top + bottom)}" fill="{colour}" '
                f'fill-opacity="{opacity}" stroke="none" data-band-area="1"/>')

    def axes(self, x_ticks: Sequence[int], y_ticks: Sequence[float], size: float = MIN_TEXT,
             y_labels: bool = True, x_labels: bool = True) -> list[str]:
        out = [f'<rect x="{self.left}" y="{self.top}" width="{self.right - self.left:.1f}" '
               f'height="{self.bottom - self.top:.1f}" fill="white" stroke="#999"/>']
        for v in y_ticks:
            y = self.y(v)
            out.append(f'<line x1="{self.left}" x2="{self.right}" y1="{y:.1f}" y2="{y:.1f}" '
                       f'stroke="#e3e3e3"/>')
            if y_labels:
                out.append(_text(self.left - 5, y + size * 0.35, f"{v:.0%}", size, "end",
                                 fill="#444"))
        for t in x_ticks:
            x = self.x(t)
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{self.bottom}" '
                       f'y2="{self.bottom + 4}" stroke="#999"/>')
            if x_labels:
                out.append(_text(x, self.bottom + size + 3, t, size, "middle", fill="#444"))
        if self.x0 < PROJECTION_START < self.x1:
            x = self.x(PROJECTION_START)
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{self.top}" y2="{self.bottom}" '
                       f'stroke="#555" stroke-dasharray="2 3"/>')
        return out


def years(quarters: Sequence[str]) -> np.ndarray:
    """Decimal year at the end of each quarter label ('2015Q1' -> 2015.25)."""
    return np.array([int(q[:4]) + int(q[-1]) / 4.0 for q in quarters])


MARK_ROOM = 0.17
"""Share of the axis kept free above the lines for the event marks' labels."""


def _top(*arrays: np.ndarray | None, headroom: float = 0.0) -> float:
    """A y-axis top: the largest share shown plus `headroom`, rounded up to 10%, at least 50%."""
    peak = max(float(np.max(a)) for a in arrays if a is not None and np.size(a)) + headroom
    return min(1.0, max(0.5, math.ceil(peak * 10 - 1e-9) / 10))


def region_chart(history: Mapping, partners: Sequence[str], period: tuple[float, float],
                 quarter: str, step: int, marks: Sequence[tuple[float, str]] = (),
                 ghost: Mapping | None = None, band: Mapping | None = None) -> str:
    """Each power's share of influence in the region, one line each, start to now.

    Args:
        history: `quarters` (labels) and `region` (T, J) shares of the run.
        partners: Partner names along J.
        period: First and last decimal year of the axis.
        quarter: The current quarter, for the title.
        step: Quarters done (a data attribute for tests).
        marks: (decimal year, label) of events to mark with a dashed line.
        ghost: The unchanged scenario's `quarters` and `region`, drawn dashed up to now.
        band: `quarters`, `low` and `high` (T, J) of runs with posterior draws and their
            number (`runs`), drawn as pale areas up to now.

    Returns:
        An `<svg>` element.
    """
    x, region = years(history["quarters"]), np.asarray(history["region"])
    g_region = None
    if ghost is not None:
        n = min(len(ghost["quarters"]), len(x))
        g_region = np.asarray(ghost["region"])[:n]
    b_x = b_low = b_high = None
    if band is not None:
        shown = set(history["quarters"])
        n = sum(q in shown for q in band["quarters"])
        b_x = years(band["quarters"][:n])
        b_low, b_high = np.asarray(band["low"])[:n], np.asarray(band["high"])[:n]
    top = _top(region, g_region, b_high, headroom=MARK_ROOM if marks else 0.0)
    f = _Frame(50, 34, 342, HEIGHT - 30, period[0], period[1], top)
    body = [_text(4, 22, f"Central Asia: share of influence, {quarter}", TITLE, weight="bold")]
    body += f.axes(range(int(math.ceil(period[0] / 5) * 5), int(period[1]) + 1, 5),
                   np.arange(0, top + 1e-9, 0.1 if top <= 0.6 else 0.2))
    last = -1e9
    for xm, label in sorted(marks):
        xp = f.x(xm)
        body.append(f'<line x1="{xp:.1f}" x2="{xp:.1f}" y1="{f.top}" y2="{f.bottom}" '
                    f'stroke="#333" stroke-dasharray="5 4" opacity="0.6"/>')
        base = max(xp - 3, last + MIN_TEXT + 1)  # beside its line, clear of the previous one
        last = base
        body.append(_text(base, f.top + 4, label, MIN_TEXT, "end", fill="#333",
                          extra=f' transform="rotate(-90 {base:.1f} {f.top + 4:.1f})" '
                                'paint-order="stroke" stroke="white" stroke-width="4"'))
    if b_x is not None and len(b_x):
        for j, p in enumerate(partners):
            body.append(f.area(b_x, b_low[:, j], b_high[:, j], power_colour(p), 0.18))
    if g_region is not None:
        gx = x[:len(g_region)]
        for j, p in enumerate(partners):
            body.append(f.line(gx, g_region[:, j], power_colour(p), 2, "6 4", 0.7))
    for j, p in enumerate(partners):
        body.append(f.line(x, region[:, j], power_colour(p), 3.5))
    body.append(f'<line x1="{f.x(x[-1]):.1f}" x2="{f.x(x[-1]):.1f}" y1="{f.top}" '
                f'y2="{f.bottom}" stroke="black" stroke-width="1.2"/>')
    # legend: current share, and the change against the unchanged scenario
    now = region[-1]
    ly = 50
    for j in range(len(partners)):
        p = partners[j]
        body.append(f'<rect x="352" y="{ly - 13}" width="8" height="36" '
                    f'fill="{power_colour(p)}"/>')
        body.append(_text(366, ly, power_label(p), TEXT, weight="bold"))
        value = f"{now[j]:.0%}"
        if g_region is not None and len(g_region) == len(region):
            gap = f"{(now[j] - g_region[-1, j]) * 100:+.1f}".replace("-", "\u2212")
            value += f"  {gap} pts"  # a true minus sign, as the reports write it
        body.append(_text(366, ly + 19, value, TEXT, extra=f' data-power="{p}"'))
        ly += 50
    if g_region is not None:
        body.append(f'<line x1="352" x2="382" y1="{HEIGHT - 46}" y2="{HEIGHT - 46}" '
                    f'stroke="#555" stroke-width="2" stroke-dasharray="6 4"/>')
        body.append(_text(352, HEIGHT - 24, "dashed: scenario", MIN_TEXT, fill="#444"))
        body.append(_text(352, HEIGHT - 6, "unchanged", MIN_TEXT, fill="#444"))
    elif band is not None:
        body.append(f'<rect x="352" y="{HEIGHT - 56}" width="30" height="14" fill="#777" '
                    f'opacity="0.3"/>')
        body.append(_text(352, HEIGHT - 24, f"shaded: {band['runs']} runs", MIN_TEXT,
                          fill="#444"))
        body.append(_text(352, HEIGHT - 6, "with posterior draws", MIN_TEXT, fill="#444"))
    shares = " ".join(f"{p}={v:.4f}" for p, v in zip(partners, now, strict=True))
    return _svg("regional-shares", body, f"Regional shares of influence, {quarter}", step,
                f' data-shares="{shares}" data-ghost="{int(g_region is not None)}" '
                f'data-band="{int(band is not None)}"')


def states_chart(history: Mapping, partners: Sequence[str], states: Sequence[str],
                 period: tuple[float, float], quarter: str, step: int,
                 ghost: Mapping | None = None) -> str:
    """Small multiples: each state's shares by power, one line per power, start to now.

    Args:
        history: `quarters` and `states` (T, J, S) shares of the run.
        partners: Partner names along J.
        states: State names along S.
        period: First and last decimal year of the axes.
        quarter: The current quarter, for the title.
        step: Quarters done (a data attribute for tests).
        ghost: The unchanged scenario's `quarters` and `states`, drawn dashed up to now.

    Returns:
        An `<svg>` element.
    """
    x, shares = years(history["quarters"]), np.asarray(history["states"])
    g = None
    if ghost is not None:
        g = np.asarray(ghost["states"])[:min(len(ghost["quarters"]), len(x))]
    top = _top(shares, g)
    body = [_text(4, 22, f"Share of influence by state, {quarter}", TITLE, weight="bold")]
    cols, col_w, row_h = 3, 150, 170
    ticks = range(int(math.ceil((period[0] + 1) / 10) * 10), int(period[1]), 10)
    for s, state in enumerate(states):
        r, c = divmod(s, cols)
        left = 44 + c * col_w
        top_px = 54 + r * row_h
        f = _Frame(left, top_px, left + col_w - 12, top_px + row_h - 44, period[0], period[1],
                   top)
        body.append(_text((f.left + f.right) / 2, top_px - 6, state.capitalize(), TEXT,
                          "middle", weight="bold"))
        body += f.axes(ticks, [0, top / 2, top], MIN_TEXT, y_labels=c == 0,
                       x_labels=s + cols >= len(states))  # labels under each column's last
        if g is not None:
            for j, p in enumerate(partners):
                body.append(f.line(x[:len(g)], g[:, j, s], power_colour(p), 1.6, "5 3", 0.7))
        for j, p in enumerate(partners):
            body.append(f.line(x, shares[:, j, s], power_colour(p), 2.6))
    if len(states) < 6:  # the legend in the free panel
        lx, ly = 44 + 2 * col_w + 4, 54 + row_h + 4
        for j, p in enumerate(partners):
            body.append(f'<line x1="{lx}" x2="{lx + 22}" y1="{ly + j * 22 - 5}" '
                        f'y2="{ly + j * 22 - 5}" stroke="{power_colour(p)}" '
                        f'stroke-width="3.5"/>')
            body.append(_text(lx + 28, ly + j * 22, power_label(p), MIN_TEXT))
        if g is not None:
            gy = ly + len(partners) * 22 + 4
            body.append(f'<line x1="{lx}" x2="{lx + 22}" y1="{gy - 5}" y2="{gy - 5}" '
                        f'stroke="#555" stroke-width="2" stroke-dasharray="5 3"/>')
            body.append(_text(lx + 28, gy, "unchanged", MIN_TEXT, fill="#444"))
    return _svg("state-shares", body, f"Shares of influence by state, {quarter}", step)


SIDE_PANEL = 306
"""Where the map's list of states starts (SVG units from the left)."""


def _project(lon: float, lat: float, box: tuple[float, float, float, float]) -> tuple:
    west, east, south, north = EXTENT
    left, top, width, height = box
    k = min(width / ((east - west) * math.cos(math.radians(45))), height / (north - south))
    return (left + (lon - west) * math.cos(math.radians(45)) * k,
            top + (north - lat) * k)


def _ring_path(ring: Sequence[Sequence[float]], box: tuple) -> str:
    pts = [_project(lon, lat, box) for lon, lat in ring]
    return "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in pts) + " Z"


def map_chart(leaders: Mapping[str, str], shares: Mapping[str, float],
              gdp: Mapping[str, float], quarter: str, step: int) -> str:
    """The region with each state coloured by its leading power, and a list beside it.

    Args:
        leaders: State -> its leading power.
        shares: State -> the leader's share of influence there.
        gdp: State -> GDP, for the size of the capital's disc.
        quarter: The current quarter, for the title.
        step: Quarters done (a data attribute for tests).

    Returns:
        An `<svg>` element.
    """
    west, east, south, north = EXTENT
    width = SIDE_PANEL - 10
    box = (4, 40, width, width * (north - south) / ((east - west) * math.cos(math.radians(45))))
    geo = outlines()
    body = [_text(4, 22, f"Leading power by state, {quarter}", TITLE, weight="bold"),
            f'<svg x="{box[0]}" y="{box[1]}" width="{box[2]}" height="{box[3]}" '
            f'viewBox="{box[0]} {box[1]} {box[2]} {box[3]}">',
            f'<rect x="{box[0]}" y="{box[1]}" width="{box[2]}" height="{box[3]}" '
            f'fill="{WATER}"/>']
    for rings in geo["neighbours"].values():
        for ring in rings:
            body.append(f'<path d="{_ring_path(ring, box)}" fill="{LAND}" stroke="#b8b2a4"/>')
    for state, rings in geo["states"].items():
        colour = power_colour(leaders[state]) if state in leaders else LAND
        for ring in rings:
            body.append(f'<path d="{_ring_path(ring, box)}" fill="{colour}" '
                        f'fill-opacity="0.6" stroke="#333" stroke-width="1.2" '
                        f'data-state="{state}"/>')
    total = float(sum(gdp.values())) or 1.0
    for state, (_, lat, lon) in CAPITALS.items():
        if state not in leaders:
            continue
        cx, cy = _project(lon, lat, box)
        r = 4 + 14 * math.sqrt(gdp.get(state, 0.0) / total)
        body.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" '
                    f'fill="{power_colour(leaders[state])}" stroke="black"/>')
    body.append("</svg>")
    body.append(_text(box[0], box[1] + box[3] + 22, "Disc: size of the economy (GDP)",
                      MIN_TEXT, fill="#444"))
    body.append(_text(box[0], box[1] + box[3] + 44, "Outlines: Natural Earth", MIN_TEXT,
                      fill="#444"))
    y = 66
    for state in sorted(leaders, key=lambda s: -gdp.get(s, 0.0)):
        lead = leaders[state]
        body.append(f'<rect x="{SIDE_PANEL}" y="{y - 14}" width="16" height="38" '
                    f'fill="{power_colour(lead)}" fill-opacity="0.8"/>')
        body.append(_text(SIDE_PANEL + 24, y, state.capitalize(), TEXT, weight="bold"))
        body.append(_text(SIDE_PANEL + 24, y + 20, f"{power_label(lead)} {shares[state]:.0%}",
                          TEXT, extra=f' data-leader="{lead}"'))
        y += 60
    return _svg("map", body, f"Leading power by state, {quarter}", step)
