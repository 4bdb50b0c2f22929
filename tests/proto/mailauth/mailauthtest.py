"""Helpers of the mail-authentication tests (conftest.py has the
fixtures): a DKIM key for dkimpy, TXT chunks, the server's overrides."""

import base64
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dns"))

import dnstest  # noqa: E402

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


def overrides(zone, **mailauth):
    o = dnstest.dns_overrides(zone.spec, timeout="1s", attempts="1")
    o["mailauth"] = {"spf": "yes", "dkim": "yes", "dmarc": "yes"}
    o["mailauth"].update(mailauth)
    return o


def session_from(inst, source):
    """A raw SMTP session to inst's port 25 from the local address source
    (127.0.0.x: what SPF sees), after the greeting and EHLO."""
    import socket
    import yubintest
    r = yubintest.RawSMTP.__new__(yubintest.RawSMTP)
    r.sock = socket.create_connection(("127.0.0.1", inst.port), timeout=yubintest.IO_TIMEOUT,
                                      source_address=(source, 0))
    r.timeout = yubintest.IO_TIMEOUT
    r.buf = b""
    rep = r.reply()
    assert rep.code == 220, rep
    rep = r.cmd("EHLO " + yubintest.EHLO_NAME)
    assert rep.code == 250, rep
    return r
