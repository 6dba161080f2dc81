"""Confirmation on fresh seeds: do the sweep's best configurations still win on seeds
they were not chosen on?

``nnsweep confirm NAME --top K --seeds N`` retrains the K best configurations (by the
validation objective, over the search rows) on N seeds the sweep never used, and appends
those rows to the same trials.csv with ``phase`` "confirm". ``confirmation`` then ranks
the confirmed configurations on the fresh seeds alone, with Holm-corrected pairwise
Welch tests, and measures the winner's curse: how far the chosen configuration's score
fell from its search seeds to the fresh ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnsweep.errors import ResultsError, SweepDefinitionError
from nnsweep.results import read_rows
from nnsweep.stats import ALPHA, CONFIRM, SEARCH, config_labels, fmt_num, p_text, summarize
from nnsweep.strategies.grid import FixedStrategy
from nnsweep.sweep import Sweep

DEFAULT_TOP = 3
DEFAULT_SEEDS = 5


@dataclass(frozen=True)
class Confirm:
    """What to confirm: the ``top`` configurations, each on ``seeds`` fresh seeds."""

    top: int = DEFAULT_TOP
    seeds: int = DEFAULT_SEEDS

    def __post_init__(self) -> None:
        for name in ("top", "seeds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SweepDefinitionError(f"--{name}", "must be an integer >= 1", value)


def fresh_seeds(sweep: Sweep, rows: Sequence[Mapping[str, Any]], n: int) -> list[int]:
    """``n`` seeds above every seed the sweep declares or its search rows used.

    Computed from the search rows only, so a resumed (or repeated) confirm picks the same
    seeds again and skips the trials it already trained.
    """
    used = {int(r["seed"]) for r in rows if r.get("phase", SEARCH) == SEARCH}
    start = max([*sweep.seed_list, *used]) + 1
    return list(range(start, start + n))


def top_configs(
    rows: Sequence[Mapping[str, Any]], objective: str, direction: str, k: int
) -> list[str]:
    """Config ids of the ``k`` best configurations by mean objective over search rows."""
    import pandas as pd

    search = [r for r in rows if r.get("phase", SEARCH) == SEARCH]
    if not search:
        raise ResultsError("the sweep has no search rows yet; run it before confirming")
    df = pd.DataFrame(search)
    df[objective] = pd.to_numeric(df[objective], errors="coerce")
    table = summarize(df, objective, by=[]).dropna(subset=["mean"])
    if table.empty:
        raise ResultsError("no successful search trials to confirm")
    table = table.sort_values("mean", ascending=direction == "min", kind="stable")
    return [str(c) for c in table["config_id"].head(k)]


class ConfirmStrategy(FixedStrategy):
    """The trials of a confirmation: the top configurations on fresh seeds."""

    def __init__(
        self, sweep: Sweep, trials_path: Path, objective: str, direction: str, confirm: Confirm
    ) -> None:
        from nnsweep.best import params_of

        rows = read_rows(trials_path) if trials_path.exists() else []
        self.configs = top_configs(rows, objective, direction, confirm.top)
        self.seeds = fresh_seeds(sweep, rows, confirm.seeds)
        results = trials_path.parent.parent
        super().__init__(
            [
                t
                for c in self.configs
                for t in sweep.trials_for(params_of(sweep, c, results), self.seeds)
            ]
        )


# -- the report's account of a confirmation ----------------------------------------------


@dataclass(frozen=True)
class Confirmation:
    """The confirmed configurations ranked on fresh seeds, and the winner's curse."""

    metric: str
    table: Any  # per configuration: search and fresh mean/std/n, rank on fresh seeds
    pairs: Any  # pairwise Welch tests on fresh seeds, Holm-corrected
    chosen: str  # the label of the configuration the search chose
    curse: float  # chosen's fresh mean minus its search mean (negative: it fell)
    text: list[str]


def confirmation(df: Any, metric: str, by: Sequence[str], direction: str) -> Confirmation | None:
    """How the confirmed configurations fare on their fresh seeds (None: none confirmed)."""

    if "phase" not in df or not (df["phase"] == CONFIRM).any():
        return None
    fresh_df = df[df["phase"] == CONFIRM]
    search_df = df[df["phase"].fillna(SEARCH) == SEARCH]
    ids = list(dict.fromkeys(fresh_df["config_id"]))
    search = summarize(search_df[search_df["config_id"].isin(ids)], metric, by)
    fresh = summarize(fresh_df, metric, by)
    keys = ["config_id", *by]
    table = search.merge(fresh, on=keys, suffixes=("_search", "_fresh"), how="right")
    lower = direction == "min"
    table = table.sort_values("mean_fresh", ascending=lower, na_position="last", kind="stable")
    table.insert(0, "rank", range(1, len(table) + 1))
    table["label"] = config_labels(table, by)
    table = table.reset_index(drop=True)
    chosen_row = table.sort_values("mean_search", ascending=lower, kind="stable").iloc[0]
    curse = float(chosen_row["mean_fresh"] - chosen_row["mean_search"])
    pairs = _pairwise(fresh_df, metric, table)
    text = _words(table, pairs, chosen_row, curse, metric, direction)
    return Confirmation(metric, table, pairs, str(chosen_row["label"]), curse, text)


def _pairwise(fresh_df: Any, metric: str, table: Any) -> Any:
    """Welch's test for every pair of confirmed configurations, Holm-corrected."""
    import itertools

    import pandas as pd
    from scipy import stats as st
    from statsmodels.stats.multitest import multipletests

    ok = fresh_df[fresh_df["status"] == "ok"]
    values = {
        c: pd.to_numeric(ok.loc[ok["config_id"] == c, metric], errors="coerce").dropna().to_numpy()
        for c in table["config_id"]
    }
    names = dict(zip(table["config_id"], table["label"], strict=True))
    out = []
    for a, b in itertools.combinations(table["config_id"], 2):
        x, y = values[a], values[b]
        p = math.nan
        if len(x) >= 2 and len(y) >= 2:
            p = float(st.ttest_ind(x, y, equal_var=False).pvalue)
            if math.isnan(p):  # identical runs on both sides
                p = 1.0 if x.mean() == y.mean() else 0.0
        out.append({"a": names[a], "b": names[b], "difference": x.mean() - y.mean(), "p": p})
    frame = pd.DataFrame(out, columns=["a", "b", "difference", "p"])
    tested = frame["p"].notna()
    frame["p_holm"] = math.nan
    if tested.any():
        frame.loc[tested, "p_holm"] = multipletests(frame.loc[tested, "p"], method="holm")[1]
    frame["beyond_noise"] = frame["p_holm"] < ALPHA
    return frame


def _words(
    table: Any, pairs: Any, chosen: Any, curse: float, metric: str, direction: str
) -> list[str]:
    n_fresh = int(table["n_fresh"].max()) if len(table) else 0
    lines = [
        f"On fresh seeds ({n_fresh} runs each, never used by the search), the best of the "
        f"{len(table)} confirmed configurations is {table['label'].iloc[0]} "
        f"({metric} {fmt_num(table['mean_fresh'].iloc[0])})."
    ]
    worse = curse < 0 if direction == "max" else curse > 0
    move = "fell" if worse else "rose"
    lines.append(
        f"Winner's curse: the configuration the search chose, {chosen['label']}, scored "
        f"{fmt_num(chosen['mean_search'])} on its search seeds and "
        f"{fmt_num(chosen['mean_fresh'])} on fresh ones: it {move} by {fmt_num(abs(curse))}."
    )
    if len(pairs):
        top = table["label"].iloc[0]
        vs = pairs[(pairs["a"] == top) | (pairs["b"] == top)]
        beaten = [r.b if r.a == top else r.a for r in vs.itertuples() if r.beyond_noise]
        tied = [r.b if r.a == top else r.a for r in vs.itertuples() if not r.beyond_noise]
        if beaten and not tied:
            lines.append("It beats every other confirmed configuration beyond seed noise (Holm).")
        elif tied:
            p = vs["p_holm"].max()
            lines.append(
                f"It is not distinguishable from {', '.join(tied)} on fresh seeds "
                f"(Holm-corrected Welch, largest {p_text(p) if p == p else 'p n/a'})."
            )
    return lines
