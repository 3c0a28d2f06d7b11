import pytest
import torch

@pytest.fixture(autouse=True)
def _restore_torch_threads():
    # bench/modes.py sets the thread count of the process it runs in; later tests compare results bit for bit
    # with child processes that use the default count, so put it back.
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
