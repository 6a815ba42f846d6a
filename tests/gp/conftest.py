"""GP tests run tiny dense kernels: one torch thread is fastest and keeps timings stable on 2 cores."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
