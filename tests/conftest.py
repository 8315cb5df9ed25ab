"""Shared fixtures. The data folder comes from MNIST_DATA (CI: ../shared/data), as for learners."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn


class TinyNet(nn.Module):
    """A 1.4k-parameter GAP net: enough to learn something in one pass over 2,000 images."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(16, 10))

    def forward(self, x):
        return F.log_softmax(self.features(x), dim=1)


@pytest.fixture
def tiny_net():
    torch.manual_seed(0)
    return TinyNet()
