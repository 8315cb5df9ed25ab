"""A model whose forward raises: its Linear layer expects 500 numbers, the image has 784."""

import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(500, 10)

    def forward(self, x):
        return F.log_softmax(self.fc(x.flatten(1)), dim=1)
