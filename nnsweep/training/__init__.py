"""Training: trials into packs, and packs into one TensorFlow program each.

``packing`` groups trials (and describes the packs for ``--dry-run``, without TensorFlow);
``train`` trains a pack (``train_pack``), falling back loudly to one by one, and turns
outcomes into rows and histories. Inside a pack: ``_units`` decides what stacks and what
trains as a branch, ``_engine`` runs the traced program, ``_stack`` and ``_branch`` are the
two kinds of unit, ``_optimizers`` applies Keras's update formulas per trial,
``_initializers`` draws Keras's initial weights in NumPy, ``_table`` holds the data as
tensors, and ``_keras_fit`` trains alone through Keras's ``fit`` off TensorFlow.
Importing this package imports nothing heavy; TensorFlow loads with ``_engine``.
"""
