"""Which MLP shape and learning rate suit 8×8 digits? Bayesian optimisation, 20 configs.

Width, depth, dropout and learning rate are chosen by Keras Tuner's Bayesian
optimisation oracle (a Gaussian process, after a few random points); every configuration
trains with 3 seeds, each its own row. Offline (digits ships with scikit-learn).
"""

from nnsweep import Float, Int, Sweep

sweep = Sweep(
    name="search_bayesian",
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
    strategy="bayesian",
    max_trials=20,
)
