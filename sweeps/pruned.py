"""How wide must a single hidden layer be, with configurations already lost stopped early?

The hidden_units grid on MNIST at 10 epochs with pruning on: at epochs 1, 2, 4 and 8, a
width whose seeds are behind the leader's beyond seed noise stops (false-prune rate 0.05).
"""

from nnsweep import Sweep

sweep = Sweep(
    name="pruned",
    data="mnist",
    model="mlp",
    space={
        "hidden_units": [8, 16, 32, 64, 128, 256, 512],
        "depth": 1,
        "optimizer": "rmsprop",
        "learning_rate": 1e-3,
        "batch_size": 128,
        "epochs": 10,
    },
    seeds=3,
    prune=True,
)
