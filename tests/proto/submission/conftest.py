"""The submission server fixture shared by the tests of one module."""

import pytest

from subtest import make_server


@pytest.fixture(scope="module")
def server(module_yubin_factory):
    """One submission server per test module, default policy (loopback)."""
    return make_server(module_yubin_factory)
