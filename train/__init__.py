"""CIFAR-10 training of the ``models`` networks with jit-compiled steps (not yet built)."""
