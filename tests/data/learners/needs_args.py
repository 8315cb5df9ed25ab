"""A model whose constructor needs an argument: the grader builds it with none."""

import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 10, 28)

    def forward(self, x):
        return F.log_softmax(self.conv(x).flatten(1), dim=1)
