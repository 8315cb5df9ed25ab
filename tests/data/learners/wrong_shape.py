"""A model with 5 outputs, not 10."""

import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 5, 28)

    def forward(self, x):
        return F.log_softmax(self.conv(x).flatten(1), dim=1)
