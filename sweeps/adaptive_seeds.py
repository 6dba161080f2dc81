"""How wide must a hidden layer be, with only as many seeds as each answer needs?

The hidden_units grid on MNIST with adaptive seeds: every width starts with 2 seeds;
widths whose 95 % interval still overlaps the best's get 2 more, round by round, up to 8.
"""

from nnsweep import Seeds, Sweep

sweep = Sweep(
    name="adaptive_seeds",
    data="mnist",
    model="mlp",
    space={
        "hidden_units": [8, 16, 32, 64, 128, 256, 512],
        "depth": 1,
        "optimizer": "rmsprop",
        "learning_rate": 1e-3,
        "batch_size": 128,
        "epochs": 5,
    },
    seeds=Seeds(min=2, max=8, step=2),
)
