from __future__ import annotations

import pandas as pd
import pytest

from nnsweep import Sweep, run_sweep
from nnsweep.errors import ResultsError
from nnsweep.run.best import best_configuration, params_of, train_best

pytest.importorskip("keras")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    sweep = Sweep(
        name="b",
        space={"hidden_units": [2, 32], "epochs": 3, "learning_rate": 0.01, "batch_size": 64},
        seeds=2,
    )
    run_sweep(sweep, results=results)
    return sweep, results


def test_best_is_chosen_by_the_validation_objective(finished):
    sweep, results = finished
    best = best_configuration("b", results=results)
    df = pd.read_csv(results / "b" / "trials.csv")
    means = df.groupby("hidden_units")["val_accuracy"].mean()
    assert best.metric == "val_accuracy" and best.direction == "max"
    assert best.values == {"hidden_units": means.idxmax()}
    assert best.mean == pytest.approx(means.max())
    assert best.n == 2 and best.ci_low <= best.mean <= best.ci_high
    assert "hidden_units=" in best.describe() and "n=2" in best.describe()
    by_loss = best_configuration("b", results=results, metric="val_loss")
    assert by_loss.direction == "min"


def test_best_params_retrain_and_export(finished, tmp_path):
    import keras

    sweep, results = finished
    best = best_configuration("b", results=results)
    params = params_of(sweep, best.config_id, results)
    assert params["hidden_units"] == best.values["hidden_units"]
    model, test = train_best(sweep, params)
    assert 0.5 < test["test_accuracy"] <= 1.0 and test["test_loss"] > 0
    path = tmp_path / "best.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.count_params() == model.count_params()
    with pytest.raises(ResultsError, match="not in sweep"):
        params_of(sweep, "0000000000")


def test_no_results_is_an_error(tmp_path):
    with pytest.raises(ResultsError, match="no results"):
        best_configuration("none", results=tmp_path)


def test_the_best_of_a_search_is_rebuilt_exactly_from_its_row(tmp_path):
    from nnsweep import Choice, Float

    sweep = Sweep(
        name="s",
        space={"widths": Choice([(8,), (16, 8)]), "dropout": Float(0.0, 0.4), "epochs": 1},
        strategy="random",
        max_trials=3,
    )
    run_sweep(sweep, results=tmp_path)
    best = best_configuration("s", results=tmp_path)
    params = params_of(sweep, best.config_id, tmp_path)
    # The oracle's float survives the trip through the CSV bit for bit, and the tuple
    # comes back from its "16-8" text: the same configuration id, recomputed.
    assert params["widths"] in [(8,), (16, 8)] and 0.0 <= params["dropout"] <= 0.4
    row = pd.read_csv(tmp_path / "s" / "trials.csv", dtype=str)
    row = row[row["config_id"] == best.config_id].iloc[0]
    assert repr(params["dropout"]) == row["dropout"]
