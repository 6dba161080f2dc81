"""Which MLP shape and learning rate suit 8×8 digits? A random search, 20 configurations.

Width, depth, dropout and learning rate are sampled by Keras Tuner's random-search
oracle; every configuration trains with 3 seeds, each its own row. Offline (digits ships
with scikit-learn); try it on many machines with --ray (see the README).
"""

from nnsweep import Float, Int, Sweep

sweep = Sweep(
    name="search_random",
    data="digits",
    model="mlp",
    space={
        "hidden_units": Int(16, 256, step=16),
        "depth": Int(1, 3),
        "dropout": Float(0.0, 0.5),
        "learning_rate": Float(1e-4, 3e-2, log=True),
        "optimizer": "adam",
        "batch_size": 32,
        "epochs": 10,
    },
    seeds=3,
    strategy="random",
    max_trials=20,
)
