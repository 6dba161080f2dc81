from __future__ import annotations

import numpy as np
import pytest

from nnsweep.data import DataSpec
from nnsweep.errors import DataError, TrialError
from nnsweep.training.models import build_model, check_compatible, compile_for_task, make_optimizer

keras = pytest.importorskip("keras")

IMAGES = DataSpec("img", "multiclass", (8, 8), 10)
VECTORS = DataSpec("vec", "binary", (20,))
REGRESSION = DataSpec("reg", "regression", (13,))


@pytest.mark.parametrize(
    "spec, units, activation",
    [(IMAGES, 10, "softmax"), (VECTORS, 1, "sigmoid"), (REGRESSION, 1, "linear")],
)
def test_mlp_output_follows_the_task(spec, units, activation):
    model = build_model("mlp", {"hidden_units": 16, "depth": 2}, spec)
    out = model.layers[-1]
    assert out.units == units and out.activation.__name__ == activation
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [16, 16, units]
    x = np.zeros((3, *spec.input_shape), dtype="float32")
    assert model.predict(x, verbose=0).shape == (3, units)


def test_mlp_explicit_widths_dropout_batchnorm_and_regularizers():
    params = {"widths": (32, 8), "dropout": 0.25, "batch_norm": True, "l2": 1e-4}
    model = build_model("mlp", params, IMAGES)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Dense") == 3 and kinds.count("BatchNormalization") == 2
    assert kinds.count("Dropout") == 2
    assert model.layers[2].kernel_regularizer is not None
    # depth 0 is plain logistic regression
    assert build_model("mlp", {"depth": 0}, IMAGES).count_params() == 64 * 10 + 10


def test_cnn_on_images_and_refusal_on_vectors():
    model = build_model(
        "cnn",
        {
            "conv_layers": 2,
            "filters": (4, 8),
            "kernel_size": 3,
            "padding": "same",
            "dense_units": 16,
        },
        IMAGES,
    )
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [4, 8]
    assert model.predict(np.zeros((2, 8, 8), "float32"), verbose=0).shape == (2, 10)
    with pytest.raises(DataError, match="image inputs"):
        check_compatible("cnn", VECTORS)


def test_custom_build_function_and_its_failures():
    def build(params, spec):
        inputs = keras.Input(spec.input_shape)
        return keras.Model(inputs, keras.layers.Dense(params["k"])(inputs))

    assert build_model(build, {"k": 1}, VECTORS).output_shape == (None, 1)
    # An output that does not fit the task is named before any training step.
    message = (
        r"build\(\) returns a model with output shape \(None, 3\); the binary task of vec "
        r"needs \(None, 1\): 1 unit for a binary target"
    )
    with pytest.raises(TrialError, match=message):
        build_model(build, {"k": 3}, VECTORS)
    with pytest.raises(TrialError, match=r"needs \(None, 10\): 10 units one per class"):
        build_model(
            lambda p, s: build({"k": 3}, s), {}, IMAGES.__class__("v", "multiclass", (5,), 10)
        )
    with pytest.raises(TrialError, match="must return a keras.Model"):
        build_model(lambda p, s: "nope", {}, VECTORS)
    with pytest.raises(TrialError, match="raised KeyError"):
        build_model(build, {}, VECTORS)


def test_optimizers_by_name_with_their_settings():
    sgd = make_optimizer(
        {"optimizer": "sgd", "learning_rate": 0.01, "momentum": 0.9, "nesterov": True}
    )
    assert type(sgd).__name__ == "SGD" and sgd.nesterov and sgd.momentum == pytest.approx(0.9)
    assert float(sgd.learning_rate) == pytest.approx(0.01)
    adamw = make_optimizer({"optimizer": "adamw", "weight_decay": 0.01})
    assert type(adamw).__name__ == "AdamW" and adamw.weight_decay == pytest.approx(0.01)
    assert type(make_optimizer({"optimizer": "rmsprop"})).__name__ == "RMSprop"


def test_compile_uses_the_task_loss_and_metric():
    model = compile_for_task(build_model("mlp", {}, REGRESSION), {}, REGRESSION)
    assert model.loss == "mse"
    history = model.fit(
        np.zeros((4, 13), "float32"), np.zeros(4, "float32"), epochs=1, verbose=0
    ).history
    assert set(history) == {"loss", "mae"}


def test_default_learning_rate_is_the_optimizers_own_and_nesterov_is_a_name():
    assert float(make_optimizer({"optimizer": "sgd"}).learning_rate) == pytest.approx(0.01)
    assert float(make_optimizer({"optimizer": "adam"}).learning_rate) == pytest.approx(0.001)
    nesterov = make_optimizer({"optimizer": "nesterov"})
    assert type(nesterov).__name__ == "SGD" and nesterov.nesterov
    assert nesterov.momentum == pytest.approx(0.9)
