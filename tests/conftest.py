import numpy as np
import pytest

import pydl


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def isa():
    """Restores the ISA path a test switched (see parity.isa_paths)."""
    before = pydl._C._isa()
    yield pydl._C._set_isa
    pydl._C._set_isa(before)


@pytest.fixture
def threads():
    """Restores the thread count a test changed."""
    before = pydl.get_num_threads()
    yield pydl.set_num_threads
    pydl.set_num_threads(before)
