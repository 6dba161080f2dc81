"""CNN or MLP on MNIST? A one-convolution CNN, a two-convolution CNN and a 512-unit MLP.

Known: about 1 % error for the one-convolution CNN (32 filters 5x5, max-pool 2x2,
dropout 0.2, dense 128), about 0.987 for the two-convolution one (32 and 64 filters 5x5,
each max-pooled, dense 100). Adam, batch 200, 10 epochs. Named models: each trial trains
one of them (its "model" column), and the CNNs stack as any built-in CNNs do.
"""

from nnsweep import Sweep

sweep = Sweep(
    name="cnn_vs_mlp",
    data="mnist",
    model={
        "cnn1": ("cnn", {"conv_layers": 1, "filters": (32,), "kernel_size": 5,
                         "dropout": 0.2, "dense_units": 128}),
        "cnn2": ("cnn", {"conv_layers": 2, "filters": (32, 64), "kernel_size": 5,
                         "dropout": 0.2, "dense_units": 100}),
        "mlp512": ("mlp", {"hidden_units": 512, "depth": 1}),
    },
    space={"optimizer": "adam", "batch_size": 200, "epochs": 10},
    seeds=2,
)  # fmt: skip
