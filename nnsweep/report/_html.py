"""The report's HTML page and its terminal summary, from tables already computed.

One self-contained page (inline CSS, figures by relative path beside it) that reads the
same opened from disk as served: no scripts, no fonts or styles from the network. The page
is a Jinja2 template (``templates/report.html.j2``); this module gives it text only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from nnsweep.report._plots._common import better_word, label
from nnsweep.report.stats import Verdict, config_labels, fmt_num, fmt_p, fmt_value, ranked_rows

HTML_ROWS = 50  # configurations in the page's table; the CSV has them all
TEXT_ROWS = 10
FAILED_ROWS = 500


@dataclass
class Sections:
    """What the report adds to the ranking when the sweep has it: each None when absent."""

    mixed: list[str] = field(default_factory=list)  # versions that differ between runs
    confirmation: Any = None  # confirm.Confirmation
    seeds: Any = None  # seeds.SeedsAccount
    effects: Any = None  # effects.Effects
    pruned: Any = None  # pruned.PrunedAccount
    kept: str = ""  # which configurations have kept models (``run --keep-models``)
    # (section, why) for each section or figure the report leaves out (``_left_out``).
    left_out: list[tuple[str, str]] = field(default_factory=list)


# The sections the terminal summary shows, so the only ones whose absence it explains.
TEXT_SECTIONS = ("Effects", "Confirmation on fresh seeds", "Pruned configurations",
                 "Adaptive seeds")  # fmt: skip


def _counts(df: Any) -> str:
    if "status" not in df:
        return f"{len(df)} trials"
    counts = df["status"].value_counts()
    parts = [f"{int(counts.get(s, 0))} {s}" for s in ("ok", "failed", "diverged")]
    parts += [f"{int(n)} {s}" for s, n in counts.items() if s not in ("ok", "failed", "diverged")]
    return f"{len(df)} trials: " + ", ".join(parts)


def _question(info: Mapping[str, Any]) -> tuple[str, str]:
    text = (info.get("description") or "").strip()
    first, _, rest = text.partition("\n")
    return first.strip(), rest.strip()


def _formatted(table: Any, by: Sequence[str], metric: str) -> Any:
    """The ranked table as strings: one row per configuration, noise and flags in words."""
    import pandas as pd

    t = table
    out = pd.DataFrame({"rank": [str(r) for r in t["rank"]]}, dtype=object)
    for k in by:
        out[k] = [fmt_value(v) for v in t[k]]
    out["n"] = [str(n) for n in t["n"]]
    out[metric] = [
        fmt_num(m) + ("" if s != s else f" ± {fmt_num(s)}")
        for m, s in zip(t["mean"], t["std"], strict=True)
    ]
    test_metric = t.attrs.get("test_metric")
    if test_metric and "test_mean" in t:
        out[test_metric] = [
            fmt_num(m) + ("" if s != s else f" ± {fmt_num(s)}")
            for m, s in zip(t["test_mean"], t["test_std"], strict=True)
        ]
    # An interval cut at its metric's range says so (a few seeds of an unstable run).
    clipped = t["ci_clipped"] if "ci_clipped" in t else [False] * len(t)
    out["95% CI"] = [
        "" if lo != lo else f"[{fmt_num(lo)}, {fmt_num(hi)}]" + (" (cut at the range)" if c else "")
        for lo, hi, c in zip(t["ci_low"], t["ci_high"], clipped, strict=True)
    ]
    out["range"] = [f"{fmt_num(a)}–{fmt_num(b)}" for a, b in zip(t["min"], t["max"], strict=True)]
    out["p vs best"] = [
        "" if p != p or r == 1 else fmt_p(p) for p, r in zip(t["p_vs_best"], t["rank"], strict=True)
    ]
    notes = []
    for r, w, u, n in zip(
        t["rank"], t["within_noise"].fillna(False), t["unstable"], t["n"], strict=True
    ):  # one per configuration shown: at most HTML_ROWS
        words = ["best" if r == 1 else "within noise" if w else ""] + (["unstable"] if u else [])
        notes.append("no ok runs" if n == 0 else " ".join(x for x in words if x))
    out["note"] = notes
    return out


def _unstable_lines(df: Any, table: Any, by: Sequence[str], metric: str) -> list[str]:
    """'hidden_units=64: 0.77, 0.96, 0.95' for each configuration flagged unstable."""
    flagged = table[table["unstable"]]
    if flagged.empty or "config_id" not in df:
        return []
    df = ranked_rows(df)  # the ranking's runs: confirmation and pruned rows are apart
    ok = df[(df["status"] == "ok") & df["config_id"].isin(flagged["config_id"])]
    runs = ok.groupby("config_id")[metric].agg(lambda v: ", ".join(fmt_num(x) for x in v))
    names = dict(zip(flagged["config_id"], config_labels(flagged, by), strict=True))
    return [
        f"{names[c]}: runs at {runs.get(c, '')} (std {fmt_num(s)})"
        for c, s in zip(flagged["config_id"], flagged["std"], strict=True)
    ]


def _table(frame: Any, left: Sequence[str] = (), classes: Sequence[str] = ()) -> dict:
    """A table for the template: its columns, rows as text, left-aligned columns, row classes."""
    rows = [[str(v) for v in row] for row in frame.itertuples(index=False)]
    return {
        "columns": [str(c) for c in frame.columns],
        "rows": rows,
        "left": list(left),
        "classes": list(classes) + [""] * (len(rows) - len(classes)),
    }


def _definition(info: Mapping[str, Any]) -> dict[str, Any]:
    """The sweep as it was defined: settings, each hyperparameter, the latest versions."""
    keys = ("data", "model", "task", "strategy", "seeds", "cv", "objective", "direction")
    items = []
    for k in (*keys, "metrics"):
        if info.get(k) not in (None, []):
            v = info[k]
            if k == "seeds" and isinstance(v, list):
                v = f"{len(v)} ({', '.join(map(str, v))})"
            if k == "metrics":  # the added ones, beside the task's own
                v = ", ".join(map(str, v))
            items.append((k, str(v)))
    swept = set(info.get("swept") or [])
    space = [
        (k, json.dumps(v, default=str), "swept" if k in swept else "fixed")
        for k, v in (info.get("space") or {}).items()
    ]
    versions = ", ".join(f"{k} {v}" for k, v in (info.get("versions") or {}).items())
    return {"definition": items, "space": space, "versions": versions}


def _pm(mean: Any, std: Any) -> str:
    return fmt_num(mean) + ("" if std != std else f" ± {fmt_num(std)}")


def _confirmation_frame(c: Any) -> Any:
    """The confirmed configurations as strings: fresh seeds first, search seeds beside."""
    import pandas as pd

    t = c.table
    return pd.DataFrame(
        {
            "rank": [str(r) for r in t["rank"]],
            "configuration": list(t["label"]),
            "fresh seeds": [
                f"{_pm(m, s)} (n={int(n)})"
                for m, s, n in zip(t["mean_fresh"], t["std_fresh"], t["n_fresh"], strict=True)
            ],
            "search seeds": [
                f"{_pm(m, s)} (n={int(n)})" if n == n else ""
                for m, s, n in zip(t["mean_search"], t["std_search"], t["n_search"], strict=True)
            ],
            "change": [
                fmt_num(f - m) for f, m in zip(t["mean_fresh"], t["mean_search"], strict=True)
            ],
        },
        dtype=object,
    )


def _pairs_frame(c: Any) -> Any:
    p = c.pairs
    return p.assign(
        difference=[fmt_num(x) for x in p["difference"]],
        p=["" if x != x else fmt_p(x) for x in p["p"]],
        p_holm=["" if x != x else fmt_p(x) for x in p["p_holm"]],
        beyond_noise=["yes" if b else "no" for b in p["beyond_noise"]],
    ).rename(columns={"p_holm": "p (Holm)", "beyond_noise": "beyond noise"})


def _effects_frame(e: Any) -> Any:
    """The effects table as strings: share in %, tests or intervals, size against noise."""
    t = e.table()
    out = t[["effect"]].astype(str)
    out["share of variance" if e.kind == "anova" else "share of importance"] = [
        f"{100 * x:.1f} %" for x in t["share"]
    ]
    if e.kind == "anova":
        out["F"] = [fmt_num(x) for x in t["F"]]
        out["p (Holm)"] = ["" if x != x else fmt_p(x) for x in t["p_holm"]]
    else:
        out["importance [95% interval]"] = [
            f"{fmt_num(m)} [{fmt_num(lo)}, {fmt_num(hi)}]"
            for m, lo, hi in zip(t["importance"], t["low"], t["high"], strict=True)
        ]
    out["span of means"] = [fmt_num(x) for x in t["effect_size"]]
    out["× seed noise"] = [fmt_num(x) for x in t["effect_vs_noise"]]
    out["beyond noise"] = ["yes" if b else "no" for b in t["beyond_noise"]]
    return out


def _sections(extra: Sections | None) -> dict[str, Any]:
    """What the sweep has besides its ranking, for the template (each empty when absent)."""
    out: dict[str, Any] = {
        "mixed": [],
        "seeds": "",
        "effects": None,
        "confirmation": None,
        "pruned": None,
        "left_out": [],
        "kept": "",
    }
    if extra is None:
        return out
    out["left_out"] = [f"{section}: left out, {why}" for section, why in extra.left_out]
    out["mixed"] = list(extra.mixed)
    out["kept"] = extra.kept
    out["seeds"] = extra.seeds.text if extra.seeds is not None else ""
    e = extra.effects
    if e is not None:
        out["effects"] = {
            "noise": fmt_num(e.noise_std),
            "method": "analysis of variance over the grid, seeds as replicates (statsmodels)"
            if e.kind == "anova"
            else "permutation importance of extra trees on the configuration means, "
            "intervals from resampling configurations and seeds (scikit-learn)",
            "text": list(e.text),
            "table": _table(_effects_frame(e), left=["effect"]),
        }
    if extra.pruned is not None:
        out["pruned"] = {
            "text": extra.pruned.text[:2],
            "table": _table(_pruned_frame(extra.pruned), left=["configuration", "evidence"]),
        }
    c = extra.confirmation
    if c is not None:
        out["confirmation"] = {
            "text": list(c.text),
            "table": _table(_confirmation_frame(c), left=["configuration"]),
            "pairs": _table(_pairs_frame(c), left=["a", "b"]) if len(c.pairs) else None,
        }
    return out


def _pruned_frame(p: Any) -> Any:
    """Pruned configurations as strings: where each stopped, its value, the evidence."""
    import pandas as pd

    t = p.table
    return pd.DataFrame(
        {
            "configuration": list(t["label"]),
            "stopped at epoch": [str(int(e)) for e in t["epoch"]],
            p.metric: [
                f"{fmt_num(m)} (n={int(n)})" for m, n in zip(t["mean"], t["n"], strict=True)
            ],
            "evidence": list(t["evidence"]),
        },
        dtype=object,
    )


def _sections_text(extra: Sections | None) -> list[str]:
    if extra is None:
        return []
    lines: list[str] = []
    if extra.pruned is not None:
        lines += ["", "pruned (listed, not ranked):"] + [f"  {t}" for t in extra.pruned.text[1:]]
    if extra.seeds is not None:
        lines += ["", extra.seeds.text]
    if extra.effects is not None:
        lines += ["", "effects beyond seed noise:"] + [f"  {t}" for t in extra.effects.text]
    if extra.confirmation is not None:
        frame = _confirmation_frame(extra.confirmation)
        lines += ["", "confirmation on fresh seeds:", frame.to_string(index=False)]
        lines += extra.confirmation.text
    left_out = [(s, why) for s, why in extra.left_out if s in TEXT_SECTIONS]
    if left_out:
        lines += ["", "left out:"] + [f"  {s}: {why}" for s, why in left_out]
    return lines


def render_html(
    info: Mapping[str, Any],
    df: Any,
    table: Any,
    verdict: Verdict,
    by: Sequence[str],
    metric: str,
    direction: str,
    figures: Sequence[tuple[str, str, Path]],
    failed: Any,
    extra: Sections | None = None,
) -> str:
    """The whole page from ``templates/report.html.j2``: question, verdict, definition,
    summary table, the sweep's other sections, figures, failures."""
    shown = table.head(HTML_ROWS)
    classes = [
        ("best" if r == 1 else "near" if w else "") + (" unstable" if u else "")
        for r, w, u in zip(
            shown["rank"],
            shown["within_noise"].fillna(False).astype(bool),
            shown["unstable"],
            strict=True,
        )
    ]
    question, more = _question(info)
    return _template().render(
        name=str(info.get("name", "sweep")),
        question=question,
        more=more,
        verdict=verdict.text,
        counts=_counts(df),
        unstable=_unstable_lines(df, table, by, metric),
        metric_label=label(metric),
        better=better_word(direction),
        summary=_table(_formatted(shown, by, metric), left=by, classes=classes),
        hidden=len(table) if len(table) > HTML_ROWS else 0,
        figures=[
            {"id": p.stem, "src": p.name, "title": title, "caption": caption}
            for title, caption, p in figures
        ],
        n_failed=len(failed),
        failed=None
        if failed.empty
        else _table(failed.head(FAILED_ROWS).fillna(""), left=["trial_id", "error"]),
        written=time.strftime("%Y-%m-%d %H:%M"),
        **_definition(info),
        **_sections(extra),
    )


@cache
def _template() -> Any:
    """The page's Jinja2 template (autoescaped: every value is text, never markup)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("nnsweep.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.globals["zip"] = zip
    return env.get_template("report.html.j2")


def summary_text(
    info: Mapping[str, Any],
    df: Any,
    table: Any,
    verdict: Verdict,
    by: Sequence[str],
    metric: str,
    direction: str,
    failed: Any,
    extra: Sections | None = None,
) -> str:
    """The terminal version: counts, the best configurations, the verdict, what failed."""
    name = str(info.get("name", "sweep"))
    question, _ = _question(info)
    lines = [f"{name}: {_counts(df)}"]
    if question:
        lines.append(question)
    lines.append("")
    if table.empty or (table["n"] == 0).all():
        lines.append("no successful trials yet")
    else:
        lines.append(
            f"best configurations by {metric} ({better_word(direction)}), "
            "mean ± std over seeds and folds:"
        )
        shown = _formatted(table.head(TEXT_ROWS), by, metric).drop(columns=["range"])
        lines.append(shown.to_string(index=False))
        if len(table) > TEXT_ROWS:
            lines.append(f"... {len(table) - TEXT_ROWS} more configurations in the report")
        lines += ["", verdict.text]
    lines += _sections_text(extra)
    if extra is not None and extra.kept:
        lines += ["", extra.kept]
    unstable = _unstable_lines(df, table, by, metric)
    if unstable:
        lines.append("unstable (runs disagree wildly):")
        lines += [f"  {u}" for u in unstable]
    if not failed.empty:
        lines.append(f"{len(failed)} trials did not finish ok:")
        for row in failed.head(TEXT_ROWS).itertuples(index=False):  # at most TEXT_ROWS
            r = row._asdict()
            lines.append(f"  {r.get('trial_id', '')} {r.get('status', '')}: {r.get('error', '')}")
        if len(failed) > TEXT_ROWS:
            lines.append(f"  ... and {len(failed) - TEXT_ROWS} more (listed in the report)")
    return "\n".join(lines)
