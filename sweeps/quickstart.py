"""How wide must a one-hidden-layer MLP be on 8×8 digits? A two-minute offline sweep."""

from nnsweep import Sweep

sweep = Sweep(
    name="quickstart",
    data="digits",
    model="mlp",
    space={
        "hidden_units": [4, 16, 64],
        "depth": 1,
        "optimizer": "adam",
        "learning_rate": 1e-2,
        "batch_size": 32,
        "epochs": 10,
    },
    seeds=3,
)
