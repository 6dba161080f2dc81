"""How wide must a single hidden layer be? Test accuracy vs hidden units on MNIST."""

from nnsweep import Sweep

sweep = Sweep(
    name="hidden_units",
    data="mnist",
    model="mlp",
    space={
        "hidden_units": [8, 16, 32, 64, 128, 256, 512],  # a list: every value is tried
        "depth": 1,  # a scalar: fixed
        "optimizer": "rmsprop",
        "learning_rate": 1e-3,
        "batch_size": 128,
        "epochs": 5,
    },
    seeds=3,  # every configuration, 3 times
)
