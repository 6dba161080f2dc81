"""Built-in model families (``mlp``, ``cnn``), optimizers, and compiling for a task.

Keras is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nnsweep.data import DataSpec
from nnsweep.definition import params as _params
from nnsweep.errors import DataError, TrialError

# The Keras class of each optimizer name a sweep may give.
OPTIMIZER_CLASSES = {
    "sgd": "SGD",
    "nesterov": "SGD",
    "rmsprop": "RMSprop",
    "adam": "Adam",
    "adamw": "AdamW",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
    "adamax": "Adamax",
    "nadam": "Nadam",
    "ftrl": "Ftrl",
    "lion": "Lion",
}


def check_compatible(model: Any, spec: DataSpec) -> None:
    """Refuse a model family that cannot take this data, before any training."""
    families = {f for f, _ in model.values()} if isinstance(model, Mapping) else {model}
    if "cnn" in families and len(spec.input_shape) not in (2, 3):
        raise DataError(
            f"model 'cnn' needs image inputs (height, width[, channels]); "
            f"dataset {spec.name!r} has input shape {spec.input_shape}"
        )


def build_model(model: Any, params: Mapping[str, Any], spec: DataSpec) -> Any:
    """An uncompiled ``keras.Model`` for one trial's parameters (``model``: a family, a
    build function, or a sweep's named models)."""
    import keras

    model = _params.family(model, params)
    if callable(model):
        try:
            built = model(dict(params), spec)
        except Exception as exc:
            raise TrialError(f"build() raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(built, keras.Model):
            raise TrialError(f"build() must return a keras.Model, got {type(built).__name__}")
        _check_outputs(built, spec)
        return built
    p = _params.resolve(params, model)
    inputs = keras.Input(shape=spec.input_shape)
    x = _mlp_body(keras, inputs, p) if model == "mlp" else _cnn_body(keras, inputs, p, spec)
    outputs = keras.layers.Dense(spec.output_units, activation=_output_activation(spec))(x)
    return keras.Model(inputs, outputs, name=model)


def _output_shapes(model: Any, spec: DataSpec) -> list[tuple[Any, ...]]:
    """A custom model's output shapes; one built without ``keras.Input`` (a Sequential of
    layers, a subclassed model) is built here from the data's known input shape."""
    import keras

    try:
        return [tuple(t.shape) for t in model.outputs]
    except AttributeError:
        pass  # no inputs were declared: the data says what they are
    shape = (None, *spec.input_shape)
    try:
        model.build(shape)
        if isinstance(model, keras.Sequential):
            return [tuple(t.shape) for t in model.outputs]
        out = model.compute_output_spec(keras.KerasTensor(shape))
    except Exception as exc:
        raise TrialError(
            f"build() returns a model that cannot be built for inputs of shape {shape} "
            f"({type(exc).__name__}: {exc}); start it with keras.Input(spec.input_shape)"
        ) from exc
    return [tuple(t.shape) for t in keras.tree.flatten(out)]


def _check_outputs(model: Any, spec: DataSpec) -> None:
    """A custom model's output must fit the task's loss: say so before training, rather
    than with TensorFlow's shape error from inside the first step."""
    shapes = _output_shapes(model, spec)
    want = spec.output_units
    what = "one per class" if spec.task == "multiclass" else f"for a {spec.task} target"
    if len(shapes) != 1 or len(shapes[0]) != 2 or shapes[0][1] != want:
        got = ", ".join(str(s) for s in shapes)
        raise TrialError(
            f"build() returns a model with output shape {got}; the {spec.task} task of "
            f"{spec.name} needs (None, {want}): {want} unit{'s' if want > 1 else ''} {what}"
        )


def _output_activation(spec: DataSpec) -> str:
    return {"multiclass": "softmax", "binary": "sigmoid", "regression": "linear"}[spec.task]


def _dense_block(keras: Any, x: Any, units: int, p: Mapping[str, Any]) -> Any:
    reg = keras.regularizers.L1L2(l1=p["l1"], l2=p["l2"]) if p["l1"] or p["l2"] else None
    if p["batch_norm"]:
        x = keras.layers.Dense(
            units, kernel_initializer=p["kernel_initializer"], kernel_regularizer=reg
        )(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation(p["activation"])(x)
    else:
        x = keras.layers.Dense(
            units,
            activation=p["activation"],
            kernel_initializer=p["kernel_initializer"],
            kernel_regularizer=reg,
        )(x)
    if p["dropout"]:
        x = keras.layers.Dropout(p["dropout"])(x)
    return x


def mlp_widths(p: Mapping[str, Any]) -> tuple[int, ...]:
    """The hidden-layer widths of an MLP: ``widths`` if given, else depth × hidden_units."""
    if p.get("widths"):
        return tuple(p["widths"])
    return (p["hidden_units"],) * p["depth"]


def cnn_filters(p: Mapping[str, Any]) -> tuple[int, ...]:
    """A CNN's filters per convolution (one value given: every convolution's)."""
    filters = tuple(p["filters"])
    return filters * p["conv_layers"] if len(filters) == 1 else filters


def _mlp_body(keras: Any, inputs: Any, p: Mapping[str, Any]) -> Any:
    x = keras.layers.Flatten()(inputs) if len(inputs.shape) > 2 else inputs
    for units in mlp_widths(p):
        x = _dense_block(keras, x, units, p)
    return x


def _cnn_body(keras: Any, inputs: Any, p: Mapping[str, Any], spec: DataSpec) -> Any:
    check_compatible("cnn", spec)
    x = inputs
    if len(spec.input_shape) == 2:
        x = keras.layers.Reshape((*spec.input_shape, 1))(x)
    filters = cnn_filters(p)
    reg = keras.regularizers.L1L2(l1=p["l1"], l2=p["l2"]) if p["l1"] or p["l2"] else None
    for n in filters:
        x = keras.layers.Conv2D(
            n,
            p["kernel_size"],
            padding=p["padding"],
            activation=None if p["batch_norm"] else p["activation"],
            kernel_initializer=p["kernel_initializer"],
            kernel_regularizer=reg,
        )(x)
        if p["batch_norm"]:
            x = keras.layers.BatchNormalization()(x)
            x = keras.layers.Activation(p["activation"])(x)
        if p["pool_size"] > 1:
            x = keras.layers.MaxPooling2D(p["pool_size"])(x)
    if p["dropout"]:
        x = keras.layers.Dropout(p["dropout"])(x)
    x = keras.layers.Flatten()(x)
    if p["dense_units"]:
        x = keras.layers.Dense(
            p["dense_units"],
            activation=p["activation"],
            kernel_initializer=p["kernel_initializer"],
            kernel_regularizer=reg,
        )(x)
    return x


def make_optimizer(params: Mapping[str, Any], learning_rate: Any = None) -> Any:
    """A fresh Keras optimizer from a trial's ``optimizer``, ``learning_rate``, ...
    (``learning_rate``: a Keras schedule or rate in place of the trial's own)."""
    import keras

    p = _params.resolve({k: v for k, v in params.items() if k in _params.TRAINING_PARAMS}, None)
    name = p["optimizer"]
    kwargs: dict[str, Any] = {}
    if learning_rate is not None:
        kwargs["learning_rate"] = learning_rate
    elif p["learning_rate"] is not None:
        kwargs["learning_rate"] = p["learning_rate"]
    if name == "sgd":
        kwargs.update(momentum=p["momentum"], nesterov=p["nesterov"])
    elif name == "nesterov":
        kwargs.update(momentum=p["momentum"] or 0.9, nesterov=True)
    elif name == "rmsprop":
        kwargs.update(momentum=p["momentum"])
    if p["weight_decay"] is not None:
        kwargs["weight_decay"] = p["weight_decay"]
    if p["clipnorm"] is not None:
        kwargs["clipnorm"] = p["clipnorm"]
    return getattr(keras.optimizers, OPTIMIZER_CLASSES[name])(**kwargs)


def loss_function(
    params: Mapping[str, Any], spec: DataSpec, class_weight: Mapping[int, float] | None = None
) -> Callable[[Any, Any], Any]:
    """Each row's loss, as Keras computes it for this trial: the task's, label-smoothed
    (``CategoricalCrossentropy`` on one-hot targets for sparse labels) when asked; times
    its class's weight where ``class_weight`` is given (Keras's training loss)."""
    import keras

    fn = _row_loss(params, spec)
    if not class_weight:
        return fn
    table = keras.ops.convert_to_tensor([class_weight[c] for c in sorted(class_weight)])

    def weighed(y: Any, pred: Any) -> Any:
        labels = keras.ops.cast(keras.ops.reshape(y, (-1,)), "int32")
        return fn(y, pred) * keras.ops.take(table, labels)

    return weighed


def _row_loss(params: Mapping[str, Any], spec: DataSpec) -> Callable[[Any, Any], Any]:
    import keras

    smoothing = _params.resolve(params, None)["label_smoothing"]
    if spec.task == "binary":
        return lambda y, pred: keras.losses.binary_crossentropy(y, pred, label_smoothing=smoothing)
    if spec.task == "multiclass" and smoothing:
        classes = spec.output_units

        def smoothed(y: Any, pred: Any) -> Any:
            labels = keras.ops.cast(keras.ops.reshape(y, (-1,)), "int32")
            return keras.losses.categorical_crossentropy(
                keras.ops.one_hot(labels, classes), pred, label_smoothing=smoothing
            )

        return smoothed
    return keras.losses.get(spec.loss)


def task_loss(params: Mapping[str, Any], spec: DataSpec, portable: bool = False) -> Any:
    """The loss to compile with: the task's by name, or label smoothing's own.
    ``portable``: one that a saved model's file names in Keras's own terms, so that plain
    Keras loads it (sparse labels have no smoothed Keras loss: the task's, unsmoothed)."""
    smoothing = _params.resolve(params, None)["label_smoothing"]
    if not smoothing:
        return spec.loss
    import keras

    if spec.task == "binary":
        return keras.losses.BinaryCrossentropy(label_smoothing=smoothing)
    if portable:
        return spec.loss
    fn = loss_function(params, spec)

    class Smoothed(keras.losses.Loss):
        def call(self, y_true: Any, y_pred: Any) -> Any:
            return fn(y_true, y_pred)

    return Smoothed(name="smoothed_crossentropy")


def compile_for_task(
    model: Any, params: Mapping[str, Any], spec: DataSpec, portable: bool = False
) -> Any:
    """Compile with the trial's loss (``task_loss``) and the task's headline metric."""
    loss = task_loss(params, spec, portable)
    model.compile(optimizer=make_optimizer(params), loss=loss, metrics=[spec.metric])
    return model


def keras_metrics(names: Sequence[str], spec: DataSpec) -> list[Any]:
    """Keras's metric objects for a sweep's added metrics (``definition.metrics``), named
    as the results' columns: what ``fit`` reports for them, and what the pack engine's
    numbers are tested against. Labels are sparse, as nnsweep's data keeps them."""
    import keras

    from nnsweep.definition.metrics import TOP_K

    classes = spec.output_units

    class SparseF1(keras.metrics.F1Score):
        """Keras's macro F1 on sparse labels (it takes one-hot ones)."""

        def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
            labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
            return super().update_state(keras.ops.one_hot(labels, classes), y_pred, sample_weight)

    made = {
        "auc": lambda: keras.metrics.AUC(name="auc"),
        "precision": lambda: keras.metrics.Precision(name="precision"),
        "recall": lambda: keras.metrics.Recall(name="recall"),
        "f1": lambda: (
            SparseF1(average="macro", name="f1")
            if spec.task == "multiclass"
            else keras.metrics.F1Score(average="macro", threshold=0.5, name="f1")
        ),
        "top_k_accuracy": lambda: keras.metrics.SparseTopKCategoricalAccuracy(
            k=TOP_K, name="top_k_accuracy"
        ),
        "mse": lambda: keras.metrics.MeanSquaredError(name="mse"),
        "rmse": lambda: keras.metrics.RootMeanSquaredError(name="rmse"),
    }
    return [made[name]() for name in names]
