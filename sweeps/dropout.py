"""Does dropout (or L2) help two hidden layers of 128 on MNIST? About 0.98 at dropout 0.3."""

from nnsweep import Sweep

sweep = Sweep(
    name="dropout",
    data="mnist",
    model="mlp",
    space={
        "hidden_units": 128,
        "depth": 2,
        "dropout": [0.0, 0.1, 0.3, 0.5],
        "l2": [0.0, 1e-4],
        "optimizer": "adam",
        "batch_size": 128,
        "epochs": 20,
    },
    validation_split=0.2,
    seeds=3,
)
