"""sim.output.report and `greatgame compare`: files, numbers matching the CSVs, the page."""

import dataclasses
import html
import json
import re
from functools import partial
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sim.analysis import paired as C  # noqa: E402
from sim.cli.main import main  # noqa: E402
from sim.output import plots  # noqa: E402
from sim.output import report as R  # noqa: E402
from sim.output import report_text as T  # noqa: E402
from sim.runs import gather as G  # noqa: E402
from sim.runs.runner import derive_seeds  # noqa: E402
from sim.scenario.scenarios import load_scenario  # noqa: E402

END = "2027Q4"
SEED = 20250617
N = 3


@pytest.fixture(scope="module")
def gathered(tmp_path_factory):
    scenarios = [load_scenario(n).with_end(END) for n in ("baseline", "no_ukraine_war",
                                                          "us_stays")]
    return G.gather(scenarios, derive_seeds(SEED, N), results_root=None, root_seed=SEED)


@pytest.fixture(scope="module")
def written(gathered, tmp_path_factory):
    comparison = R.analyse(gathered, years=[2025, 2027])
    out = tmp_path_factory.mktemp("report") / "cmp"
    path = R.write_report(out, comparison, command="greatgame compare ...")
    return comparison, out, path


class _Nums(HTMLParser):
    """Collect `span.num` elements (attributes and text) and the text of `li` and `td`."""

    def __init__(self):
        super().__init__()
        self.nums, self.stack = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "span" and a.get("class") == "num":
            self.nums.append({"attrs": a, "text": ""})
            self.stack.append(True)
        elif tag == "span":
            self.stack.append(False)

    def handle_endtag(self, tag):
        if tag == "span" and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1]:
            self.nums[-1]["text"] += data


def _drawn(out) -> list[str]:
    """The charts a report folder should hold: no overtaking chart when nothing overtakes."""
    over = pd.read_csv(out / "overtaking.csv")
    return [stem for stem in R.CHARTS if stem != "overtaking" or (over["n_overtake"] > 0).any()]


def _number(text: str) -> float:
    return float(text.replace("\u2212", "-").replace("+", ""))


def _plain(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", fragment)).split())


def _without_nums(fragment: str) -> str:
    return _plain(re.sub(r'<span class="num"[^>]*>.*?</span>', " ", fragment))


# --------------------------------------------------------------------------- files

def test_report_folder_holds_html_charts_tables_and_manifest(written):
    comparison, out, path = written
    assert path == out / "report.html" and path.is_file()
    for stem in _drawn(out):
        assert (out / f"{stem}.png").stat().st_size > 10_000, stem
        assert (out / f"{stem}.svg").read_text().lstrip().startswith("<?xml")
    for name in ("shares", "differences", "overtaking", "leaders", "tilt_shifts",
                 "explanations", "summary", "runs"):
        assert (out / f"{name}.csv").is_file(), name
    m = json.loads((out / "manifest.json").read_text())
    assert m["replications"] == N and m["root_seed"] == SEED
    assert [s["seed"] for s in m["seeds"]] == derive_seeds(SEED, N)
    assert [s["label"] for s in m["scenarios"]] == ["baseline", "no_ukraine_war", "us_stays"]
    assert all(s["file_hashes"] for s in m["scenarios"])
    assert sorted(m["files"]) == sorted(p.name for p in out.iterdir())
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 3 * N and set(runs["source"]) == {"ran"}
    per_run = pd.read_parquet(out / "shares.parquet")
    assert per_run["replication"].nunique() == N and per_run["quarter"].max() == END


def test_html_is_self_contained_with_title_date_methods(written):
    comparison, out, path = written
    page = path.read_text(encoding="utf-8")
    assert "<title>What-if comparison: no_ukraine_war, us_stays against baseline</title>" in page
    assert re.search(r"Generated \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", page)
    assert "common random numbers" in page and "Student <i>t</i>" in page
    assert "What a share means" in page
    for s in comparison.gathered.sources:
        assert s.scenario.description in html.unescape(page)
    # no external resources: every src is inline, no http(s) links or stylesheets
    assert not re.search(r'(src|href)="https?:', page)
    srcs = re.findall(r'<img src="([^"]{0,40})', page)
    assert len(srcs) == len(_drawn(out)) and all(s.startswith("data:image/svg+xml;base64,")
                                              for s in srcs)


def test_every_number_in_the_html_equals_its_csv(written):
    comparison, out, path = written
    page = path.read_text(encoding="utf-8")
    parser = _Nums()
    parser.feed(page)
    assert len(parser.nums) > 300
    tables: dict[str, pd.DataFrame] = {}
    for n in parser.nums:
        src, row, col = n["attrs"]["data-src"], int(n["attrs"]["data-row"]), n["attrs"]["data-col"]
        if src not in tables:
            tables[src] = pd.read_csv(out / src)
        value = tables[src].at[row, col]
        text = n["text"]
        if text == "—":
            assert pd.isna(value), (src, row, col)
        elif isinstance(value, str):
            assert text == value, (src, row, col)
        else:
            want = abs(value) if n["attrs"].get("data-abs") else value
            assert _number(text) == want, (src, row, col, text, value)
    assert {"shares.csv", "differences.csv", "overtaking.csv", "leaders.csv",
            "explanations.csv", "tilt_shifts.csv"} <= set(tables)


def test_summary_numbers_all_come_from_tables(written):
    comparison, out, path = written
    page = path.read_text(encoding="utf-8")
    block = re.search(r'<ul class="summary">(.*?)</ul>', page, re.S).group(1)
    items = re.findall(r"<li>(.*?)</li>", block, re.S)
    summary = pd.read_csv(out / "summary.csv")
    assert len(items) == len(summary) >= 5
    labels = [s.label for s in comparison.gathered.sources]
    for item, sentence in zip(items, summary["sentence"], strict=True):
        assert _plain(item) == sentence
        rest = _without_nums(item).replace("95% CI", "")
        for label in labels:
            rest = rest.replace(label, "")
        assert not re.search(r"\d", rest), rest
    assert any("points higher" in s or "points lower" in s for s in summary["sentence"])
    assert any("overtake" in s for s in summary["sentence"])


def test_table_cells_hold_no_number_outside_the_csv_spans(written):
    comparison, out, path = written
    page = path.read_text(encoding="utf-8")
    body = page[page.index('<section id="tables">'):page.index('<section id="files">')]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)
    assert len(cells) > 100
    for c in cells:
        assert not re.search(r"\d", _without_nums(c)), c
    reasons = [_plain(r) for r in re.findall(r'<span class="reason">(.*?)</span>', body, re.S)]
    ex = pd.read_csv(out / "explanations.csv")
    assert reasons and all(r in set(ex["reason"]) for r in reasons)


def test_csv_numbers_are_rounded_as_shown(written):
    comparison, out, path = written
    d = pd.read_csv(out / "differences.csv")
    full = comparison.tables["differences"]
    assert np.allclose(d["diff_pp"], np.round(full["mean"].to_numpy() * 100, 2))
    s = pd.read_csv(out / "shares.csv")
    assert (s["share_pct"] * 10 == np.round(s["share_pct"] * 10)).all()


def test_explanations_cover_the_largest_shifts(written):
    comparison, out, path = written
    sh = pd.read_csv(out / "tilt_shifts.csv")
    ex = pd.read_csv(out / "explanations.csv")
    assert 1 <= len(sh) <= 4 and set(ex["shift"]) == set(sh["shift"])
    changes = sh["tilt_change_pp"].abs().to_list()
    assert changes == sorted(changes, reverse=True)
    assert (ex.groupby("shift").size() == 5).all()  # one row per partner
    page = path.read_text(encoding="utf-8")
    assert "greatgame explain" in page and "--before" in page


# --------------------------------------------------------------------------- formatting

@pytest.mark.parametrize("value, column, text", [
    (6.1, "diff_pp", "+6.10"), (-6.1, "diff_pp", "\u22126.10"), (-0.0, "diff_pp", "0.00"),
    (-0.001, "diff_pp", "0.00"), (31.24, "share_pct", "31.2"), (float("nan"), "share_pct", "—"),
    (-0.0123, "economy_pull", "\u22120.012"), (7, "n_runs", "7"),
])
def test_fmt(value, column, text):
    assert T.fmt(T.round_value(value, column), column) == text


def test_fmt_absolute_drops_the_sign():
    assert T.fmt(-4.8, "diff_ci_low_pp", absolute=True) == "4.80"


# --------------------------------------------------------------------------- plots

def test_comparison_charts_draw_on_given_figures_and_write_nothing(written, tmp_path,
                                                                   monkeypatch):
    comparison, out, path = written
    monkeypatch.chdir(tmp_path)
    t = comparison.tables
    fig = plots.plot_compare_shares(t["shares"], Figure(), reference="baseline")
    assert isinstance(fig, Figure) and len([a for a in fig.axes if a.has_data()]) == 3
    assert fig.axes[0].get_title(loc="left") == "baseline (reference)"
    fig = plots.plot_difference_lines(t["differences"], Figure())
    assert "percentage points" in fig.axes[0].get_ylabel()
    fig = plots.plot_difference_heatmap(t["differences"], ["2025Q4", "2027Q4"], Figure())
    assert len(fig.axes) == 2 * 2 + 1  # panels and the colour bar
    fig = plots.plot_leader_maps(t["leaders"], "2027Q4", Figure())
    assert fig.axes[0].get_title(loc="left") == "baseline"
    ax = plots.plot_overtaking(t["overtaking"])
    assert "overtakes" in ax.get_title(loc="left")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- the browser

def test_report_opens_offline_and_every_chart_renders(written, browser, artifacts_dir):
    comparison, out, path = written
    context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    outside = []
    page.on("request", lambda r: outside.append(r.url)
            if not r.url.startswith(("file:", "data:")) else None)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    images = page.evaluate("Array.from(document.images).map(i => "
                           "[i.alt, i.complete, i.naturalWidth, i.getBoundingClientRect().width])")
    assert len(images) == len(_drawn(out))
    for alt, complete, natural, shown in images:
        assert complete and natural > 300 and shown > 600, alt
    assert page.title().startswith("What-if comparison")
    assert page.locator("ul.summary li").count() >= 5
    assert outside == []
    page.screenshot(path=str(artifacts_dir / "compare_report.png"), full_page=True)
    context.close()


# --------------------------------------------------------------------------- gathering

def test_parallel_gather_equals_serial(gathered, monkeypatch):
    monkeypatch.setattr(G, "MIN_PARALLEL", 1)
    scenarios = [s.scenario for s in gathered.sources[:2]]
    par = G.gather(scenarios, gathered.seeds, results_root=None, workers=2)
    ser = gathered.result.shares[gathered.result.shares["scenario"].isin(
        [s.label for s in gathered.sources[:2]])].reset_index(drop=True)
    pd.testing.assert_frame_equal(par.result.shares, ser)
    assert par.traces["replication"].nunique() == N


def test_explanations_without_traces_rerun_and_agree(written):
    comparison, out, path = written
    g = comparison.gathered
    bare = dataclasses.replace(g, traces=g.traces.iloc[0:0])  # as if every run was read
    again = R.analyse(bare, years=[2025, 2027], explain=partial(G.explain_shifts, bare))
    assert len(again.explanations) == len(comparison.explanations) > 0
    for a, b in zip(again.explanations, comparison.explanations, strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_self_comparison_is_exactly_zero(tmp_path, capsys):
    out = tmp_path / "self"
    assert main(["compare", "baseline", "baseline", "-n", "3", "--end", "2016Q4", "--out",
                 str(out), "--no-reuse", "--workers", "1"]) == 0
    d = pd.read_csv(out / "differences.csv")
    assert set(d["scenario"]) == {"baseline (2)"}
    for col in ("diff_pp", "diff_ci_low_pp", "diff_ci_high_pp"):
        assert (d[col] == 0).all(), col
    assert not d["distinct"].any()
    text = capsys.readouterr().out
    assert "baseline (2): ran 3 runs" in text and "no share differs" in text


def test_stored_runs_are_reused_and_equal_fresh_ones(tmp_path, capsys):
    results = tmp_path / "results"
    common = ["--end", "2016Q4", "--workers", "1", "--results", str(results)]
    assert main(["run", "baseline", "-n", "2", "--end", "2016Q4", "--out",
                 str(results / "baseline")]) == 0
    capsys.readouterr()
    out = tmp_path / "cmp"
    assert main(["compare", "baseline", "no_treaty", "-n", "3", "--out", str(out),
                 *common]) == 0
    text = capsys.readouterr().out
    assert (f"baseline: read 2 of 3 runs from {results / 'baseline'} (same scenario files, "
            "seeds, period and version); ran 1") in text
    assert "no_treaty: ran 3 runs" in text
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs[runs.scenario == "baseline"]["source"]) == [
        f"read from {results / 'baseline'}"] * 2 + ["ran"]
    fresh = tmp_path / "fresh"
    assert main(["compare", "baseline", "no_treaty", "-n", "3", "--out", str(fresh),
                 "--no-reuse", *common]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out / "shares.parquet"),
                                  pd.read_parquet(fresh / "shares.parquet"))
    for name in ("shares.csv", "differences.csv", "explanations.csv"):
        assert (out / name).read_bytes() == (fresh / name).read_bytes(), name
    # another period is not reused
    capsys.readouterr()
    assert main(["compare", "baseline", "no_treaty", "-n", "2", "--out", str(tmp_path / "p"),
                 "--end", "2016Q3", "--results", str(results), "--workers", "1"]) == 0
    assert "baseline: ran 2 runs" in capsys.readouterr().out


@pytest.mark.parametrize("scenarios, extra, message", [
    (["baseline", "no_such_scenario"], [], "no_such_scenario"),
    (["baseline"], [], "compare needs at least two scenarios"),
    (["baseline", "us_stays"], ["--overtake", "china:india"], "unknown power 'india'"),
    (["baseline", "us_stays"], ["--map-quarter", "2040Q1"], "outside the compared period"),
    (["baseline", "us_stays"], ["--map-quarter", "soon"], "expected a quarter like 2025Q4"),
    (["baseline", "us_stays"], ["--years", "2040"],
     "--years 2040: 2040Q4 is outside the compared period"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, scenarios, extra,
                                                         message):
    out = tmp_path / "out"
    argv = ["compare", *scenarios, "-n", "2", "--end", "2016Q4", "--out", str(out),
            "--workers", "1", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_bad_scenario_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndescription: A typo.\nextends: baseline\nset:\n"
                   "  powers.china.budget_growht: 0.1\n")
    out = tmp_path / "out"
    assert main(["compare", "baseline", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "budget_growht" in err[0]
    assert not out.exists()


def test_compare_default_folder_and_help(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    helptext = capsys.readouterr().out
    for opt in ("--replications", "--seed", "--out", "--years", "--map-quarter", "--overtake",
                "--workers", "--results", "--no-reuse", "--end"):
        assert opt in helptext
    assert "(default: 30)" in helptext and "(default: 20250617)" in helptext
    assert C.CONFIDENCE == 0.95


def test_leader_sentences_name_the_change_and_take_numbers_from_the_row():
    r = pd.Series({"scenario": "us_stays", "area": "uzbekistan", "quarter": "2035Q4",
                   "leader": "china", "leader_share_pct": 26.1, "reference_leader": "russia",
                   "previous_leader": "russia", "runs_led_pct": 70})
    text = T.sentence_text(T._leader_sentence(4, r))
    assert text == ("Under us_stays, the leading power in Uzbekistan in 2035Q4 is China (26.1%), "
                    "not Russia as under the reference.")
    change = T._leader_change_sentence(4, r)
    assert T.sentence_text(change) == (
        "Under us_stays, the leading power in Uzbekistan changes from Russia to China by "
        "2035Q4 (26.1%; it leads in 70% of runs).")
    assert {p.column for p in change if isinstance(p, T.Num)} == {
        "quarter", "leader_share_pct", "runs_led_pct"}
    assert T.possessive("us") == "the US's" and T.subject("other") == "the rest of the world"


# --------------------------------------------------------------------------- tilt shifts

@pytest.mark.parametrize("change, heading", [
    (3.0, "Kazakhstan, no_ukraine_war: leaned toward Russia"),
    (-2.3, "Kazakhstan, no_ukraine_war: leaned away from Russia"),
    (0.0, "Kazakhstan, no_ukraine_war: tilt toward Russia hardly changed"),
])
def test_shift_heading_says_the_direction_of_the_change(change, heading):
    assert T.shift_title("kazakhstan", "no_ukraine_war", "russia", change) == heading


def test_shift_headings_and_reasons_agree_with_the_shift_table(written):
    comparison, out, path = written
    page = html.unescape(path.read_text(encoding="utf-8"))
    sh = pd.read_csv(out / "tilt_shifts.csv")
    ex = pd.read_csv(out / "explanations.csv")
    heads = re.findall(r"<h3>\d+\. (.*?)</h3>", page[page.index('<section id="explain">'):])
    assert len(heads) == len(sh) > 0
    for head, r in zip(heads, sh.itertuples(), strict=True):
        who = T.subject(r.power)
        way = "leaned toward" if r.tilt_change_pp > 0 else "leaned away from"
        assert head == f"{plots.area_label(r.state)}, {r.scenario}: {way} {who}", head
        reason = ex[(ex["shift"] == r.shift) & (ex["power"] == r.power)]["reason"].iloc[0]
        assert f"{way} {who} (" in reason
        sign = "+" if r.tilt_change_pp > 0 else "\u2212"
        assert f", {sign}{abs(r.tilt_change_pp):.1f} points)" in reason


# --------------------------------------------------------------------------- maps, overtaking

def test_maps_show_the_quarter_the_summary_speaks_of(gathered):
    c = R.analyse(gathered, years=[2025, 2026, 2027])
    assert c.quarters == ["2025Q4", "2026Q4", "2027Q4"] and c.map_quarter == "2027Q4"
    headline = T.sentence_text(c.sentences[0])
    assert "leads region-wide in 2027Q4" in headline
    assert R.analyse(gathered, years=[2025, 2027], map_quarter="2026Q4").map_quarter == "2026Q4"


def test_identical_leader_maps_are_drawn_once_and_said_once(written):
    comparison, out, path = written
    lead = comparison.tables["leaders"]
    q = "2027Q4"
    same = lead.copy()  # every scenario led like the reference in every state
    for s in ("no_ukraine_war", "us_stays"):
        ref = same[(same["scenario"] == "baseline") & (same["quarter"] == q)]
        for area, leader in zip(ref["area"], ref["leader"], strict=True):
            same.loc[(same["scenario"] == s) & (same["quarter"] == q) & (same["area"] == area),
                     "leader"] = leader
    assert plots.leader_map_groups(same, q) == (["baseline"], ["no_ukraine_war", "us_stays"])
    fig = plots.plot_leader_maps(same, q, Figure())
    assert [a.get_title(loc="left") for a in fig.axes if a.get_title(loc="left")] == [
        "baseline"]
    title = fig.get_suptitle().replace("\n", " ")
    assert "Under no_ukraine_war and us_stays, every state has the same leading power as " \
           "under baseline" in title and title.count("no_ukraine_war") == 1
    assert "* differs" not in title  # nothing marked, so no key to the mark
    differs = same.copy()
    row = (differs["scenario"] == "us_stays") & (differs["quarter"] == q) & (
        differs["area"] == "kazakhstan")
    differs.loc[row, "leader"] = "us" if differs.loc[row, "leader"].iloc[0] != "us" else "eu"
    differs.loc[row, "differs_from_reference"] = True
    assert plots.leader_map_groups(differs, q) == (["baseline", "us_stays"], ["no_ukraine_war"])
    fig = plots.plot_leader_maps(differs, q, Figure())
    assert [a.get_title(loc="left") for a in fig.axes if a.get_title(loc="left")] == [
        "baseline", "us_stays"]
    assert "* differs from the reference" in fig.get_suptitle().replace("\n", " ")


@pytest.fixture(scope="module")
def written_early(tmp_path_factory):
    """The same comparison run to 2024Q4 only: China overtakes Russia nowhere yet."""
    scenarios = [load_scenario(n).with_end("2024Q4") for n in ("baseline", "no_ukraine_war",
                                                               "us_stays")]
    gathered = G.gather(scenarios, derive_seeds(SEED, N), results_root=None, root_seed=SEED)
    comparison = R.analyse(gathered, years=[2023, 2024])
    out = tmp_path_factory.mktemp("report_early") / "cmp"
    path = R.write_report(out, comparison, command="greatgame compare ...")
    return comparison, out, path


def test_no_overtaking_is_one_line_not_an_empty_chart(written_early):
    comparison, out, path = written_early
    over = pd.read_csv(out / "overtaking.csv")
    assert not (over["n_overtake"] > 0).any()  # to 2024Q4 China overtakes Russia nowhere
    assert not (out / "overtaking.png").exists() and "overtaking" not in R.draw_charts(comparison)
    page = html.unescape(path.read_text(encoding="utf-8"))
    assert ("<b>Overtaking quarters.</b> China does not overtake Russia in any run of any "
            "scenario, region-wide or in any state, so there is no chart") in page
    summary = list(pd.read_csv(out / "summary.csv")["sentence"])
    said = [s for s in summary if "overtake" in s]
    assert said == [f"Under every scenario, China does not overtake Russia region-wide in any "
                    f"of the {N} runs."], said


def test_overtaking_sentences_group_alike_scenarios_only():
    over = pd.DataFrame({"scenario": ["a", "b", "c"], "area": "region", "power": "china",
                         "rival": "russia", "n_runs": 5, "n_overtake": [0, 2, 0],
                         "runs_pct": [0, 40, 0], "median": [None, "2030Q1", None],
                         "earliest": [None, "2029Q1", None], "latest": [None, "2031Q1", None],
                         "ahead_at_start": 0, "ahead_at_end": [0, 2, 0]})
    group = T._overtaking_group_sentence(over.iloc[[0, 2]], 3)
    assert T.sentence_text(group) == ("Under a and c, China does not overtake Russia "
                                      "region-wide in any of the 5 runs.")
    assert T.overtaking_note(over, "china", "russia") is None
    none = over.assign(n_overtake=0)
    assert T.overtaking_note(none, "china", "russia").startswith(
        "China does not overtake Russia in any run of any scenario")


@pytest.mark.parametrize("command", ["compare", "demo"])
def test_help_prints_percent_signs_once(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "%%" not in text
    if command == "compare":
        assert "shares with 95% intervals" in text
    assert "quarter of the leader maps (default: the last year's Q4, the quarter the summary " \
           "speaks of)" in text
