"""How long should Dense 64-64-1 train on Boston housing? 4-fold cross-validation.

13 standardized features, MSE loss, MAE metric, RMSprop, batch 16, up to 500 epochs.
Known: test MAE about 2.5-2.7 (thousands of dollars); the fold-averaged validation MAE,
smoothed, bottoms out well before 500 epochs, and the learning curves mark where.
"""

from nnsweep import Sweep

sweep = Sweep(
    name="boston_housing",
    data="boston_housing",
    model="mlp",
    space={
        "hidden_units": 64,
        "depth": 2,
        "optimizer": "rmsprop",
        "batch_size": 16,
        "epochs": 500,
    },
    cv=4,
    seeds=2,
)
