"""Library code: data, augmentation, regularization, training, checkpoints, plots."""
