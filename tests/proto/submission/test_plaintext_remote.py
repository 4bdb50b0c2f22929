"""Clear-text passwords off loopback ([M2] item 2, done-when "cannot log in
in clear over a non-local connection"): with the default [server]
plaintext_auth = loopback, a client whose address is not 127.x gets no
clear-text mechanism before TLS over SMTP (538), POP3 (no USER, no SASL
PLAIN) or IMAP (LOGINDISABLED), and gets them once TLS is on.

The client must really come from another address, without touching the
host's interfaces: the server runs in a network namespace of the relay
rig (tests/proto/relay/relaytest.py) on 10.A.B.1, and the test talks to
it from the root namespace's end of the veth pair, 10.A.B.254."""

import os
import socket
import ssl
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "relay"))

import relaytest  # noqa: E402
import yubintest  # noqa: E402
from yubintest import PASSWORD, sasl_plain  # noqa: E402

USER = "shiroyagi@example.com"
IO = 20.0


@pytest.fixture(scope="module")
def remote():
    """The mx-example host of a rig, serving with the default policy."""
    why = relaytest.available()
    if why is not None:
        pytest.skip(why)
    rig = relaytest.Rig()
    try:
        inst = rig.example.serve()
        assert "plaintext_auth" not in open(inst.conf).read()
        yield inst
    except BaseException:
        rig.close(check=False)
        raise
    rig.close()


class Line:
    """A line-based client on a socket that can switch to TLS."""

    def __init__(self, inst, port):
        self.sock = socket.create_connection((inst.addr, port), timeout=IO)
        # Really not loopback: the server sees our veth address.
        assert not self.sock.getsockname()[0].startswith("127."), self.sock.getsockname()
        self.buf = b""

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            assert data, "connection closed"
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode()

    def until(self, pred):
        out = []
        while True:
            l = self.line()
            out.append(l)
            if pred(l):
                return out

    def tls(self, host):
        assert not self.buf
        self.sock = yubintest.client_tls_context().wrap_socket(self.sock, server_hostname=host)

    def close(self):
        self.sock.close()


def smtp_ehlo(c):
    c.send("EHLO client.test.example")
    return c.until(lambda l: l.startswith("250 "))


def auth_mechs(ehlo):
    for l in ehlo:
        words = l[4:].split()
        if words and words[0].upper() == "AUTH":
            return [w.upper() for w in words[1:]]
    return []


def test_smtp_submission(remote):
    c = Line(remote, 587)
    try:
        assert c.line().startswith("220")
        mechs = auth_mechs(smtp_ehlo(c))
        assert "PLAIN" not in mechs and "LOGIN" not in mechs, mechs
        # Asked anyway: refused before any password is read.
        c.send("AUTH PLAIN " + sasl_plain(USER, PASSWORD))
        rep = c.line()
        assert rep.startswith("538 5.7.11"), rep
        c.send("AUTH LOGIN")
        rep = c.line()
        assert rep.startswith("538 5.7.11"), rep
        c.send("MAIL FROM:<%s>" % USER)
        assert c.line()[:3] == "530"
        # With TLS they are offered and work.
        c.send("STARTTLS")
        assert c.line().startswith("220")
        c.tls(remote.host.fqdn)
        mechs = auth_mechs(smtp_ehlo(c))
        assert "PLAIN" in mechs and "LOGIN" in mechs, mechs
        c.send("AUTH PLAIN " + sasl_plain(USER, PASSWORD))
        rep = c.line()
        assert rep.startswith("235 2.7.0"), rep
    finally:
        c.close()


def pop3_capa(c):
    c.send("CAPA")
    assert c.line().startswith("+OK")
    return c.until(lambda l: l == ".")[:-1]


def test_pop3(remote):
    c = Line(remote, 110)
    try:
        assert c.line().startswith("+OK")
        capa = pop3_capa(c)
        assert "USER" not in capa, capa
        sasl = [l.split()[1:] for l in capa if l.startswith("SASL")]
        assert all("PLAIN" not in m for m in sasl), capa
        assert "STLS" in capa, capa
        c.send("USER " + USER)
        assert c.line().startswith("-ERR")
        c.send("AUTH PLAIN " + sasl_plain(USER, PASSWORD))
        assert c.line().startswith("-ERR")
        # With TLS: USER and PLAIN, and the login works.
        c.send("STLS")
        assert c.line().startswith("+OK")
        c.tls(remote.host.fqdn)
        capa = pop3_capa(c)
        assert "USER" in capa and any("PLAIN" in l for l in capa if l.startswith("SASL")), capa
        c.send("USER " + USER)
        assert c.line().startswith("+OK")
        c.send("PASS " + PASSWORD)
        rep = c.line()
        assert rep.startswith("+OK"), rep
    finally:
        c.close()


def imap_caps(c, tag):
    c.send(tag + " CAPABILITY")
    lines = c.until(lambda l: l.startswith(tag + " "))
    assert lines[-1].startswith(tag + " OK"), lines
    caps = [l for l in lines if l.startswith("* CAPABILITY ")]
    assert len(caps) == 1, lines
    return caps[0].split()[2:]


def test_imap(remote):
    c = Line(remote, 143)
    try:
        assert c.line().startswith("* OK")
        caps = imap_caps(c, "a1")
        assert "LOGINDISABLED" in caps, caps
        assert "AUTH=PLAIN" not in caps, caps
        c.send('a2 LOGIN "%s" "%s"' % (USER, PASSWORD))
        rep = c.until(lambda l: l.startswith("a2 "))[-1]
        assert rep.startswith("a2 NO"), rep
        c.send("a3 AUTHENTICATE PLAIN " + sasl_plain(USER, PASSWORD))
        rep = c.until(lambda l: l.startswith("a3 "))[-1]
        assert rep.startswith("a3 NO") or rep.startswith("a3 BAD"), rep
        c.send("a4 STARTTLS")
        assert c.until(lambda l: l.startswith("a4 "))[-1].startswith("a4 OK")
        c.tls(remote.host.fqdn)
        caps = imap_caps(c, "a5")
        assert "LOGINDISABLED" not in caps and "AUTH=PLAIN" in caps, caps
        c.send('a6 LOGIN "%s" "%s"' % (USER, PASSWORD))
        rep = c.until(lambda l: l.startswith("a6 "))[-1]
        assert rep.startswith("a6 OK"), rep
    finally:
        c.close()
