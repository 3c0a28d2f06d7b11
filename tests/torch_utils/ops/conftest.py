import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    """The ops tests use tiny tensors, for which intra-op threads only add synchronisation (and stall
    badly on a busy CI machine). Restored afterwards so other tests see the usual setting."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
