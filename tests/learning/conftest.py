"""Learning tests run torch on one thread (restored afterwards): small nets train several times
faster that way when other jobs share the CPU, and results do not depend on the core count."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
