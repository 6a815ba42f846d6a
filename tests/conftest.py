"""Fixtures shared by the whole suite."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Every test leaves the torch thread count as it found it: float reductions (and so, for
    example, the shipped DCDM card's iteration counts) depend on it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def one_thread():
    """One torch thread: small training loops run fastest that way on a shared 2-core machine."""
    torch.set_num_threads(1)
    yield
