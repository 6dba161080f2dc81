"""The report's account of ``nnsweep confirm``: the confirmed configurations ranked on
their fresh seeds alone, with Holm-corrected pairwise Welch tests (SciPy, statsmodels),
and the winner's curse: how far the chosen configuration's score moved from its search
seeds to the fresh ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nnsweep.report.stats import (
    ALPHA,
    CONFIRM,
    SEARCH,
    config_labels,
    fmt_num,
    holm,
    p_text,
    rank_configurations,
    summarize,
    welch,
)


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
    # The search's choice: of the confirmed configurations, the one the report ranks first.
    order = rank_configurations(df, metric=metric, by=by, direction=direction).table
    confirmed = set(ids)
    first = next((c for c in order["config_id"] if c in confirmed), ids[0])
    chosen_row = table[table["config_id"] == first].iloc[0]
    curse = float(chosen_row["mean_fresh"] - chosen_row["mean_search"])
    pairs = _pairwise(fresh_df, metric, table)
    text = _words(table, pairs, chosen_row, curse, metric, direction)
    return Confirmation(metric, table, pairs, str(chosen_row["label"]), curse, text)


def _pairwise(fresh_df: Any, metric: str, table: Any) -> Any:
    """Welch's test for every pair of confirmed configurations, Holm-corrected."""
    import itertools

    import pandas as pd

    ok = fresh_df[fresh_df["status"] == "ok"]
    values = {
        c: pd.to_numeric(ok.loc[ok["config_id"] == c, metric], errors="coerce").dropna().to_numpy()
        for c in table["config_id"]
    }
    names = dict(zip(table["config_id"], table["label"], strict=True))
    out = []
    for a, b in itertools.combinations(table["config_id"], 2):
        x, y = values[a], values[b]
        p = welch(x, y).p  # NaN with fewer than two runs on a side
        out.append({"a": names[a], "b": names[b], "difference": x.mean() - y.mean(), "p": p})
    frame = pd.DataFrame(out, columns=["a", "b", "difference", "p"])
    frame["p_holm"] = holm(frame["p"])
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
