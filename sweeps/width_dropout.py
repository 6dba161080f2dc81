"""Which matters more on MNIST, width or dropout? Effects beyond seed noise, 3 seeds."""

from nnsweep import Sweep

sweep = Sweep(
    name="width_dropout",
    data="mnist",
    model="mlp",
    space={
        "hidden_units": [32, 128, 512],
        "dropout": [0.0, 0.2, 0.5],
        "depth": 1,
        "optimizer": "rmsprop",
        "learning_rate": 1e-3,
        "batch_size": 128,
        "epochs": 5,
    },
    seeds=3,
)
