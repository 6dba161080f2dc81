"""The report's HTML page and its terminal summary, from tables already computed.

One self-contained page (inline CSS, figures by relative path beside it) that reads the
same opened from disk as served: no scripts, no fonts or styles from the network.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from nnsweep.report._plots._common import better_word, label
from nnsweep.report.stats import Verdict, config_labels, fmt_num, fmt_p, fmt_value, search_rows

HTML_ROWS = 50  # configurations in the page's table; the CSV has them all
TEXT_ROWS = 10
FAILED_ROWS = 500

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;
  background:#f6f7f9;margin:0}
main{max-width:1100px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{margin:0 0 4px;font-size:28px}h2{margin:32px 0 8px;font-size:20px;border-bottom:1px solid
  #dde1e8;padding-bottom:4px}
.kicker{color:#6b7385;text-transform:uppercase;letter-spacing:.08em;font-size:12px;margin:0}
.question{font-size:19px;margin:6px 0 2px}.more{color:#4b5366;margin:2px 0}
.verdict{background:#eef4ff;border-left:4px solid #3b6fd8;padding:10px 14px;margin:16px 0}
.verdict p{margin:4px 0}.warn{background:#fff6e5;border-left-color:#e0a100}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{padding:4px 9px;border-bottom:1px solid #e6e9ef;text-align:right;vertical-align:top}
th{background:#f0f2f6;text-align:right}td.l,th.l{text-align:left}
tr.best td{background:#e7f6ea;font-weight:600}tr.near td{background:#f4fbf5}
tr.unstable td.note{color:#b35c00;font-weight:600}
figure{margin:22px 0;padding:0}figure img{max-width:100%;height:auto;border:1px solid #e6e9ef}
figcaption{margin-top:6px;color:#2b3142}figcaption b{color:#1d2330}
dl.def{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:6px 0}
dl.def dt{color:#6b7385}dl.def dd{margin:0}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f0f2f6;padding:1px 4px;
  border-radius:3px}.ok{color:#2f7d32}.bad{color:#b3261e}.small{font-size:12.5px;color:#6b7385}
td.err{max-width:520px;text-align:left;font-family:ui-monospace,monospace;font-size:12px;
  white-space:pre-wrap;word-break:break-word}
"""


@dataclass
class Sections:
    """What the report adds to the ranking when the sweep has it: each None when absent."""

    mixed: list[str] = field(default_factory=list)  # versions that differ between runs
    confirmation: Any = None  # confirm.Confirmation
    seeds: Any = None  # seeds.SeedsAccount
    effects: Any = None  # effects.Effects


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
    out["95% CI"] = [
        "" if lo != lo else f"[{fmt_num(lo)}, {fmt_num(hi)}]"
        for lo, hi in zip(t["ci_low"], t["ci_high"], strict=True)
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
    df = search_rows(df)  # the ranking's runs: confirmation rows are judged apart
    ok = df[(df["status"] == "ok") & df["config_id"].isin(flagged["config_id"])]
    runs = ok.groupby("config_id")[metric].agg(lambda v: ", ".join(fmt_num(x) for x in v))
    names = dict(zip(flagged["config_id"], config_labels(flagged, by), strict=True))
    return [
        f"{names[c]}: runs at {runs.get(c, '')} (std {fmt_num(s)})"
        for c, s in zip(flagged["config_id"], flagged["std"], strict=True)
    ]


def _html_table(frame: Any, left: Sequence[str] = (), row_class: Sequence[str] = ()) -> str:
    cols = list(frame.columns)
    head = "".join(f'<th class="{"l" if c in left else ""}">{escape(str(c))}</th>' for c in cols)
    body = []
    for i, row in enumerate(frame.itertuples(index=False)):  # at most HTML_ROWS/FAILED_ROWS rows
        cls = f' class="{row_class[i]}"' if i < len(row_class) and row_class[i] else ""
        cells = "".join(
            f'<td class="{"l" if c in left else ""}{" note" if c == "note" else ""}'
            f'{" err" if c == "error" else ""}">{escape(str(v))}</td>'
            for c, v in zip(cols, row, strict=True)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _definition(info: Mapping[str, Any]) -> str:
    keys = ("data", "model", "task", "strategy", "seeds", "cv", "objective", "direction")
    items = []
    for k in keys:
        if k in info and info[k] is not None:
            v = info[k]
            if k == "seeds" and isinstance(v, list):
                v = f"{len(v)} ({', '.join(map(str, v))})"
            items.append(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>")
    space = info.get("space") or {}
    swept = set(info.get("swept") or [])
    rows = "".join(
        f'<tr><td class="l"><code>{escape(k)}</code></td><td class="l">'
        f"{escape(json.dumps(v, default=str))}</td><td class='l'>"
        f"{'swept' if k in swept else 'fixed'}</td></tr>"
        for k, v in space.items()
    )
    versions = info.get("versions") or {}
    ver = ", ".join(f"{k} {v}" for k, v in versions.items())
    return (
        f'<dl class="def">{"".join(items)}</dl>'
        + (
            '<table><thead><tr><th class="l">hyperparameter</th><th class="l">value(s)</th>'
            f'<th class="l"></th></tr></thead><tbody>{rows}</tbody></table>'
            if rows
            else ""
        )
        + (
            f'<p class="small">latest run with {escape(ver)} (every run: runs.jsonl)</p>'
            if ver
            else ""
        )
    )


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


def _sections_html(extra: Sections | None, metric: str) -> tuple[str, str]:
    """(HTML after the verdict, HTML sections after the summary) for what the sweep has."""
    if extra is None:
        return "", ""
    notes = ""
    if extra.mixed:
        notes += (
            '<section class="verdict warn"><p><b>Mixed versions.</b> The trials were trained '
            "under different library versions (runs.jsonl): "
            + "; ".join(escape(m) for m in extra.mixed)
            + ". Differences between configurations may come from the versions.</p></section>"
        )
    if extra.seeds is not None:
        notes += f'<section class="verdict"><p>{escape(extra.seeds.text)}</p></section>'
    body = ""
    if extra.effects is not None:
        e = extra.effects
        words = "".join(f"<p>{escape(t)}</p>" for t in e.text)
        body += (
            "<h2>Effects: which hyperparameters matter beyond seed noise</h2>"
            f'<p class="small">seed noise (std): {fmt_num(e.noise_std)}; '
            + (
                "analysis of variance over the grid, seeds as replicates (statsmodels)"
                if e.kind == "anova"
                else "permutation importance of extra trees on the configuration means, "
                "intervals from resampling configurations and seeds (scikit-learn)"
            )
            + f"</p>{words}"
        )
        body += _html_table(_effects_frame(e), left=["effect"])
    c = extra.confirmation
    if c is not None:
        words = "".join(f"<p>{escape(t)}</p>" for t in c.text)
        body += (
            f"<h2>Confirmation on fresh seeds: {escape(label(metric))}</h2>{words}"
            + _html_table(_confirmation_frame(c), left=["configuration"])
        )
        if len(c.pairs):
            body += (
                '<p class="small">every pair on the fresh seeds: Welch\'s t-test, '
                "Holm-corrected for the number of pairs.</p>"
                + _html_table(_pairs_frame(c), left=["a", "b"])
            )
    return notes, body


def _sections_text(extra: Sections | None) -> list[str]:
    if extra is None:
        return []
    lines: list[str] = []
    if extra.seeds is not None:
        lines += ["", extra.seeds.text]
    if extra.effects is not None:
        lines += ["", "effects beyond seed noise:"] + [f"  {t}" for t in extra.effects.text]
    if extra.confirmation is not None:
        frame = _confirmation_frame(extra.confirmation)
        lines += ["", "confirmation on fresh seeds:", frame.to_string(index=False)]
        lines += extra.confirmation.text
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
    """The whole page: question, verdict, summary table, figures, failures, definition."""
    name = str(info.get("name", "sweep"))
    question, more = _question(info)
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
    summary = _html_table(_formatted(shown, by, metric), left=by, row_class=classes)
    if len(table) > HTML_ROWS:
        summary += f'<p class="small">the best {HTML_ROWS} of {len(table)} configurations</p>'
    unstable = _unstable_lines(df, table, by, metric)
    notes, sections = _sections_html(extra, metric)
    figs = "".join(
        f'<figure id="{escape(p.stem)}"><img src="{escape(p.name)}" alt="{escape(title)}">'
        f"<figcaption><b>{escape(title)}.</b> {escape(caption)}.</figcaption></figure>"
        for title, caption, p in figures
    )
    if failed.empty:
        fail_html = '<p class="ok">none: every trial finished ok.</p>'
    else:
        fail_html = _html_table(failed.head(FAILED_ROWS).fillna(""), left=["trial_id", "error"])
        if len(failed) > FAILED_ROWS:
            fail_html += (
                f'<p class="small">first {FAILED_ROWS} of {len(failed)}; see trials.csv</p>'
            )
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>nnsweep report: {escape(name)}</title><style>{_CSS}</style></head><body><main>",
        '<p class="kicker">nnsweep report</p>',
        f"<h1>{escape(name)}</h1>",
        f'<p class="question">{escape(question)}</p>' if question else "",
        f'<p class="more">{escape(more)}</p>' if more else "",
        f'<section class="verdict"><p><b>Verdict.</b> {escape(verdict.text)}</p>',
        f"<p>{escape(_counts(df))}.</p></section>",
        notes,
        '<section class="verdict warn"><p><b>Unstable configurations</b> (runs disagree '
        "wildly):</p>" + "".join(f"<p>{escape(u)}</p>" for u in unstable) + "</section>"
        if unstable
        else "",
        "<h2>Definition</h2>",
        _definition(info),
        f"<h2>Summary: {escape(label(metric))} ({better_word(direction)})</h2>",
        f'<p class="small">per configuration over ok runs (seeds × folds): mean ± std, 95 % '
        f"confidence interval, range; p: Welch's t-test against the best.</p>{summary}",
        sections,
        f"<h2>Figures</h2>{figs or '<p>no figures: nothing varies in this sweep.</p>'}",
        f"<h2>Failed and diverged trials ({len(failed)})</h2>{fail_html}",
        f'<p class="small">written {escape(time.strftime("%Y-%m-%d %H:%M"))} from trials.csv '
        "and history.csv by nnsweep report.</p>",
        "</main></body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


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
