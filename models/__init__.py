"""The CIFAR-10 CNNs of the PyTorch tutorials, in Flax NNX (not yet built: see the issues)."""
