"""Does depth help an MLP on MNIST? [784, 32, 10] vs [784, 250, 125, 50, 10], 5 seeds.

SGD (learning rate 0.01, Nesterov momentum 0.9), batch 500, 10 epochs. Known: the small
net reaches about 0.93; the deep one sometimes stalls near 0.77 and sometimes reaches
0.96. With ReLU both numbers come back (0.93, 0.96); with sigmoid the deep net is the one
that stalls (its gradients vanish through four sigmoid layers), and its seeds disagree:
the report shows that spread instead of one lucky number.
"""

from nnsweep import Sweep

sweep = Sweep(
    name="depth",
    data="mnist",
    model="mlp",
    space={
        "widths": [(32,), (250, 125, 50)],  # a list of tuples: each tuple is one network
        "activation": ["relu", "sigmoid"],
        "optimizer": "sgd",
        "learning_rate": 0.01,
        "momentum": 0.9,
        "nesterov": True,
        "batch_size": 500,
        "epochs": 10,
    },
    seeds=5,
)
