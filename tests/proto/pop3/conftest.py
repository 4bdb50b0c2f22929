"""POP3 fixtures: see poptest.py for the helpers."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import poptest  # noqa: E402


@pytest.fixture(scope="module")
def server(module_yubin_factory):
    """One running server per test module."""
    return poptest.make_server(module_yubin_factory)


@pytest.fixture
def pop(server):
    """Opens RawPOP3 sessions on server; closes them at the end."""
    opened = []

    def make(tls=False, greet=True):
        c = poptest.RawPOP3(server, tls=tls, greet=greet)
        opened.append(c)
        return c
    yield make
    for c in opened:
        c.close()


