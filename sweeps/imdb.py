"""How wide and deep should a multi-hot IMDB sentiment classifier be? About 0.88 test accuracy.

Multi-hot over the 10,000 most frequent words, Dense layers with a sigmoid output,
RMSprop, binary cross-entropy, 20 epochs, batch 512. The validation loss rises after 3-4
epochs: the learning curves show the overfitting. Ranked by validation ROC AUC, which does
not hang on the 0.5 threshold, with accuracy, precision and recall beside it (`nnsweep show
imdb --metric val_accuracy` ranks by accuracy). IMDB is downloaded by Keras on first use.
"""

from nnsweep import Sweep

sweep = Sweep(
    name="imdb",
    data="imdb",
    data_options={"num_words": 10_000},
    model="mlp",
    space={
        "hidden_units": [16, 32, 64],
        "depth": [1, 2, 3],
        "optimizer": "rmsprop",
        "batch_size": 512,
        "epochs": 20,
    },
    seeds=2,
    metrics=["auc", "precision", "recall"],
    objective="val_auc",
)
