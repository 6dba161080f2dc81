"""Does a learning-rate schedule beat a constant rate for a 256-unit MLP on MNIST (Adam)?"""

from nnsweep import Sweep

sweep = Sweep(
    name="lr_schedules",
    data="mnist",
    model="mlp",
    space={
        "hidden_units": 256,
        "optimizer": "adam",
        "learning_rate": 2e-3,
        "batch_size": 128,
        "epochs": 10,
        "lr_schedule": ["constant", "cosine", "step", "plateau"],
        "decay_epochs": 3,  # step: the rate halves every 3 epochs (decay_rate 0.5)
        "plateau_patience": 1,  # plateau: halved after an epoch without a better val_accuracy
        "plateau_factor": 0.5,
    },
    seeds=3,
)
