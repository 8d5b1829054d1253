"""torch twins of ``models.Tudui`` and ``models.LeNet``, written as the CIFAR-10 tutorials write
them (an nn.Sequential of Conv2d, MaxPool2d, Flatten and Linear). Test-only: the library never
imports torch."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn


class Tudui(nn.Module):
    """Tutorial 003: ``self.model1 = Sequential(...)``; keys ``model1.0.weight`` ..."""

    def __init__(self):
        super().__init__()
        self.model1 = nn.Sequential(
            nn.Conv2d(3, 32, 5, padding=2),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 5, padding=2),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(1024, 64),
            nn.Linear(64, 10),
        )

    def forward(self, x):
        return self.model1(x)


class LeNet(nn.Module):
    """Tutorial 000 (``class Module``): ``self.model = Sequential(...)``; keys ``model.0.weight`` ..."""

    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(
            nn.Conv2d(3, 16, 5),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(16, 32, 5),
            nn.MaxPool2d(2, 2),
            nn.Flatten(),
            nn.Linear(32 * 5 * 5, 120),
            nn.Linear(120, 84),
            nn.Linear(84, 10),
        )

    def forward(self, x):
        return self.model(x)


class TuduiNamed(nn.Module):
    """Tutorial 001: an OrderedDict Sequential; keys ``model1.conv1.weight`` ..."""

    def __init__(self):
        super().__init__()
        self.model1 = nn.Sequential(
            OrderedDict(
                [
                    ("conv1", nn.Conv2d(in_channels=3, out_channels=32, kernel_size=5, padding=2)),
                    ("pool1", nn.MaxPool2d(kernel_size=2)),
                    ("conv2", nn.Conv2d(in_channels=32, out_channels=32, kernel_size=5, padding=2)),
                    ("pool2", nn.MaxPool2d(kernel_size=2)),
                    ("conv3", nn.Conv2d(in_channels=32, out_channels=64, kernel_size=5, padding=2)),
                    ("pool3", nn.MaxPool2d(kernel_size=2)),
                    ("flatten", nn.Flatten()),
                    ("fc1", nn.Linear(1024, 64)),
                    ("fc2", nn.Linear(64, 10)),
                ]
            )
        )

    def forward(self, x):
        return self.model1(x)


class FixCIFAR10(nn.Module):
    """Tutorial 004: ``self.modul1 = nn.Sequential(...)``; keys ``modul1.0.weight`` ..."""

    def __init__(self):
        super().__init__()
        self.modul1 = nn.Sequential(
            nn.Conv2d(in_channels=3, out_channels=32, kernel_size=5, stride=1, padding=2),
            nn.MaxPool2d(2),
            nn.Conv2d(in_channels=32, out_channels=32, kernel_size=5, padding=2),
            nn.MaxPool2d(2),
            nn.Conv2d(in_channels=32, out_channels=64, kernel_size=5, padding=2),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(1024, 64),
            nn.Linear(64, 10),
        )

    def forward(self, x):
        return self.modul1(x)


class FixCIFAR10Attrs(nn.Module):
    """Tutorial 004's commented-out variant: one attribute per layer; keys ``conv2d.weight``,
    ``conv2d2.weight``, ``conv2d3.weight``, ``liner1.weight``, ``liner2.weight`` (forward fixed:
    the tutorial applies conv2d3 twice, which cannot run)."""

    def __init__(self):
        super().__init__()
        self.conv2d = nn.Conv2d(in_channels=3, out_channels=32, kernel_size=5, stride=1, padding=2)
        self.maxpool1 = nn.MaxPool2d(2)
        self.conv2d2 = nn.Conv2d(in_channels=32, out_channels=32, kernel_size=5, padding=2)
        self.maxpool2 = nn.MaxPool2d(2)
        self.conv2d3 = nn.Conv2d(in_channels=32, out_channels=64, kernel_size=5, padding=2)
        self.maxpool3 = nn.MaxPool2d(2)
        self.Flatten1 = nn.Flatten()
        self.liner1 = nn.Linear(1024, 64)
        self.liner2 = nn.Linear(64, 10)

    def forward(self, x):
        x = self.maxpool1(self.conv2d(x))
        x = self.maxpool2(self.conv2d2(x))
        x = self.maxpool3(self.conv2d3(x))
        return self.liner2(self.liner1(self.Flatten1(x)))


#: Every torch twin, by the JAX class it corresponds to.
TWINS = {"Tudui": (Tudui, TuduiNamed, FixCIFAR10, FixCIFAR10Attrs), "LeNet": (LeNet,)}
