"""Fixtures of the DNS tests: a test DNS server (dnstest.py) on 127.0.0.1
and a yubin installation whose [dns] servers point at it."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dnstest  # noqa: E402


@pytest.fixture(scope="module")
def dns_server():
    """The standard zone of dnstest.py, served for the whole module."""
    dns = dnstest.standard_server("127.0.0.1")
    yield dns
    dns.stop()


@pytest.fixture
def resolver(yubin_factory, dns_server):
    """An installation (no server running) that asks dns_server."""
    return yubin_factory(dnstest.dns_overrides(dns_server.spec), start=False)
