"""A map of the region: coarse outlines, capitals and corridors, coloured by leading power.

Everything is shipped with the package (nothing is downloaded): coarse country outlines
in `sim/output/geo/central_asia.json` (Natural Earth 1:110m, public domain; the file names its
source), each state's capital (latitude, longitude in degrees) and a few Belt and Road
corridors as polylines through real places. `plot_region_map` draws one map on a
matplotlib Axes and returns it; it never saves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import Patch, Polygon

GEO_FILE = Path(__file__).with_name("geo") / "central_asia.json"
WATER = "#dbe9f4"
LAND = "#eeeae0"


@cache
def outlines() -> dict:
    """The shipped outlines: {"states": {state: [ring, ...]}, "neighbours": {...}, "source"}.

    A ring is a list of [longitude, latitude] points.
    """
    return json.loads(GEO_FILE.read_text(encoding="utf-8"))

CAPITALS: dict[str, tuple[str, float, float]] = {
    "kazakhstan": ("Astana", 51.17, 71.43),
    "kyrgyzstan": ("Bishkek", 42.87, 74.59),
    "tajikistan": ("Dushanbe", 38.56, 68.79),
    "turkmenistan": ("Ashgabat", 37.95, 58.38),
    "uzbekistan": ("Tashkent", 41.30, 69.24),
}
"""State -> (capital, latitude, longitude)."""

CORRIDORS: dict[str, list[tuple[str, float, float]]] = {
    "China-Europe rail via Kazakhstan": [
        ("Khorgos", 44.21, 80.41), ("Almaty", 43.24, 76.89), ("Shymkent", 42.32, 69.60),
        ("Kyzylorda", 44.85, 65.51), ("Aktobe", 50.28, 57.17),
    ],
    "Middle Corridor (Trans-Caspian)": [
        ("Almaty", 43.24, 76.89), ("Shymkent", 42.32, 69.60), ("Beyneu", 45.32, 55.20),
        ("Aktau", 43.65, 51.17),
    ],
    "China-Kyrgyzstan-Uzbekistan railway": [
        ("Kashgar", 39.47, 75.99), ("Torugart", 40.56, 75.39), ("Jalal-Abad", 40.93, 73.00),
        ("Andijan", 40.78, 72.34), ("Tashkent", 41.30, 69.24),
    ],
    "Central Asia-China gas pipeline": [
        ("Galkynysh field", 37.60, 62.20), ("Bukhara", 39.77, 64.42),
        ("Tashkent", 41.30, 69.24), ("Shymkent", 42.32, 69.60), ("Almaty", 43.24, 76.89),
        ("Khorgos", 44.21, 80.41),
    ],
}
"""Corridor -> places along it (name, latitude, longitude)."""

_CORRIDOR_STYLE = {
    "China-Europe rail via Kazakhstan": dict(ls="-", color="#555555"),
    "Middle Corridor (Trans-Caspian)": dict(ls="--", color="#555555"),
    "China-Kyrgyzstan-Uzbekistan railway": dict(ls="-.", color="#555555"),
    "Central Asia-China gas pipeline": dict(ls=":", color="#555555"),
}

EXTENT = (46.0, 88.0, 35.0, 56.0)
"""Longitude and latitude limits of the map (west, east, south, north)."""


def plot_region_map(leaders: Mapping[str, str], colors: Mapping[str, str],
                    ax: Axes | None = None, sizes: Mapping[str, float] | None = None,
                    labels: Mapping[str, str] | None = None, title: str | None = None,
                    corridors: bool = True) -> Axes:
    """Draw the region: each capital as a disc coloured by the state's leading power.

    Args:
        leaders: State -> leading power (a key of `colors`).
        colors: Power -> matplotlib colour.
        ax: Axes to draw on (a new figure if None).
        sizes: State -> relative disc area (e.g. GDP share); equal if None.
        labels: State -> extra text under the capital (e.g. "China 34%").
        title: Axes title.
        corridors: Draw the corridors.

    Returns:
        The Axes.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 5))
    west, east, south, north = EXTENT
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.set_aspect(1.3)  # roughly equal distances at ~42 degrees north
    ax.set_facecolor(WATER)
    geo = outlines()
    for rings in geo["neighbours"].values():
        for ring in rings:
            ax.add_patch(Polygon(ring, closed=True, facecolor=LAND, edgecolor="#b8b2a4",
                                 lw=0.6, zorder=0.5))
    for state, rings in geo["states"].items():
        colour = colors.get(leaders[state], "grey") if state in leaders else LAND
        for ring in rings:
            ax.add_patch(Polygon(ring, closed=True, facecolor=colour, alpha=0.55,
                                 edgecolor="#333333", lw=1.0, zorder=0.8))
    ax.set_xlabel("longitude (°E)")
    ax.set_ylabel("latitude (°N)")
    ax.text(0.99, 0.01, "outlines: Natural Earth", transform=ax.transAxes, ha="right",
            va="bottom", fontsize=6, color="#666666")
    if corridors:
        for name, places in CORRIDORS.items():
            ax.plot([p[2] for p in places], [p[1] for p in places], lw=1.4, alpha=0.7,
                    label=name, zorder=1, **_CORRIDOR_STYLE[name])
    total = sum(sizes.values()) if sizes else 0.0
    for state, (capital, lat, lon) in CAPITALS.items():
        if state not in leaders:
            continue
        frac = (sizes[state] / total) if sizes and total > 0 else 0.2
        area = 250 + 2500 * frac
        ax.scatter([lon], [lat], s=area, color=colors.get(leaders[state], "grey"),
                   edgecolor="black", lw=0.8, zorder=3)
        text = f"{state.capitalize()}\n({capital})"
        if labels and state in labels:
            text += f"\n{labels[state]}"
        ax.annotate(text, (lon, lat), xytext=(0, -14 - 0.35 * area ** 0.5),
                    textcoords="offset points", ha="center", va="top", fontsize=8, zorder=4)
    powers = list(dict.fromkeys(leaders.values()))
    handles = [Patch(facecolor=colors.get(p, "grey"), edgecolor="black", label=f"led by {p}")
               for p in powers]
    if corridors:
        handles += ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              framealpha=0.9, borderaxespad=0)
    if title:
        ax.set_title(title)
    return ax
