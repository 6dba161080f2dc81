"""How long should Dense 64-64-1 train on Boston housing? 4-fold cross-validation.

13 standardized features, MSE loss, MAE metric, RMSprop, batch 16, 80 or 500 epochs.
Known: test MAE about 2.5-2.7 (thousands of dollars); the fold-averaged validation MAE,
smoothed, bottoms out well before 500 epochs, and the learning curves mark where. The
500-epoch runs draw those curves; the 80-epoch runs stop near the bottom (the classic
choice), and the test MAE of the two says what training on costs.
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
        "epochs": [80, 500],
    },
    cv=4,
    seeds=2,
)
