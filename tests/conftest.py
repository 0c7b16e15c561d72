import os

import numpy as np
import pytest
import torch

# tests never use more threads than the CI machine has, and never a GPU
torch.set_num_threads(min(2, os.cpu_count() or 1))
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
