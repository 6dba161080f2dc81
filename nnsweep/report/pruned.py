"""The report's account of pruning: which configurations stopped, where, and why.

A pruned configuration's numbers are of the epoch it stopped at, so it is never ranked
beside configurations trained to the end (``stats.ranked_rows``); it is listed here with
its rung, its value there and the evidence that stopped it (``trials.csv``'s
``pruned_by``), and the verdict says how many stopped at what false-prune rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nnsweep.report.stats import config_labels, search_rows


@dataclass(frozen=True)
class PrunedAccount:
    """Pruned configurations (one row each: rung, value there, evidence) and the rule."""

    table: Any  # config_id, label, epoch, n, mean, evidence; by rung, then value
    rule: Mapping[str, Any] | None  # sweep.json's "prune" (None: hyperband or unknown)
    configurations: int  # configurations in the search, pruned or not
    metric: str
    strategy: str = "grid"

    @property
    def stops(self) -> dict[int, int]:
        """Pruned configurations per rung epoch."""
        return {int(e): int(n) for e, n in self.table.groupby("epoch").size().items()}

    @property
    def headline(self) -> str:
        """One sentence for the verdict."""
        where = ", ".join(f"{n} at epoch {e}" for e, n in sorted(self.stops.items()))
        n = len(self.table)
        rate = ""
        if self.strategy == "hyperband":
            rate = "; by hyperband's successive halving (Keras Tuner's brackets, factor 3)"
        elif self.rule and self.rule.get("alpha") is not None:
            rate = f", at a false-prune rate of at most {self.rule['alpha']:g}"
            if self.rule.get("keep"):
                rate = (
                    f"; successive halving kept the top {self.rule['keep']:g} at each rung "
                    f"(alpha {self.rule['alpha']:g} per comparison)"
                )
        return (
            f"Pruning stopped {n} of {self.configurations} configurations ({where}){rate}; "
            "they are listed apart, not ranked: their numbers are of the epoch they stopped at."
        )

    @property
    def text(self) -> list[str]:
        """The section's words: the headline, the risk, one line per pruned configuration."""
        lines = [self.headline, RISK]
        for r in self.table.head(20).itertuples(index=False):
            lines.append(f"{r.label}: {r.evidence}")  # the evidence names epoch and values
        if len(self.table) > 20:
            lines.append(f"... and {len(self.table) - 20} more (trials.csv, column pruned_by)")
        return lines


RISK = (
    "What pruning risks: a configuration that learns slowly but would end best. The test "
    "bounds pruning on seed noise, not that; the first rung (Prune(first=...)) does, since "
    "nothing is judged before it."
)


def _named(evidence: str, names: Mapping[str, str]) -> str:
    """``evidence`` with its leader's id followed by the leader's values."""
    head, sep, rest = evidence.partition("of leader ")
    if not sep:
        return evidence
    cid, _, tail = rest.partition(";")
    cid = cid.strip()
    label = names.get(cid)
    return f"{head}{sep}{label} ({cid});{tail}" if label else evidence


def pruned_account(df: Any, swept: Sequence[str], info: Mapping[str, Any]) -> PrunedAccount | None:
    """The pruned configurations of a trials table's search rows (None when none is)."""
    rows = search_rows(df)
    if "status" not in rows or not (rows["status"] == "pruned").any():
        return None
    import pandas as pd

    metric = str(info.get("objective") or "val_accuracy")
    stopped = rows[rows["status"] == "pruned"].copy()
    stopped["_value"] = pd.to_numeric(stopped.get(metric), errors="coerce")
    by = [c for c in swept if c in stopped.columns]
    first = stopped.groupby("config_id", sort=False).first()
    table = (
        stopped.groupby("config_id", sort=False)
        .agg(epoch=("epochs_run", "min"), n=("_value", "count"), mean=("_value", "mean"))
        .reset_index()
    )
    for k in by:
        table[k] = [first.loc[c, k] for c in table["config_id"]]
    table["label"] = config_labels(table, by)
    # The leader by its values as well as its id: "of leader hidden_units=512 (bac6c5b349)".
    every = rows.groupby("config_id", sort=False).first().reset_index()
    names = dict(zip(every["config_id"], config_labels(every, by), strict=True))
    table["evidence"] = [_named(str(first.loc[c, "pruned_by"]), names) for c in table["config_id"]]
    ascending = info.get("direction") == "min"
    table = table.sort_values(["epoch", "mean"], ascending=[True, ascending], kind="stable")
    return PrunedAccount(
        table.reset_index(drop=True),
        info.get("prune"),
        int(rows["config_id"].nunique()),
        metric,
        str(info.get("strategy") or "grid"),
    )
