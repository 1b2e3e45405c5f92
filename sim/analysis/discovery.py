"""Scenario discovery: which ranges of a sweep's parameters make a condition likely.

Given the varied parameters of every run (the inputs) and whether a condition held in it
(`sim.analysis.condition`), PRIM (the Patient Rule Induction Method, from EMA Workbench's
`ema_workbench.analysis.prim`) peels the input space down to a box where the condition
holds densely, and records every box on the way (the peeling trajectory). `discover`
chooses one box by a documented rule (docs/discovery.md), drops the limits that are not
significant (quasi-p-value above `SIGNIFICANCE`), and returns the tables the command
writes: the trajectory, the box with its quasi-p-values, feature scores (extra trees,
EMA Workbench's `feature_scoring`) and the one sentence that sums it up.

Density: the share of runs in the box where the condition holds. Coverage: the share of
all runs where it holds that fall in the box. Mass: the share of all runs in the box.

Tables in, tables out: nothing here reads files, prints or draws. Parameter names come in
as paths (`powers.china.capacity`, `events.<id>.effects[0].value`, ...) and are put
into words by rule, so nothing depends on a particular parameter of the model.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sim.analysis.condition import actor_name, possessive
from sim.errors import InputError
from sim.world.vocabulary import PairAttrs, Params, PowerAttrs, StateAttrs, field_table

SCENARIO_INPUT = "(scenario)"
"""The input column naming each run's scenario, when a sweep runs several (a category)."""

MIN_DENSITY = 0.8
"""The density a box must reach to be chosen by default (raised for common conditions)."""
SIGNIFICANCE = 0.05
"""A box's limit is kept only if its quasi-p-value is at most this."""
PEEL_ALPHA = 0.05
"""Share of the runs in the box that PRIM peels off at each step."""
PASTE_ALPHA = 0.05
"""Share of the runs PRIM adds back at each pasting step."""
MASS_MIN = 0.05
"""PRIM stops peeling when a box would hold fewer than this share of all runs."""
TREES = 100
"""Trees of the extra-trees forest behind the feature scores."""


# --------------------------------------------------------------------------- inputs

def prepare_inputs(inputs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The inputs PRIM can use, and a note for each one left out.

    Numeric columns become floats, others categories. A column with one value in every
    run cannot tell runs apart and is left out.

    Raises:
        InputError: no column varies between runs.
    """
    keep, notes = {}, []
    for name in inputs.columns:
        col = inputs[name]
        values = col.dropna().unique()
        if len(values) <= 1:
            shown = f"{values[0]:.4g}" if len(values) and _is_number(col) else (
                str(values[0]) if len(values) else "none")
            notes.append(f"{name} has the same value ({shown}) in every run; left out")
            continue
        keep[name] = col.astype(float) if _is_number(col) else col.astype(str).astype(object)
    if not keep:
        raise InputError(None, "no parameter varies between the sweep's runs (a sweep file "
                               "without `parameters:`, or each with one value), so nothing "
                               "can tell the runs where the condition holds from the others; "
                               "run a sweep that varies parameters, e.g. a Latin hypercube "
                               "(docs/discovery.md)")
    return pd.DataFrame(keep).reset_index(drop=True), notes


def _is_number(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def default_threshold(base_rate: float) -> float:
    """The density a chosen box must reach by default.

    `MIN_DENSITY`, or halfway from the base rate to 100% when the condition is already
    that common (a box of 80% density says little about a condition true in 75% of runs).
    """
    return max(MIN_DENSITY, (1.0 + base_rate) / 2.0)


# --------------------------------------------------------------------------- PRIM

@dataclass
class Discovery:
    """What PRIM found for one condition over a sweep's runs."""

    trajectory: pd.DataFrame
    """One row per box PRIM visited: box, mass, coverage, density, n, k, restricted."""
    chosen: int
    """The chosen box on the trajectory."""
    rule: str
    """How the box was chosen, in words."""
    limits: pd.DataFrame
    """One row per input the chosen box restricts (see `_limits_table`)."""
    in_box: np.ndarray
    """Whether each run is in the box the sentence speaks of (after dropping limits)."""
    holds: np.ndarray
    threshold: float
    scores: pd.DataFrame
    """Feature scores: parameter, score (sums to 1), rank."""
    notes: list[str] = field(default_factory=list)

    @property
    def n_runs(self) -> int:
        """Runs analysed."""
        return len(self.holds)

    @property
    def n_holds(self) -> int:
        """Runs where the condition holds."""
        return int(self.holds.sum())

    @property
    def n_in_box(self) -> int:
        """Runs in the final box."""
        return int(self.in_box.sum())

    @property
    def n_holds_in_box(self) -> int:
        """Runs in the final box where the condition holds."""
        return int((self.in_box & self.holds).sum())

    @property
    def base_rate(self) -> float:
        """Share of all runs where the condition holds."""
        return self.n_holds / self.n_runs

    @property
    def density(self) -> float:
        """Share of the final box's runs where the condition holds."""
        return self.n_holds_in_box / self.n_in_box if self.n_in_box else float("nan")

    @property
    def coverage(self) -> float:
        """Share of the runs where the condition holds that the final box holds."""
        return self.n_holds_in_box / self.n_holds if self.n_holds else float("nan")

    @property
    def mass(self) -> float:
        """Share of all runs in the final box."""
        return self.n_in_box / self.n_runs

    @property
    def kept(self) -> pd.DataFrame:
        """The limits the sentence names (significant ones of the chosen box)."""
        return self.limits[self.limits["in_sentence"]]


def outcome_problem(holds: np.ndarray) -> str | None:
    """Why there is nothing to discover (the condition holds in no run, or in all), or None."""
    n, k = len(holds), int(np.sum(holds))
    if n == 0:
        return "no finished run to analyse"
    if k == 0:
        return (f"the condition holds in none of the {n:,} runs, so there is nothing to tell "
                "apart; try a weaker condition")
    if k == n:
        return (f"the condition holds in all {n:,} runs, so there is nothing to tell apart; "
                "try a stronger condition")
    return None


def _prim_module():
    """EMA Workbench's PRIM, imported quietly (it warns about optional parallel tools)."""
    import logging

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ema_workbench.analysis import prim
    logging.getLogger("EMA").setLevel(logging.WARNING)
    return prim


def discover(inputs: pd.DataFrame, holds: np.ndarray, *, box: int | None = None,
             min_density: float | None = None, seed: int = 0) -> Discovery:
    """Run PRIM on the runs, choose a box and score the inputs.

    Args:
        inputs: One row per run, one column per input (`prepare_inputs`' output).
        holds: Whether the condition held, per run (both values must occur).
        box: Take this box of the trajectory instead of the default rule.
        min_density: The density the chosen box must reach (default `default_threshold`).
        seed: Seed of the extra-trees forest behind the feature scores.

    Returns:
        The trajectory, the chosen box, its limits with quasi-p-values, the final box
        (limits that are not significant dropped) and the feature scores.

    Raises:
        InputError: `box` is not on the trajectory.
    """
    holds = np.asarray(holds, dtype=bool)
    problem = outcome_problem(holds)
    if problem:
        raise ValueError(problem)
    x = inputs.reset_index(drop=True)
    prim = _prim_module()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # EMA Workbench 2.5: cases of interest are y >= threshold, and a box whose density
        # is under it is replaced by the whole space; a tiny threshold keeps every box.
        alg = prim.Prim(x, holds.astype(int), threshold=1e-12, peel_alpha=PEEL_ALPHA,
                        paste_alpha=PASTE_ALPHA, mass_min=MASS_MIN)
        pbox = alg.find_box()
    trajectory = _trajectory(pbox.peeling_trajectory)
    lims, qps = list(pbox.box_lims), list(pbox.qp)
    base = holds.mean()
    threshold = default_threshold(base) if min_density is None else float(min_density)
    if box is not None:
        if not 0 <= box < len(trajectory):
            raise InputError(None, f"box {box} is not on the peeling trajectory: it has boxes 0 "
                                   f"to {len(trajectory) - 1}", field="--box")
        chosen, rule = box, f"box {box}, as asked (--box)"
    else:
        chosen, rule = choose_box(trajectory, threshold)
    trajectory["chosen"] = trajectory["box"] == chosen
    final, dropped = _drop_insignificant(lims[chosen], qps[chosen], lims[0])
    in_box = _in_box(x, final)
    final_qp = qps[chosen]
    if dropped:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pbox.update(final, np.flatnonzero(in_box))  # the library's quasi-p-values
        final_qp = pbox.qp[-1]
    limits = _limits_table(x, lims[0], lims[chosen], qps[chosen], final, final_qp)
    notes = []
    if box is None and not trajectory.loc[chosen, "density"] >= threshold:
        notes.append(f"no box reaches a density of {threshold:.0%}; the densest box "
                     f"({trajectory.loc[chosen, 'density']:.0%}) is shown")
    if dropped:
        notes.append("limits not significant at the 5% level (quasi-p-value above "
                     f"{SIGNIFICANCE}) were dropped from box {chosen}: {', '.join(dropped)}")
    return Discovery(trajectory=trajectory, chosen=chosen, rule=rule, limits=limits,
                     in_box=in_box, holds=holds, threshold=threshold,
                     scores=feature_scores(x, holds, seed), notes=notes)


def _trajectory(ppt: pd.DataFrame) -> pd.DataFrame:
    t = ppt.reset_index(drop=True)
    return pd.DataFrame({
        "box": t["id"].astype(int), "mass": t["mass"].astype(float),
        "coverage": t["coverage"].astype(float), "density": t["density"].astype(float),
        "n": t["n"].astype(int), "k": t["k"].astype(int),
        "restricted": t["res_dim"].astype(int)})


def choose_box(trajectory: pd.DataFrame, threshold: float) -> tuple[int, str]:
    """The default box: the greatest coverage among boxes of density at least `threshold`.

    Only boxes that restrict some input count (box 0 is every run). Ties go to fewer
    restricted inputs, then the earlier box. If no box is dense enough, the densest box
    (ties: greater coverage).

    Returns:
        The box and the rule in words.
    """
    t = trajectory[trajectory["restricted"] > 0]
    if t.empty:
        return 0, "box 0 (every run): PRIM found no box that restricts an input"
    dense = t[t["density"] >= threshold - 1e-12]
    if not dense.empty:
        best = dense.sort_values(["coverage", "restricted", "box"],
                                 ascending=[False, True, True]).iloc[0]
        return int(best["box"]), (f"the box with the greatest coverage among those with a "
                                  f"density of at least {threshold:.0%}")
    best = t.sort_values(["density", "coverage", "box"], ascending=[False, False, True]).iloc[0]
    return int(best["box"]), (f"the densest box (no box reaches a density of "
                              f"{threshold:.0%})")


def _drop_insignificant(lim: pd.DataFrame, qp: Mapping[str, Sequence[float]],
                        init: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The box with each limit whose quasi-p-value exceeds `SIGNIFICANCE` opened up."""
    final, dropped = lim.copy(), []
    for name, (q_lo, q_hi) in qp.items():
        if _categorical(init[name]):
            if q_lo > SIGNIFICANCE:
                final[name] = init[name]
                dropped.append(f"{name} (p = {q_lo:.2g})")
            continue
        for row, q, side in ((0, q_lo, "lower"), (1, q_hi, "upper")):
            if q >= 0 and q > SIGNIFICANCE:  # -1: the side is not restricted
                final.loc[row, name] = init.loc[row, name]
                dropped.append(f"{name} {side} limit (p = {q:.2g})")
    return final, dropped


def _categorical(limit: pd.Series) -> bool:
    return isinstance(limit.iloc[0], (set, frozenset))


def _in_box(x: pd.DataFrame, lim: pd.DataFrame) -> np.ndarray:
    inside = np.ones(len(x), dtype=bool)
    for name in lim.columns:
        if _categorical(lim[name]):
            inside &= x[name].isin(lim.loc[0, name]).to_numpy()
        else:
            v = x[name].to_numpy(dtype=float)
            inside &= (v >= lim.loc[0, name]) & (v <= lim.loc[1, name])
    return inside


def _limits_table(x: pd.DataFrame, init: pd.DataFrame, chosen: pd.DataFrame,
                  qp: Mapping[str, Sequence[float]], final: pd.DataFrame,
                  final_qp: Mapping[str, Sequence[float]]) -> pd.DataFrame:
    """One row per input the chosen box restricts.

    Columns: parameter; kind (`number` or `category`); min and max over all runs; lower
    and upper of the chosen box with their quasi-p-values (`qp_lower`, `qp_upper`; empty
    where that side is not restricted); `final_lower`, `final_upper` and their
    quasi-p-values, the box after insignificant limits are dropped; `values` (for a
    category, the values in the final box); `in_sentence`.
    """
    rows = []
    for name in qp:
        cat = _categorical(init[name])
        q_lo, q_hi = qp[name]
        f_lo, f_hi = final_qp.get(name, (-1.0, -1.0))
        row = {"parameter": name, "kind": "category" if cat else "number"}
        if cat:
            row |= {"min": np.nan, "max": np.nan, "lower": np.nan, "upper": np.nan,
                    "qp_lower": q_lo, "qp_upper": np.nan, "final_lower": np.nan,
                    "final_upper": np.nan, "final_qp_lower": f_lo if f_lo >= 0 else np.nan,
                    "final_qp_upper": np.nan,
                    "values": ", ".join(sorted(map(str, final.loc[0, name]))),
                    "in_sentence": final.loc[0, name] != init.loc[0, name]}
        else:
            lo_on = final.loc[0, name] != init.loc[0, name]
            hi_on = final.loc[1, name] != init.loc[1, name]
            row |= {"min": float(x[name].min()), "max": float(x[name].max()),
                    "lower": float(chosen.loc[0, name]), "upper": float(chosen.loc[1, name]),
                    "qp_lower": q_lo if q_lo >= 0 else np.nan,
                    "qp_upper": q_hi if q_hi >= 0 else np.nan,
                    "final_lower": float(final.loc[0, name]),
                    "final_upper": float(final.loc[1, name]),
                    "final_qp_lower": f_lo if lo_on and f_lo >= 0 else np.nan,
                    "final_qp_upper": f_hi if hi_on and f_hi >= 0 else np.nan,
                    "values": "", "in_sentence": bool(lo_on or hi_on)}
        rows.append(row)
    cols = ["parameter", "kind", "min", "max", "lower", "upper", "qp_lower", "qp_upper",
            "final_lower", "final_upper", "final_qp_lower", "final_qp_upper", "values",
            "in_sentence"]
    table = pd.DataFrame(rows, columns=cols)
    table["in_sentence"] = table["in_sentence"].astype(bool)
    best = table[["qp_lower", "qp_upper"]].min(axis=1)
    return table.assign(_p=best).sort_values("_p", kind="stable").drop(columns="_p") \
        .reset_index(drop=True)


def feature_scores(x: pd.DataFrame, holds: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """How much each input tells where the condition holds: extra-trees importances.

    EMA Workbench's `get_ex_feature_scores` (a seeded scikit-learn extra-trees classifier;
    scores are each input's share of the forest's impurity reduction and sum to 1).

    Returns:
        Columns parameter, score, rank (1 = most informative).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ema_workbench.analysis import feature_scoring
        from ema_workbench.analysis.scenario_discovery_util import RuleInductionType

        scores, _ = feature_scoring.get_ex_feature_scores(
            x, np.asarray(holds, dtype=int), mode=RuleInductionType.CLASSIFICATION,
            nr_trees=TREES, max_features=max(1, round(x.shape[1] / 3)),
            random_state=seed % 2**32)
    s = scores.iloc[:, 0]
    out = pd.DataFrame({"parameter": [str(i) for i in s.index], "score": s.to_numpy(float)})
    out = out.sort_values(["score", "parameter"], ascending=[False, True],
                          kind="stable").reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out


# --------------------------------------------------------------------------- words

_UNITS = {r["name"]: r["unit"] for m in (PowerAttrs, StateAttrs, PairAttrs, Params)
          for r in field_table(m)}
"""Each attribute's and parameter's unit, from the vocabulary."""
_PERCENT_UNITS = {"1/yr", "fraction", "1/quarter"}
"""Units shown as percentages (a growth of 0.06 a year reads as 6%)."""
_EFFECT = re.compile(r"^events\.([^.]+)\.effects\[(\d+)\]\.value$")


def _place(name: str, every: str) -> str:
    if name == "*":
        return every
    return "the rest of the world" if name == "other" else (
        actor_name(name) if name in ("eu", "us") else name.replace("_", " ").title())


def _words(attr: str) -> str:
    return attr.replace("_", " ")


def target_label(path: str) -> str:
    """A `set:` path or event target in words.

    `powers.china.capacity` -> China's capacity; a path of another shape is
    returned as it is.
    """
    p = path.split(".")
    if len(p) == 5 and p[0] == "powers" and p[2] == "toward":
        return f"{_words(p[4])} between {_place(p[1], 'every power')} and " \
               f"{_place(p[3], 'every state')}"
    if len(p) == 4 and p[0] == "other" and p[1] == "toward":
        return f"{_words(p[3])} between the rest of the world and {_place(p[2], 'every state')}"
    if len(p) == 3 and p[0] in ("powers", "states"):
        every = "every power" if p[0] == "powers" else "every state"
        return f"{possessive(_place(p[1], every))} {_words(p[2])}"
    if len(p) == 2 and p[0] == "params":
        return param_phrase(p[1])
    return path


NOUN_PHRASES = ("Weight of", "Elasticity of", "Yearly", "Quarterly", "Share of",
                "Logit temperature of", "Standard deviation of", "Project risk per")
"""How a parameter's documentation starts when its first clause names it (the rest read
"the <name> parameter")."""


def param_phrase(name: str, longest: int = 60) -> str:
    """A model parameter in words: the first clause of its documentation, when it names it.

    `w_security` -> "the weight of the security-ties channel in influence". A parameter
    the vocabulary does not know, whose documentation does not start with a noun phrase
    (`NOUN_PHRASES`), or whose first clause is longer than `longest` characters, reads
    "the <name> parameter".
    """
    field_ = Params.model_fields.get(name)
    doc = (field_.description or "") if field_ is not None else ""
    clause = re.split(r"\.(?:\s|$)|;|:", doc, maxsplit=1)[0].strip()
    if not clause.startswith(NOUN_PHRASES) or len(clause) > longest:
        return f"the {name} parameter"
    return "the " + clause[0].lower() + clause[1:]


def parameter_label(path: str, effects: Mapping[str, tuple[str, str]] | None = None) -> str:
    """A varied parameter in words, for the sentence and the charts.

    Args:
        path: The sweep's parameter path.
        effects: For event effect values, `events.<id>.effects[<i>].value` -> (target, op)
            of that effect, when the scenario could be read.
    """
    if path == SCENARIO_INPUT:
        return "the scenario"
    m = _EFFECT.match(path)
    if m:
        event, i = m.groups()
        if effects and path in effects:
            target, op = effects[path]
            what = target_label(target)
            return {"scale": f"the factor {event} applies to {what}",
                    "add": f"the amount {event} adds to {what}",
                    "set": f"the value {event} sets {what} to"}.get(op, f"{event}'s {op} of "
                                                                        f"{what}")
        return f"effect {i} of {event}"
    return target_label(path)


def value_text(path: str, value: float,
               effects: Mapping[str, tuple[str, str]] | None = None) -> str:
    """A parameter's value as the sentence shows it: growths and fractions as percent."""
    m = _EFFECT.match(path)
    if m:
        target, op = (effects or {}).get(path, ("", "scale"))
        unit = "" if op == "scale" else _UNITS.get(target.rsplit(".", 1)[-1], "")
    else:
        unit = _UNITS.get(path.rsplit(".", 1)[-1], "")
    if unit in _PERCENT_UNITS:
        text = f"{value * 100:.1f}".rstrip("0").rstrip(".")
        return ("0" if text in ("-0", "") else text) + "%"
    return f"{value:.3g}"


def percent(x: float) -> str:
    """A share as the sentence shows it: whole percent, never 0% or 100% when it is not."""
    if 0 < x < 0.005:
        return "under 1%"
    if 0.995 <= x < 1:
        return "over 99%"
    return f"{x:.0%}"


def restriction_text(row: Mapping, effects: Mapping[str, tuple[str, str]] | None = None) -> str:
    """One limit of the final box in words (`China's capacity growth is above 6%`)."""
    name = row["parameter"]
    label = parameter_label(name, effects)
    if row["kind"] == "category":
        values = [v.strip() for v in str(row["values"]).split(",")]
        return f"{label} is {' or '.join(values)}"
    lo = row["final_lower"] > row["min"]
    hi = row["final_upper"] < row["max"]
    low, high = (value_text(name, row[k], effects) for k in ("final_lower", "final_upper"))
    if lo and hi:
        return f"{label} is between {low} and {high}"
    return f"{label} is above {low}" if lo else f"{label} is below {high}"


def _join(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def sentence(condition_words: str, d: Discovery,
             effects: Mapping[str, tuple[str, str]] | None = None) -> str:
    """The one sentence of a discovery, every number as the tables give it.

    Of the shape: "China's regional share in 2030Q4 is above Russia's in 81% of runs where
    China's capacity growth is above 6% and ..., against 37% of all 3,000 runs; these
    conditions cover 74% of all runs where it holds."
    """
    head = condition_words[0].upper() + condition_words[1:]
    kept = d.kept
    if kept.empty:
        return (f"{head} in {percent(d.base_rate)} of all {d.n_runs:,} runs, and no "
                "significant range of the varied parameters marks out the runs where it "
                "holds.")
    where = _join([restriction_text(r, effects) for r in kept.to_dict("records")])
    return (f"{head} in {percent(d.density)} of runs where {where}, against "
            f"{percent(d.base_rate)} of all {d.n_runs:,} runs; these conditions cover "
            f"{percent(d.coverage)} of all runs where it holds.")


def summary_row(condition: str, d: Discovery) -> dict:
    """The discovery's numbers as one row of `summary.csv` (the sentence reads these)."""
    return {"condition": condition, "runs": d.n_runs, "holds": d.n_holds,
            "base_rate": d.base_rate, "box": d.chosen, "rule": d.rule,
            "min_density": d.threshold, "restricted": int(d.kept.shape[0]),
            "in_box": d.n_in_box, "holds_in_box": d.n_holds_in_box, "mass": d.mass,
            "density": d.density, "coverage": d.coverage,
            "base_rate_text": percent(d.base_rate), "density_text": percent(d.density),
            "coverage_text": percent(d.coverage)}
