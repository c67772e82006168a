"""Library code. The files the product's description named stand here (trainer, modern_trainer, augmentation,
regularization, data_loader, visualization), with the config and the experiment; what stands behind them is
grouped by what it holds: ``data/``, ``training/``, ``after/`` (what runs on a trained model), ``studies/``."""
