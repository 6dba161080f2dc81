"""The models a sweep keeps (``run --keep-models K``), and reading them back.

After each pack, the kept (best-epoch, else final) weights of every seed and fold of the K
best configurations so far, by the validation objective (``stats.rank_configurations``,
the one ranking), are saved as plain Keras models (``store.kept``'s layout): a stack's
block becomes the ordinary ``Dense`` layers of the trial's own MLP, a branch is saved as it
trained. The runner's process writes them, as it writes the rows, so a pack trained on a
Ray worker sends its weights back with its rows. Files of configurations that leave the top
K are removed; ``max_bytes`` bounds the folder, the lowest-ranked configurations going first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnsweep.definition._checks import KEEP_ALL, check_keep
from nnsweep.definition.sweep import Sweep, Trial
from nnsweep.errors import ResultsError, SweepDefinitionError
from nnsweep.store import kept as _kept
from nnsweep.store.results import (
    DEFAULT_RESULTS,
    SWEEP_JSON,
    TRIALS,
    load_results,
    load_sweep_json,
    results_dir_for,
)


def build_kept(sweep: Sweep, params: Mapping[str, Any], spec: Any, weights: Sequence[Any]) -> Any:
    """The trial's own Keras model (as ``build_model`` makes it, compiled for its task) with
    ``weights``; a multiclass trial's label smoothing is left out of the file's loss."""
    from nnsweep.training.models import build_model, compile_for_task

    model = build_model(sweep.model, params, spec)
    model.set_weights(list(weights))
    compile_for_task(model, params, spec, portable=True)  # plain Keras loads the file
    # Its optimizer as configured, with a fresh state: built, so that loading the file finds
    # the variables it expects (else Keras warns that it skipped them).
    model.optimizer.build(model.trainable_variables)
    return model


@dataclass
class ModelKeeper:
    """Keeps the models of a run's best configurations as their packs come back."""

    folder: Path
    sweep: Sweep
    spec: Any
    info: Mapping[str, Any]  # sweep.json's record: the objective that ranks
    keep: int | str  # how many configurations, or KEEP_ALL
    max_bytes: int | None = None
    saved: int = 0
    removed: int = 0
    over_disk: set[str] = field(default_factory=set)  # configurations --max-model-disk left out
    failed: list[str] = field(default_factory=list)  # "trial_id: why" of files not written
    _pending: dict[str, tuple[Trial, list[Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _kept.remove_temporary(self.folder)  # what a kill during a save left

    def offer(self, trial: Trial, row: Mapping[str, Any], weights: list[Any] | None) -> None:
        """A written row's weights, for the decision once its pack is back."""
        if weights is not None and row.get("status") == "ok":
            self._pending[trial.trial_id] = (trial, weights)

    def pack_done(self) -> None:
        """Save the pack's trials of the configurations kept now; remove what left them."""
        if not self._pending:
            return
        try:
            if self.keep == KEEP_ALL and self.max_bytes is None:
                for trial, weights in self._pending.values():  # no ranking needed
                    self._save(trial, weights)
                return
            order = self._ranked()
            keep = set(order if self.keep == KEEP_ALL else order[: int(self.keep)])
            for trial, weights in self._pending.values():
                if trial.config_id in keep:
                    self._save(trial, weights)
            if self.keep != KEEP_ALL:
                for config in set(_kept.kept_models(self.folder)) - keep:
                    self.removed += _kept.remove_config(self.folder, config)
            self._bound(order)
        finally:
            self._pending.clear()

    def _ranked(self) -> list[str]:
        """Configuration ids, best first, by the sweep's validation objective."""
        from nnsweep.report.stats import rank_configurations

        table = rank_configurations(load_results(self.folder / TRIALS), self.info).table
        return [str(c) for c in table[table["n"] > 0]["config_id"]]

    def _save(self, trial: Trial, weights: list[Any]) -> None:
        path = _kept.model_file(self.folder, trial.config_id, trial.trial_id)
        if path.exists():  # a resumed run, or a pack Ray ran twice: the same weights
            return
        try:
            model = build_kept(self.sweep, trial.params, self.spec, weights)
            _kept.write_atomic(path, lambda temp: model.save(temp))
        except Exception as exc:  # noqa: BLE001 - a full disk, a model Keras cannot save:
            # the rows matter more than the files; the run's summary counts what failed.
            self.failed.append(f"{trial.trial_id}: {type(exc).__name__}: {exc}")
            return
        self.saved += 1

    def _bound(self, order: list[str]) -> None:
        """Remove the lowest-ranked configurations' files until the folder fits."""
        if self.max_bytes is None:
            return
        sizes = _kept.kept_bytes(self.folder)
        total = sum(sizes.values())
        rank = {c: i for i, c in enumerate(order)}
        for config in sorted(sizes, key=lambda c: rank.get(c, len(rank)), reverse=True):
            if total <= self.max_bytes:
                break
            total -= sizes[config]
            self.removed += _kept.remove_config(self.folder, config)
            self.over_disk.add(config)

    def notes(self) -> list[str]:
        """The run summary's lines on the kept models."""
        kept, files, size = _kept.kept_totals(self.folder)
        where = _kept.models_dir(self.folder)
        lines = [
            f"kept models: {files} files of {_kept.plural(len(kept), 'configuration')} in {where} "
            f"({_kept.size_text(size)}; {self.saved} saved, {self.removed} removed in this run)"
        ]
        if self.over_disk:
            lines.append(
                f"warning: --max-model-disk {_kept.size_text(self.max_bytes or 0)} left out "
                f"the models of {_kept.plural(len(self.over_disk), 'configuration')} (the "
                "lowest ranked)"
            )
        if self.failed:
            lines.append(
                f"warning: {len(self.failed)} models could not be saved (the first: "
                f"{self.failed[0]}); their rows are written"
            )
        return lines


def keep_setting(
    sweep: Sweep, keep_models: int | str | None, max_model_disk: int | None
) -> int | str | None:
    """How many configurations' models this run keeps (the option, else the sweep's)."""
    keep = check_keep(keep_models, "--keep-models") if keep_models is not None else None
    keep = keep if keep is not None else sweep.keep_models
    if max_model_disk is not None:
        if keep is None:
            raise SweepDefinitionError(
                "--max-model-disk", "goes with --keep-models (or Sweep(keep_models=...))",
                max_model_disk,
            )  # fmt: skip
        if (
            isinstance(max_model_disk, bool)
            or not isinstance(max_model_disk, int)
            or (max_model_disk < 1)
        ):
            raise SweepDefinitionError("--max-model-disk", "must be a size > 0", max_model_disk)
    return keep


# -- reading them back -------------------------------------------------------------------------


@dataclass(frozen=True)
class KeptModel:
    """A kept model's file and its row in trials.csv."""

    path: Path
    row: dict[str, Any]

    @property
    def trial_id(self) -> str:
        return str(self.row["trial_id"])


def kept_of(
    name_or_path: str | Path,
    *,
    results: str | Path = DEFAULT_RESULTS,
    config_id: str | None = None,
    seed: int | None = None,
    fold: int | None = None,
) -> list[KeptModel]:
    """The kept models of a configuration (default: the best-ranked one with kept models),
    best first by the validation objective; ``seed`` and ``fold`` narrow them."""
    from nnsweep.report.stats import metric_direction, rank_configurations

    folder = results_dir_for(name_or_path, results)
    df = load_results(folder)
    kept = _kept.kept_models(folder)
    if not kept:
        raise ResultsError(
            f"{folder} keeps no models; run the sweep with --keep-models K to keep the K best "
            "configurations' models"
        )
    info = load_sweep_json(folder) if (folder / SWEEP_JSON).exists() else {}
    ranking = rank_configurations(df, info)
    if config_id is None:
        ranked = [str(c) for c in ranking.table["config_id"]]
        config_id = next((c for c in ranked if c in kept), next(iter(kept)))
    elif config_id not in kept:
        raise ResultsError(
            f"configuration {config_id} has no kept models in {folder}; kept: "
            + ", ".join(sorted(kept))
        )
    rows = df[df["trial_id"].isin(kept[config_id])]
    if seed is not None:
        rows = rows[rows["seed"] == seed]
    if fold is not None:
        rows = rows[rows["fold"] == fold]
    if rows.empty:
        raise ResultsError(
            f"configuration {config_id} keeps no model with seed={seed} fold={fold}; kept seeds: "
            + ", ".join(str(s) for s in sorted(df[df["trial_id"].isin(kept[config_id])]["seed"]))
        )
    metric = ranking.metric
    ascending = metric_direction(metric, info) == "min"
    rows = rows.sort_values(metric, ascending=ascending, kind="stable")
    return [KeptModel(kept[config_id][str(r["trial_id"])], r.to_dict()) for _, r in rows.iterrows()]


def load_model(
    name: str | Path,
    config_id: str | None = None,
    seed: int | None = None,
    *,
    fold: int | None = None,
    results: str | Path = DEFAULT_RESULTS,
) -> Any:
    """A kept model as a Keras model: by default the best-ranked configuration's best seed
    by the validation objective (``run --keep-models`` keeps them)."""
    from nnsweep._keras import import_keras

    chosen = kept_of(name, results=results, config_id=config_id, seed=seed, fold=fold)[0]
    return import_keras().models.load_model(chosen.path)


def ensemble(models: Sequence[Any], spec: Any) -> Any:
    """One Keras model averaging ``models``' predictions (probabilities, or values), for
    prediction and evaluation."""
    import keras

    inputs = keras.Input(shape=tuple(spec.input_shape))
    for i, model in enumerate(models):
        model.name = f"member_{i}"  # a functional model's layers need distinct names
    outputs = [m(inputs) for m in models]
    averaged = keras.layers.Average()(outputs) if len(outputs) > 1 else outputs[0]
    model = keras.Model(inputs, averaged, name="ensemble")
    # Compiled to evaluate, not to train on: plain SGD has no state to save (another
    # optimizer unbuilt would make loading the file warn that it skipped its variables).
    model.compile(optimizer=keras.optimizers.SGD(), loss=spec.loss, metrics=[spec.metric])
    return model


def scores_on_test(model: Any, dataset: Any) -> dict[str, float] | None:
    """``model``'s loss and metric on the dataset's test split (None without one)."""
    if dataset.x_test is None or dataset.y_test is None:
        return None
    y = dataset.y_test if dataset.spec.task == "multiclass" else dataset.y_test[:, None]
    scores = model.evaluate(dataset.x_test, y, batch_size=1024, verbose=0, return_dict=True)
    return {f"test_{k}": float(v) for k, v in scores.items()}


__all__ = [
    "KEEP_ALL",
    "KeptModel",
    "ModelKeeper",
    "build_kept",
    "keep_setting",
    "ensemble",
    "kept_of",
    "load_model",
    "scores_on_test",
]
