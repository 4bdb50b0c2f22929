"""Fixtures of the mail-authentication tests: a test DNS (tests/proto/dns
dnstest.py) serving SPF, DKIM and DMARC records, a DKIM key made for it,
and a yubin whose [dns] servers point there with [mailauth] turned on."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "dns"))

import dnstest  # noqa: E402
import yubintest  # noqa: E402
from mailauthtest import SELECTOR, overrides, rsa_key, txt_chunks  # noqa: E402


@pytest.fixture(scope="module")
def dkim_key():
    return rsa_key()


@pytest.fixture(scope="module")
def zone(dkim_key):
    """The test DNS with the domains the tests send from:
    signed.example    DKIM key, p=reject (mail signed by it passes)
    example.net       p=reject, sp=quarantine: unsigned mail is refused
    quarantine.example  p=quarantine
    testing.example   p=reject; t=y (reject applied as quarantine)
    slow.example      the _dmarc query is never answered
    spf.example       SPF: 127.0.0.7 only; p=reject; aspf=s
    relaxed.example   p=reject; SPF for bounce.relaxed.example: 127.0.0.7"""
    dns = dnstest.TestDNS("127.0.0.1")
    _, pub = dkim_key
    for d in ("signed.example", "example.net"):
        dns.add("%s._domainkey.%s" % (SELECTOR, d), "TXT",
                txt_chunks("v=DKIM1; k=rsa; p=" + pub))
    dns.add("_dmarc.signed.example", "TXT", "v=DMARC1; p=reject")
    dns.add("_dmarc.example.net", "TXT", "v=DMARC1; p=reject; sp=quarantine")
    dns.add("www.example.net", "A", "192.0.2.80")
    dns.add("_dmarc.quarantine.example", "TXT", "v=DMARC1; p=quarantine; rua=mailto:r@quarantine.example")
    dns.add("_dmarc.testing.example", "TXT", "v=DMARC1; p=reject; t=y")
    dns.drop("_dmarc.slow.example")
    # SPF: only 127.0.0.7 may send for spf.example and bounce.relaxed.example
    dns.add("spf.example", "TXT", "v=spf1 ip4:127.0.0.7 -all")
    dns.add("_dmarc.spf.example", "TXT", "v=DMARC1; p=reject; aspf=s")
    dns.add("bounce.spf.example", "TXT", "v=spf1 ip4:127.0.0.7 -all")
    dns.add("bounce.relaxed.example", "TXT", "v=spf1 ip4:127.0.0.7 -all")
    dns.add("_dmarc.relaxed.example", "TXT", "v=DMARC1; p=reject")
    dns.start()
    yield dns
    dns.stop()


@pytest.fixture(scope="module")
def server(module_yubin_factory, zone):
    return module_yubin_factory(overrides(zone), provision=yubintest.provision_standard)
