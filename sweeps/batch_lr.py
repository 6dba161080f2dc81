"""How do batch size and learning rate interact for a 128-unit MLP on MNIST (Adam)?"""

from nnsweep import Sweep

sweep = Sweep(
    name="batch_lr",
    data="mnist",
    model="mlp",
    space={
        "hidden_units": 128,
        "batch_size": [64, 128, 256],
        "learning_rate": [1e-4, 1e-3, 1e-2],
        "optimizer": "adam",
        "epochs": 5,
    },
    seeds=3,
)
