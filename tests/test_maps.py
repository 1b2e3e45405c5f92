import matplotlib

matplotlib.use("Agg")

from matplotlib.patches import Polygon  # noqa: E402

from sim.output.maps import CAPITALS, outlines, plot_region_map  # noqa: E402
from sim.output.plots import POWER_COLOURS  # noqa: E402


def test_outlines_cover_the_five_states_with_plausible_coordinates():
    geo = outlines()
    assert set(geo["states"]) == set(CAPITALS)
    assert "Natural Earth" in geo["source"]
    for state, rings in geo["states"].items():
        lons = [p[0] for ring in rings for p in ring]
        lats = [p[1] for ring in rings for p in ring]
        _, lat, lon = CAPITALS[state]
        assert min(lons) <= lon <= max(lons) and min(lats) <= lat <= max(lats), state


def test_map_colours_each_state_by_its_leader(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    leaders = {"kazakhstan": "russia", "kyrgyzstan": "china", "tajikistan": "russia",
               "turkmenistan": "other", "uzbekistan": "china"}
    ax = plot_region_map(leaders, POWER_COLOURS, title="t")
    fills = {tuple(round(c, 3) for c in p.get_facecolor()[:3]) for p in ax.patches
             if isinstance(p, Polygon) and p.get_zorder() == 0.8}
    expected = {tuple(round(c, 3) for c in matplotlib.colors.to_rgb(POWER_COLOURS[p]))
                for p in set(leaders.values())}
    assert fills == expected
    assert ax.get_title() == "t"
    assert list(tmp_path.iterdir()) == []
