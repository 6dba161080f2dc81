"""Which optimizer trains the same MLP best on MNIST: SGD, SGD with Nesterov, RMSprop, Adam?

Each optimizer runs at its own Keras default learning rate (0.01 for the SGDs, 0.001 for
RMSprop and Adam); "nesterov" is SGD with Nesterov momentum 0.9.
"""

from nnsweep import Sweep

sweep = Sweep(
    name="optimizers",
    data="mnist",
    model="mlp",
    space={
        "hidden_units": 128,
        "optimizer": ["sgd", "nesterov", "rmsprop", "adam"],
        "batch_size": 128,
        "epochs": 5,
    },
    seeds=3,
)
