"""Where is the bottleneck for Reuters' 46 topics? Two hidden layers of 4 to 128 units.

Multi-hot over 10,000 words, Dense-Dense-46 softmax, RMSprop, 20 epochs, batch 512.
Known: about 0.78-0.80 test accuracy at 64 units; 4 units starve the 46-way output.
Reuters is downloaded by Keras on first use.
"""

from nnsweep import Sweep

sweep = Sweep(
    name="reuters",
    data="reuters",
    model="mlp",
    space={
        "hidden_units": [4, 16, 64, 128],
        "depth": 2,
        "optimizer": "rmsprop",
        "batch_size": 512,
        "epochs": 20,
    },
    seeds=2,
)
