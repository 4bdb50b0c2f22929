"""The SMTP server fixture shared by the tests of one module."""

import pytest

import yubintest


@pytest.fixture(scope="module")
def server(module_yubin_factory):
    """One running server per test module, provisioned by yubintest.provision_standard."""
    return module_yubin_factory(provision=yubintest.provision_standard)


@pytest.fixture
def smtp_session(server):
    """A raw SMTP session after greeting and EHLO; closed afterwards."""
    r = server.session()
    yield r
    r.close()
