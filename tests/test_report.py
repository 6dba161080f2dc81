"""The report: figures (Agg), captions with numbers, the HTML page, and no Keras import."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: plot_*(ax=None) creates its figure through pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from markupsafe import escape  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from nnsweep.errors import ResultsError  # noqa: E402
from nnsweep.report import (  # noqa: E402
    plot_categorical,
    plot_comparison,
    plot_heatmap,
    plot_learning_curves,
    plot_metric,
    plot_parallel,
    plot_pareto,
    write_comparison,
    write_report,
)
from nnsweep.report._plots.curves import caption_curves, gather_curves  # noqa: E402
from nnsweep.report._plots.heatmap import caption_heatmap, gather_heatmap  # noqa: E402
from nnsweep.report._plots.metric import caption_metric, gather_metric  # noqa: E402
from nnsweep.report._plots.parallel import caption_parallel, gather_parallel  # noqa: E402
from nnsweep.report._plots.pareto import caption_pareto, gather_pareto  # noqa: E402
from nnsweep.store.results import history_columns, load_history, load_results, trial_columns  # noqa: E402

QUICKSTART = Path(__file__).resolve().parent / "data" / "quickstart"
PARAMS = ["hidden_units", "depth", "optimizer", "learning_rate", "batch_size", "epochs"]
# (hidden_units, optimizer) -> test accuracy per seed; adam/4 is planted unstable.
VALUES = {
    (4, "adam"): [0.77, 0.96, 0.95],
    (4, "sgd"): [0.80, 0.81, 0.82],
    (16, "adam"): [0.95, 0.96, 0.97],
    (16, "sgd"): [0.90, 0.91, 0.92],
    (64, "adam"): [0.96, 0.97, 0.98],
    (64, "sgd"): [0.93, 0.94, 0.95],
}
FAILED = {(16, "sgd", 1): ("failed", "ValueError: planted failure")}
DIVERGED = {(64, "sgd", 2): ("diverged", "loss became NaN at epoch 2")}


def make_sweep(root: Path, name: str = "grid", *, model: str = "mlp", scale: float = 0.0) -> Path:
    """A small sweep in the real results format: trials.csv, history.csv, sweep.json."""
    rows, hist = [], []
    bad = {**FAILED, **DIVERGED}
    for (units, opt), values in VALUES.items():
        cid = f"{model}-{units}-{opt}"
        for seed, value in enumerate(values):
            tid = f"{cid}-s{seed}-f0"
            status, error = bad.get((units, opt, seed), ("ok", ""))
            row = {
                "trial_id": tid,
                "config_id": cid,
                "hidden_units": units,
                "depth": 1,
                "optimizer": opt,
                "learning_rate": 0.01,
                "batch_size": 32,
                "epochs": 4,
                "seed": seed,
                "fold": 0,
                "status": status,
                "error": error,
                "epochs_run": 4,
                "n_params": units * 65 + 10,
                "fit_seconds": 1.0 + units / 64 + seed / 10,
                "started_at": "2026-01-01T00:00:00+00:00",
                "finished_at": "2026-01-01T00:00:02+00:00",
                "backend": "tensorflow",
                "pack_size": 3,
                "worker": "test:1",
            }
            if status == "ok":
                v = value + scale
                row |= {
                    "loss": 1 - v,
                    "accuracy": v + 0.01,
                    "val_loss": 1.1 - v,
                    "val_accuracy": v - 0.01,
                    "best_val_accuracy": v,
                    "best_epoch": 3,
                    "test_loss": 1.05 - v,
                    "test_accuracy": v,
                }
                for e in range(1, 5):
                    # validation loss bottoms out at epoch 3
                    val_loss = {1: 2.0, 2: 1.0, 3: 0.5, 4: 0.6}[e] + (1 - v)
                    hist.append(
                        {
                            "trial_id": tid,
                            "config_id": cid,
                            "seed": seed,
                            "fold": 0,
                            "epoch": e,
                            "loss": 2.0 / e,
                            "accuracy": v * e / 4,
                            "val_loss": val_loss,
                            "val_accuracy": v * min(e, 3) / 3,
                        }
                    )
            rows.append(row)
    folder = root / name
    folder.mkdir(parents=True)
    cols = trial_columns(PARAMS, "accuracy", "val_accuracy")
    pd.DataFrame(rows, columns=cols).to_csv(folder / "trials.csv", index=False)
    pd.DataFrame(hist, columns=history_columns("accuracy")).to_csv(
        folder / "history.csv", index=False
    )
    info = {
        "name": name,
        "description": "Does width or optimizer matter more?\nA hand-made table for tests.",
        "data": "digits",
        "model": model,
        "space": {
            "hidden_units": [4, 16, 64],
            "depth": 1,
            "optimizer": ["adam", "sgd"],
            "learning_rate": 0.01,
            "batch_size": 32,
            "epochs": 4,
        },
        "swept": ["hidden_units", "optimizer"],
        "seeds": [0, 1, 2],
        "cv": None,
        "strategy": "grid",
        "objective": "val_accuracy",
        "direction": "max",
        "task": "multiclass",
        "metric": "accuracy",
        "versions": {"nnsweep": "0.1.0"},
    }
    (folder / "sweep.json").write_text(json.dumps(info))
    return folder


@pytest.fixture
def grid(tmp_path: Path) -> Path:
    make_sweep(tmp_path)
    return tmp_path


@pytest.fixture
def quickstart(tmp_path: Path) -> Path:
    if not QUICKSTART.exists():
        pytest.skip("tests/data/quickstart is not in this checkout")
    shutil.copytree(QUICKSTART, tmp_path / "quickstart")
    return tmp_path


def new_ax():
    return Figure().subplots()


# -- the report on real results ---------------------------------------------------------


def test_report_chooses_on_validation_and_shows_test_beside(quickstart: Path) -> None:
    r = write_report("quickstart", results=quickstart)
    assert (r.metric, r.test_metric) == ("val_accuracy", "test_accuracy")
    assert [p.name for p in r.figures][0] == "val_accuracy_vs_hidden_units.png"
    # On validation, 64 units edges out 16 (0.950 vs 0.949); on test, 16 is better (0.960).
    assert r.verdict.text.startswith(
        "Chosen on validation accuracy; the test split is never used to choose. "
        "best validation accuracy: hidden_units=64, 0.950 ± 0.030 (n=3)"
    )
    assert r.verdict.text.endswith(
        "On the test split the chosen configuration scores test accuracy 0.952 ± 0.026."
    )
    header = next(line for line in r.summary_text.splitlines() if line.startswith("rank"))
    assert header.split()[:5] == ["rank", "hidden_units", "n", "val_accuracy", "test_accuracy"]
    assert "0.960 ± 0.0032" in r.summary_text  # 16 units' test score, beside its validation
    page = r.html_path.read_text()
    assert "<th>test_accuracy</th>" in page.replace(' class=""', "")


def test_quickstart_report_states_the_finding_in_numbers(quickstart: Path) -> None:
    r = write_report("quickstart", results=quickstart, metric="test_accuracy")
    assert r.metric == "test_accuracy"
    assert r.html_path == quickstart / "quickstart" / "report" / "index.html"
    names = [p.name for p in r.figures]
    assert names == [
        "test_accuracy_vs_hidden_units.png",
        "test_accuracy_effects.png",
        "learning_curves.png",
        "test_accuracy_vs_n_params.png",
        "test_accuracy_vs_fit_seconds.png",
    ]
    assert all(p.stat().st_size > 10_000 for p in r.figures)
    assert r.captions[0] == (
        "test accuracy rises from 0.815 at 4 units to 0.960 at 16 units, then falls to "
        "0.952 at 64 units; 4 units is worse beyond seed noise (Welch p=0.012); larger "
        "values stay within seed noise of the best"
    )
    assert "validation loss bottoms out at epoch 10 of 10" in r.captions[2]
    assert "hidden_units=16, 0.960 ± 0.0032 (n=3)" in r.verdict.text
    assert "within seed noise (Welch p=0.63)" in r.verdict.text
    assert "9 trials: 9 ok, 0 failed, 0 diverged" in r.summary_text
    assert "How wide must a one-hidden-layer MLP be" in r.summary_text


def test_html_has_question_definition_table_every_figure_and_caption(quickstart: Path) -> None:
    r = write_report("quickstart", results=quickstart, metric="test_accuracy")
    page = r.html_path.read_text()
    assert str(escape("How wide must a one-hidden-layer MLP be on 8×8 digits?")) in page
    assert "<h2>Definition</h2>" in page and "<code>hidden_units</code>" in page
    assert "0.960 ± 0.0032" in page and "[0.952, 0.968]" in page
    for path, caption in zip(r.figures, r.captions, strict=True):
        assert f'src="{path.name}"' in page
        assert str(escape(caption)) in page
    assert "none: every trial finished ok" in page
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched from the network


# -- the report on a hand-made sweep ----------------------------------------------------


def test_grid_report_draws_every_kind_of_figure(grid: Path) -> None:
    r = write_report("grid", results=grid, metric="test_accuracy")
    names = [p.name for p in r.figures]
    assert names == [
        "test_accuracy_vs_hidden_units.png",
        "test_accuracy_by_optimizer.png",
        "test_accuracy_effects.png",
        "learning_curves.png",
        "test_accuracy_by_optimizer_and_hidden_units.png",
        "test_accuracy_vs_n_params.png",
        "test_accuracy_vs_fit_seconds.png",
    ]
    assert all(p.exists() for p in r.figures)
    assert r.captions[1].startswith("optimizer=adam gives the best test accuracy")
    # best configuration (64, adam): epoch-3 minimum of validation loss, then a rise
    assert "validation loss bottoms out at epoch 3 of 4" in r.captions[3]
    assert "overfitting after epoch 3" in r.captions[3]
    assert "best test accuracy at optimizer=adam, 64 units (0.970)" in r.captions[4]


def test_failed_and_diverged_trials_are_listed(grid: Path) -> None:
    r = write_report("grid", results=grid)
    page = r.html_path.read_text()
    failed_section = page[page.index("Failed and diverged trials (2)") :]
    for tid, err in [
        ("mlp-16-sgd-s1-f0", "ValueError: planted failure"),
        ("mlp-64-sgd-s2-f0", "loss became NaN at epoch 2"),
    ]:
        assert tid in failed_section and err in failed_section
        assert f"{tid}" in r.summary_text and err in r.summary_text
    assert "18 trials: 16 ok, 1 failed, 1 diverged" in page


def test_unstable_configuration_is_flagged(grid: Path) -> None:
    r = write_report("grid", results=grid, metric="test_accuracy")
    flagged = r.table.loc[r.table["unstable"], ["hidden_units", "optimizer"]]
    assert flagged.values.tolist() == [[4, "adam"]]
    line = "hidden_units=4, optimizer=adam: runs at 0.770, 0.960, 0.950"
    assert line in r.summary_text
    page = r.html_path.read_text()
    assert "Unstable configurations" in page and line in page


def test_svg_format_and_explicit_metric(grid: Path) -> None:
    r = write_report(grid / "grid", metric="val_loss", fmt="svg")
    assert r.metric == "val_loss"
    assert r.figures[0].name == "val_loss_vs_hidden_units.svg"
    assert r.figures[0].read_text().lstrip().startswith("<?xml")
    assert "(lower is better)" in r.summary_text


def test_bad_input_raises_results_error(grid: Path) -> None:
    with pytest.raises(ResultsError, match=r"no results for .nosuch.*sweeps under .*: grid\)"):
        write_report("nosuch", results=grid)
    with pytest.raises(ResultsError, match=r"'test_f1'.*val_accuracy"):
        write_report("grid", results=grid, metric="test_f1")
    with pytest.raises(ResultsError, match="format must be one of png, svg"):
        write_report("grid", results=grid, fmt="jpg")
    df = load_results("grid", grid)
    with pytest.raises(ResultsError, match=r"'width'.*hidden_units"):
        plot_metric(df, x="width", ax=new_ax())


def test_comparison_overlays_sweeps(tmp_path: Path) -> None:
    make_sweep(tmp_path, "mlp", model="mlp")
    make_sweep(tmp_path, "cnn", model="cnn", scale=0.02)
    path = write_comparison(["mlp", "cnn"], results=tmp_path)
    assert path == tmp_path / "_compare" / "mlp_vs_cnn_test_accuracy_vs_hidden_units.png"
    assert path.exists()
    caption = path.with_suffix(".txt").read_text()
    assert caption.startswith(
        "test accuracy of the configuration chosen on validation accuracy: "
        "cnn 0.990 at 64 units; mlp 0.970 at 64 units"
    )
    with pytest.raises(ResultsError, match="two or more"):
        write_comparison(["mlp"], results=tmp_path)


# -- every figure drawn on its own (notebook use) ---------------------------------------


def test_every_plot_function_draws(grid: Path) -> None:
    df = load_results("grid", grid)
    hist = load_history("grid", grid)
    ax = plot_metric(df, x="hidden_units", ax=new_ax())
    assert ax.get_xscale() == "log" and ax.get_title() == "test accuracy vs hidden_units"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "16", "64"]
    ax = plot_metric(df, x="hidden_units", metric="val_accuracy", hue="optimizer", ax=new_ax())
    assert len(ax.get_lines()) == 2
    ax = plot_categorical(df, x="optimizer", ax=new_ax())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["adam", "sgd"]
    axes = plot_learning_curves(hist, smoothing=0.5, ax=Figure().subplots(1, 2))
    assert len(axes) == 2 and axes[1].get_title().startswith("accuracy")
    ax = plot_heatmap(df, x="hidden_units", y="optimizer", ax=new_ax())
    assert ax.get_title() == "mean test accuracy: optimizer × hidden_units"
    ax = plot_pareto(df, x="n_params", by=["hidden_units", "optimizer"], ax=new_ax())
    assert ax.get_xscale() == "log"
    ax = plot_pareto(df, x="fit_seconds", ax=new_ax())
    assert ax.get_xlabel() == "training time (s)"
    ax = plot_comparison({"a": df, "b": df}, x="hidden_units", ax=new_ax())
    assert ax.get_legend_handles_labels()[1] == ["a", "b"]
    ax = plot_parallel(df, ["hidden_units", "optimizer"], ax=new_ax())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["hidden_units", "optimizer"]
    assert len(ax.get_lines()) == 2 + 6  # the two axes, then a line per configuration


def test_plot_functions_make_their_own_axes(grid: Path) -> None:
    df = load_results("grid", grid)
    ax = plot_metric(df)
    assert ax.figure is plt.gcf()
    axes = plot_learning_curves(load_history("grid", grid), panels=["loss"])
    assert len(axes) == 1
    plt.close("all")


# -- what the figures show, exactly -----------------------------------------------------


def test_metric_caption_on_a_plateau(grid: Path) -> None:
    df = load_results("grid", grid)
    adam = df[df["optimizer"] == "adam"]
    d = gather_metric(adam[adam["hidden_units"] > 4].assign(), "hidden_units", "test_accuracy")
    assert d.marginal["mean"].round(6).tolist() == [0.96, 0.97]
    ok = pd.concat([adam, df[(df["optimizer"] == "sgd") & (df["hidden_units"] == 4)]])
    # Three values, one configuration each: 4/sgd 0.81, 16/adam 0.96, 64/adam 0.97.
    ok = ok[~((ok["optimizer"] == "adam") & (ok["hidden_units"] == 4))]
    d = gather_metric(ok, "hidden_units", "test_accuracy")
    assert caption_metric(d) == (
        "test accuracy rises from 0.810 at 4 units to 0.970 at 64 units; above 16 units the "
        "gain is within seed noise (Welch p=0.29)"
    )


def test_learning_curves_mean_band_smoothing_and_best_epoch() -> None:
    hist = pd.DataFrame(
        {
            "trial_id": ["t0"] * 3 + ["t1"] * 3,
            "config_id": ["c"] * 6,
            "seed": [0] * 3 + [1] * 3,
            "fold": 0,
            "epoch": [1, 2, 3] * 2,
            "loss": [1.0, 0.0, 0.0, 3.0, 2.0, 2.0],
            "mae": [1.0] * 6,
            "val_loss": [4.0, 1.0, 2.0, 6.0, 3.0, 4.0],
            "val_mae": [1.0, 2.0, 3.0, 1.0, 2.0, 3.0],
        }
    )
    d = gather_curves(hist)
    vl = d.curves[d.curves["series"] == "val_loss"].sort_values("epoch")
    assert vl["mean"].tolist() == [5.0, 2.0, 3.0]
    assert vl["high"].tolist() == pytest.approx([5 + 2**0.5, 2 + 2**0.5, 3 + 2**0.5])
    best = d.best.set_index("panel")
    assert best.loc["loss", "epoch"] == 2 and best.loc["mae", "epoch"] == 1
    s = gather_curves(hist, smoothing=0.5)
    tl = s.curves[(s.curves["series"] == "loss")].sort_values("epoch")
    # EMA per run: t0 1, 0.5, 0.25; t1 3, 2.5, 2.25 -> means 2, 1.5, 1.25
    assert tl["mean"].tolist() == pytest.approx([2.0, 1.5, 1.25])
    with pytest.raises(ValueError, match="smoothing"):
        gather_curves(hist, smoothing=1.0)


def _short_history(val_losses: list[float]) -> pd.DataFrame:
    """Two seeds of one configuration, trained for as many epochs as ``val_losses``."""
    n = len(val_losses)
    return pd.DataFrame(
        {
            "trial_id": ["t0"] * n + ["t1"] * n,
            "config_id": ["c"] * 2 * n,
            "seed": [0] * n + [1] * n,
            "fold": 0,
            "epoch": list(range(1, n + 1)) * 2,
            "loss": [0.5] * 2 * n,
            "accuracy": [0.8] * 2 * n,
            "val_loss": val_losses * 2,
            "val_accuracy": [0.9] * 2 * n,
        }
    )


@pytest.mark.parametrize("epochs", [1, 2])
def test_learning_curves_of_one_or_two_epochs_keep_to_whole_epochs(epochs: int) -> None:
    axes = plot_learning_curves(_short_history([0.4, 0.3][:epochs]), ax=Figure().subplots(1, 2))
    for ax in axes:
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks == list(range(1, epochs + 1))  # no 0.96, 0.98, ...: there are no such epochs


def test_learning_curves_caption_claims_no_trend_it_cannot_see() -> None:
    one = caption_curves(gather_curves(_short_history([0.4])))
    assert "the sweep trained one epoch, so there is no curve to judge" in one
    assert "bottoms out" not in one and "more epochs may help" not in one
    assert "peaks at" not in one and "validation accuracy 0.900" in one
    for losses in ([0.4, 0.3], [0.3, 0.4]):  # a single step, down or up
        two = caption_curves(gather_curves(_short_history(losses)))
        assert "two epochs are too few to tell a trend" in two
        assert "still falling" not in two and "overfitting" not in two and "peaks" not in two
    three = caption_curves(gather_curves(_short_history([0.4, 0.3, 0.35])))
    assert "bottoms out at epoch 2 of 3 (0.300) and ends at 0.350: overfitting" in three


def test_pareto_front_and_cheapest_within_noise() -> None:
    df = pd.DataFrame(
        {
            "config_id": list("aabbccdd"),
            "hidden_units": [4, 4, 16, 16, 64, 64, 256, 256],
            "status": "ok",
            "n_params": [100, 100, 400, 400, 1600, 1600, 6400, 6400],
            "test_accuracy": [0.80, 0.82, 0.95, 0.97, 0.94, 0.96, 0.96, 0.98],
        }
    )
    d = gather_pareto(df, "n_params", "test_accuracy", by=["hidden_units"])
    assert d.configs["front"].tolist() == [True, True, False, True]
    assert caption_pareto(d) == (
        "3 of 4 configurations are on the Pareto front; the best, hidden_units=256 (0.970), "
        "costs 6,400 parameters; the cheapest within seed noise of it is hidden_units=16 "
        "(0.960, 400 parameters)"
    )


def test_heatmap_cells_are_means() -> None:
    df = pd.DataFrame(
        {
            "status": "ok",
            "depth": [1, 1, 2, 2, 1],
            "hidden_units": [8, 8, 8, 32, 32],
            "val_loss": [1.0, 3.0, 4.0, 0.5, 1.5],
        }
    )
    d = gather_heatmap(df, "hidden_units", "depth", "val_loss", direction="min")
    assert d.mean.loc["1", "8"] == 2.0 and d.mean.loc["2", "32"] == 0.5
    assert d.count.loc["1", "8"] == 2
    assert caption_heatmap(d) == (
        "best validation loss at 2 layers, 32 units (0.500); worst at 2 layers, 8 units "
        "(4.00); 1–2 runs per cell"
    )


# -- scale, isolation, and the browser --------------------------------------------------


def write_big(root: Path, n: int = 10_000) -> None:
    """A random-search-like sweep of n trials (3 seeds), built with numpy, not a loop."""
    rng = np.random.default_rng(0)
    k = n // 3 + 1
    cfg = pd.DataFrame(
        {
            "config_id": [f"k{i}" for i in range(k)],
            "hidden_units": rng.choice([8, 16, 32, 64, 128, 256, 512, 1024], k),
            "learning_rate": 10 ** rng.uniform(-4, -1, k),
            "optimizer": rng.choice(["adam", "sgd", "rmsprop"], k),
        }
    )
    df = cfg.loc[cfg.index.repeat(3)].reset_index(drop=True).head(n)
    df["seed"] = np.arange(len(df)) % 3
    df["trial_id"] = df["config_id"] + "-s" + df["seed"].astype(str) + "-f0"
    df["fold"], df["epochs_run"], df["best_epoch"], df["phase"] = 0, 3, 3, "search"
    df["status"] = np.where(rng.random(n) < 0.01, "failed", "ok")
    df["error"] = np.where(df["status"] == "ok", "", "RuntimeError: synthetic")
    q = 0.6 + 0.03 * np.log2(df["hidden_units"]) + rng.normal(0, 0.01, n)
    for c in ("loss", "accuracy", "val_loss", "val_accuracy", "best_val_accuracy"):
        df[c] = np.where(df["status"] == "ok", q, np.nan)
    df["test_loss"], df["test_accuracy"] = 1 - df["val_accuracy"], df["val_accuracy"]
    df["n_params"] = df["hidden_units"] * 65 + 10
    df["fit_seconds"] = 1 + rng.random(n)
    for c in ("started_at", "finished_at", "backend", "pack_size", "worker"):
        df[c] = "x"
    folder = root / "big"
    folder.mkdir()
    cols = trial_columns(["hidden_units", "learning_rate", "optimizer"], "accuracy", "val_accuracy")
    df.reindex(columns=cols).to_csv(folder / "trials.csv", index=False)
    ok = df[df["status"] == "ok"]
    h = ok.loc[ok.index.repeat(3), ["trial_id", "config_id", "seed", "fold"]]
    h["epoch"] = np.tile([1, 2, 3], len(ok))
    for c in ("loss", "accuracy", "val_loss", "val_accuracy"):
        h[c] = rng.random(len(h))
    h[history_columns("accuracy")].to_csv(folder / "history.csv", index=False)
    info = {
        "name": "big",
        "swept": ["hidden_units", "learning_rate", "optimizer"],
        "objective": "val_accuracy",
        "direction": "max",
        "metric": "accuracy",
    }
    (folder / "sweep.json").write_text(json.dumps(info))


def test_ten_thousand_trials(tmp_path: Path) -> None:
    write_big(tmp_path)
    r = write_report("big", results=tmp_path)
    assert (
        len(r.table) == 3334
        and r.table["n"].sum() == (load_results("big", tmp_path)["status"] == "ok").sum()
    )
    assert len(r.figures) == 11 and all(p.exists() for p in r.figures)
    page = r.html_path.read_text()
    # Not a grid: importance stands in for the ANOVA, on a random subset of configurations.
    assert r.effects.kind == "importance" and r.effects.beyond == ["hidden_units"]
    assert "a random 400 of the 3,334 configurations" in page
    assert "the best 50 of 3334 configurations" in page
    assert "learning_rate binned into ranges" in page


def test_report_imports_neither_keras_nor_tensorflow(grid: Path) -> None:
    code = (
        "import sys\n"
        "from nnsweep.report import write_report\n"
        f"write_report('grid', results={str(grid)!r})\n"
        "bad = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "assert not bad, bad\n"
        "print('clean')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "clean"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_page_renders_in_chromium(grid: Path, tmp_path: Path) -> None:
    r = write_report("grid", results=grid)
    shot = tmp_path / "page.png"
    subprocess.run(
        [
            "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}", "--window-size=1200,2400", r.html_path.as_uri(),
        ],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    pixels = plt.imread(shot)
    assert pixels.shape[:2] == (2400, 1200)
    assert pixels.std() > 0.05  # text and figures, not a blank page


def test_missing_hyperparameter_value_is_a_category_not_dropped() -> None:
    from nnsweep.report._plots.metric import caption_categorical, gather_categorical

    df = pd.DataFrame(
        {
            "status": "ok",
            "dropout": [np.nan, np.nan, 0.2, 0.2],
            "test_accuracy": [0.90, 0.92, 0.80, 0.82],
        }
    )
    d = gather_categorical(df, "dropout", "test_accuracy")
    assert d.table["dropout"].tolist() == ["None", "0.2"]
    assert d.table["n"].tolist() == [2, 2]
    assert caption_categorical(d).startswith("dropout=None gives the best test accuracy, 0.910")


def test_a_sweep_where_every_trial_failed_still_reports_why(tmp_path: Path) -> None:
    folder = make_sweep(tmp_path, "allfail")
    df = pd.read_csv(folder / "trials.csv")
    df["status"], df["error"] = "failed", "OSError: out of memory"
    df[["loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"]] = np.nan
    df.to_csv(folder / "trials.csv", index=False)
    r = write_report("allfail", results=tmp_path)
    assert r.figures == []
    assert r.verdict.text == "no successful runs"
    assert "no successful trials yet" in r.summary_text
    page = r.html_path.read_text()
    assert "Failed and diverged trials (18)" in page and "OSError: out of memory" in page


def _three_swept(root: Path) -> Path:
    """A 2 x 2 x 2 grid with two seeds: width and dropout matter, the optimizer does not."""
    rows = []
    for units in (8, 128):
        for dropout in (0.0, 0.5):
            for opt in ("adam", "sgd"):
                for seed in (0, 1):
                    acc = 0.8 + (units == 128) * 0.1 - dropout * 0.1 + seed * 0.01
                    rows.append({"trial_id": f"{units}-{dropout}-{opt}-{seed}",
                                 "config_id": f"{units}-{dropout}-{opt}", "hidden_units": units,
                                 "dropout": dropout, "optimizer": opt, "seed": seed, "fold": 0,
                                 "status": "ok", "error": "", "test_accuracy": acc})  # fmt: skip
    folder = root / "three"
    folder.mkdir()
    pd.DataFrame(rows).to_csv(folder / "trials.csv", index=False)
    swept = ["hidden_units", "dropout", "optimizer"]
    info = {"name": "three", "swept": swept, "metric": "accuracy", "objective": "val_accuracy"}
    (folder / "sweep.json").write_text(json.dumps(info))
    return folder


def test_parallel_coordinates_place_each_configuration_by_hand(tmp_path: Path) -> None:
    df = load_results(_three_swept(tmp_path))
    d = gather_parallel(df, ["hidden_units", "dropout", "optimizer"], "test_accuracy")
    assert len(d.mean) == 8 and list(d.runs) == [2] * 8
    # 8 and 128 units are 16x apart: a log axis, ends at 0 and 1; dropout 0 and 0.5 linear.
    assert d.ticks["hidden_units"] == [(0.0, "8"), (1.0, "128")]
    assert d.ticks["dropout"] == [(0.0, "0"), (1.0, "0.5")]
    assert d.ticks["optimizer"] == [(0.0, "adam"), (1.0, "sgd")]
    first = d.positions.iloc[0]  # 8 units, dropout 0, adam: mean of 0.80 and 0.81
    assert list(first) == [0.0, 0.0, 0.0] and d.mean.iloc[0] == pytest.approx(0.805)
    assert caption_parallel(d).startswith("Each of the 8 lines is a configuration")
    assert "the best, hidden_units=128, dropout=0, optimizer=adam, at 0.905 (n=2)" in (
        caption_parallel(d)
    )


def test_the_report_draws_parallel_coordinates_from_three_swept(tmp_path: Path, grid: Path):
    r = write_report(_three_swept(tmp_path), results=tmp_path)
    assert "test_accuracy_parallel.png" in [p.name for p in r.figures]
    assert "parallel coordinates" in r.html_path.read_text()
    two = write_report("grid", results=grid)  # two swept: the heatmap says it all
    assert not any("parallel" in p.name for p in two.figures)


# -- pruned configurations ------------------------------------------------------------------


def make_pruned(root: Path, name: str = "grid") -> Path:
    """The hand-made grid with sgd at 4 units pruned at epoch 1, except its seed 2, which
    stopped early (ok) with the table's best value: a trap for a ranking that counts ok
    rows of a pruned configuration as complete."""
    folder = make_sweep(root, name)
    df = pd.read_csv(folder / "trials.csv")
    hist = pd.read_csv(folder / "history.csv")
    cid = "mlp-4-sgd"
    df["rungs"] = df["rungs"].astype(object)
    df["pruned_by"] = df["pruned_by"].astype(object)
    mine = df["config_id"] == cid
    for i in df.index[mine]:
        if df.at[i, "seed"] == 2:
            df.loc[i, ["val_accuracy", "best_val_accuracy", "epochs_run"]] = [0.999, 0.999, 1]
            continue
        df.loc[i, ["status", "epochs_run", "rungs"]] = ["pruned", 1, "1:pruned"]
        df.loc[i, ["test_loss", "test_accuracy"]] = [np.nan, np.nan]
        df.loc[i, "val_accuracy"] = 0.27
        df.loc[i, "pruned_by"] = (
            "epoch 1: val_accuracy 0.27 (n=2) vs 0.32 (n=3) of leader mlp-64-adam; "
            "one-sided p=0.0001 < 0.005"
        )
    drop = hist["config_id"].eq(cid) & hist["epoch"].gt(1) & ~hist["trial_id"].str.endswith("s2-f0")
    hist[~drop].to_csv(folder / "history.csv", index=False)
    df.to_csv(folder / "trials.csv", index=False)
    info = json.loads((folder / "sweep.json").read_text())
    info["prune"] = {"first": 1, "rungs": "geometric", "alpha": 0.05, "keep": None}
    (folder / "sweep.json").write_text(json.dumps(info))
    return folder


def test_a_pruned_configuration_is_listed_never_ranked(tmp_path: Path) -> None:
    make_pruned(tmp_path)
    result = write_report("grid", results=tmp_path)
    assert "mlp-4-sgd" not in set(result.table["config_id"])
    assert result.verdict.best != "hidden_units=4, optimizer=sgd"
    assert "Pruning stopped 1 of 6 configurations (1 at epoch 1), at a false-prune rate of " \
        "at most 0.05" in result.verdict.text  # fmt: skip
    html = (tmp_path / "grid" / "report" / "index.html").read_text()
    assert "Pruned configurations" in html
    assert "of leader hidden_units=64, optimizer=adam (mlp-64-adam)" in html
    assert "What pruning risks" in html
    # Pruned trials are not failures; the failures section keeps the planted ones only.
    assert "pruned" not in result.summary_text.split("trials did not finish ok")[-1]
    curves = next(c for c in result.captions if "pruned configurations in grey" in c)
    assert "(epoch 1)" in curves
    effects = result.effects
    assert effects is None or any("pruned configurations are left out" in t for t in effects.text)


def test_show_best_confirm_and_diff_never_pick_a_pruned_configuration(tmp_path, capsys):
    from nnsweep.cli import main
    from nnsweep.diff import diff_sweeps
    from nnsweep.run.best import best_configuration
    from nnsweep.run.confirm import top_configs
    from nnsweep.store.results import read_rows

    folder = make_pruned(tmp_path)
    best = best_configuration("grid", results=tmp_path)
    assert best.config_id != "mlp-4-sgd"
    rows = read_rows(folder / "trials.csv")
    assert "mlp-4-sgd" not in top_configs(rows, "val_accuracy", "max", 6)
    make_pruned(tmp_path, "other")
    compared = diff_sweeps("grid", "other", results=tmp_path)
    assert all("hidden_units=4, optimizer=sgd" != c.label for c in compared.configs)
    with pytest.raises(SystemExit) as done:
        main(["show", "grid", "--results", str(tmp_path)])
    assert done.value.code == 0
    out = capsys.readouterr().out
    best_block = out.split("Pruning stopped")[0]
    assert "0.9990" not in best_block  # the trap row is not ranked
    assert "Pruning stopped 1 of 6 configurations" in out
    assert "hidden_units=4, optimizer=sgd: epoch 1: val_accuracy 0.27 (n=2) vs" in out


def test_an_older_table_reads_with_empty_pruning_columns(tmp_path: Path) -> None:
    folder = make_sweep(tmp_path)
    df = pd.read_csv(folder / "trials.csv").drop(columns=["rungs", "pruned_by", "phase"])
    df.to_csv(folder / "trials.csv", index=False)
    back = load_results(folder)
    cols = list(back.columns)
    assert cols.index("phase") == cols.index("fold") + 1
    assert cols.index("rungs") == cols.index("epochs_run") + 1
    assert back["rungs"].isna().all() and (back["phase"] == "search").all()


def test_each_section_left_out_says_why_on_the_page_and_in_the_summary(tmp_path):
    folder = make_sweep(tmp_path, "search")
    info = json.loads((folder / "sweep.json").read_text())
    (folder / "sweep.json").write_text(json.dumps({**info, "strategy": "random"}))
    (folder / "history.csv").unlink()
    result = write_report("search", results=tmp_path)
    page = result.html_path.read_text()
    lines = [
        "Effects: left out, a search needs at least 8 configurations (this one has 6)",
        "Parallel coordinates: left out, it needs three swept hyperparameters that vary "
        "(this sweep varies 2 (hidden_units, optimizer))",
        "Learning curves: left out, the results folder has no history.csv",
        "Confirmation on fresh seeds: left out, no rows of nnsweep confirm",
        "Pruned configurations: left out, the sweep does not prune",
        "Adaptive seeds: left out, every configuration trains on the same fixed seeds",
    ]
    for line in lines:
        assert str(escape(line)) in page, line
        assert any(left.startswith(line) for left in result.left_out), line
    assert "<h2>Effects" not in page and "Heatmaps: left out" not in page
    assert "  Effects: a search needs at least 8 configurations (this one has 6)" in (
        result.summary_text
    )
    assert "Learning curves" not in result.summary_text  # the terminal draws no figures
    # A grid of the same rows has its effects: no line says they are left out.
    grid = write_report(make_sweep(tmp_path / "g"), results=tmp_path / "g")
    assert grid.effects is not None and not any("Effects" in s for s in grid.left_out)


def test_learning_curve_bands_and_the_effects_band_stay_inside_the_metrics_range():
    """Issue 24, item 2: a ± std band of an accuracy stops at 1, of a loss at 0."""
    from nnsweep.report._plots.effects import EffectsData, _band

    hist = pd.DataFrame(
        {
            "trial_id": ["a", "a", "b", "b"],
            "config_id": "c",
            "seed": [0, 0, 1, 1],
            "fold": 0,
            "epoch": [1, 2, 1, 2],
            "loss": [0.1, 0.05, 2.0, 1.5],
            "accuracy": [0.99, 1.0, 0.5, 0.6],
            "val_loss": [0.1, 0.05, 2.0, 1.5],
            "val_accuracy": [0.99, 1.0, 0.5, 0.6],
        }
    )
    c = gather_curves(hist).curves
    for series, (lo, hi) in (("val_accuracy", (0, 1)), ("val_loss", (0, np.inf))):
        band = c[c["series"] == series]
        assert (band["low"] >= lo).all() and (band["high"] <= hi).all(), band
        assert ((band["mean"] + band["std"] > hi) | (band["mean"] - band["std"] < lo)).any()
    data = EffectsData("anova", "val_accuracy", "max", noise_std=0.2, grand_mean=0.95, shown=[])
    assert _band(data) == (0.75, 1.0)
