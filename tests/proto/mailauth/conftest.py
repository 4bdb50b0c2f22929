"""Fixtures of the mail-authentication tests: a test DNS (tests/proto/dns
dnstest.py) serving SPF, DKIM and DMARC records, a DKIM key made for it,
and a yubin whose [dns] servers point there with [mailauth] turned on."""

import base64
import os
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "dns"))

import dnstest  # noqa: E402
import yubintest  # noqa: E402

SELECTOR = "sel1"
RCPT = "shiroyagi@example.com"


def rsa_key():
    """A new RSA-2048 key: (PKCS#1 PEM bytes for dkimpy, the p= value)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "k.pem")
        subprocess.run(["openssl", "genrsa", "-traditional", "-out", path, "2048"],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "rsa", "-in", path, "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        return open(path, "rb").read(), base64.b64encode(der).decode()


def txt_chunks(text):
    """A TXT value as 255-byte character-strings (RFC 1035 3.3.14)."""
    return [text[i:i + 255] for i in range(0, len(text), 255)]


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
    slow.example      the _dmarc query is never answered"""
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
    dns.start()
    yield dns
    dns.stop()


def overrides(zone, **mailauth):
    o = dnstest.dns_overrides(zone.spec, timeout="1s", attempts="1")
    o["mailauth"] = {"spf": "yes", "dkim": "yes", "dmarc": "yes"}
    o["mailauth"].update(mailauth)
    return o


@pytest.fixture(scope="module")
def server(module_yubin_factory, zone):
    return module_yubin_factory(overrides(zone), provision=yubintest.provision_standard)
