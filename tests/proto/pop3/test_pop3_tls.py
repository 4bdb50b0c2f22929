"""TLS for POP3: STLS (RFC 2595) on [pop3], implicit TLS on [pop3s]
(RFC 8314), and where clear-text authentication is allowed."""

import poplib

import pytest

import yubintest
from poptest import PASSWORD, USER, RawPOP3, deliver, make_server, quit_ok, stat


@pytest.fixture(scope="module")
def tls_only(module_yubin_factory):
    """A server where no password may cross a plain connection, not even
    from loopback."""
    return make_server(module_yubin_factory, {"server": {"plaintext_auth": "tls"}})


def test_stls_then_auth_poplib(server):
    deliver(server, yubintest.make_msg("stls"))
    p = poplib.POP3("127.0.0.1", server.listener_port("pop3"), timeout=10)
    p.stls(yubintest.client_tls_context())
    p.user(USER)
    p.pass_(PASSWORD)
    count, _ = p.stat()
    assert count >= 1
    p.quit()


def test_stls_then_auth_plain(pop):
    c = pop()
    c.stls()
    st = c.cmd("AUTH PLAIN " + yubintest.sasl_plain(USER, PASSWORD))
    assert st.startswith("+OK"), st
    stat(c)
    quit_ok(c)


def test_pop3s_poplib(server):
    p = poplib.POP3_SSL("127.0.0.1", server.listener_port("pop3s"), timeout=10,
                        context=yubintest.client_tls_context())
    caps = p.capa()
    assert "STLS" not in caps and "USER" in caps and "SASL" in caps
    p.user(USER)
    p.pass_(PASSWORD)
    p.stat()
    p.quit()


def test_capa_after_stls(pop):
    c = pop()
    assert "STLS" in c.capa()
    c.stls()
    caps = c.capa()
    assert "STLS" not in caps and "USER" in caps


def test_stls_twice_and_on_pop3s(pop):
    c = pop()
    c.stls()
    assert c.cmd("STLS").startswith("-ERR")
    c.login()
    quit_ok(c)
    c = pop(tls=True)
    assert c.cmd("STLS").startswith("-ERR")


def test_stls_syntax(pop):
    c = pop()
    assert c.cmd("STLS now").startswith("-ERR")


def test_stls_after_utf8_refused(pop):
    c = pop()
    c.ok("UTF8")
    # RFC 6856 2.1: a server may refuse STLS after UTF8.
    assert c.cmd("STLS").startswith("-ERR")


def test_stls_injection(server, pop):
    c = pop()
    # Commands pipelined after STLS in the clear must be dropped, not run
    # inside TLS (RFC 2595 4, the STARTTLS command injection).
    c.send("STLS\r\nUSER %s\r\n" % USER)
    assert c.status().startswith("+OK")
    assert not c.buf
    c.sock = yubintest.client_tls_context().wrap_socket(
        c.sock, server_hostname=yubintest.HOSTNAME)
    st = c.cmd("PASS " + PASSWORD)
    assert st.startswith("-ERR"), st       # no USER was seen
    c.login()
    quit_ok(c)
    assert "starttls_injection" in server.log_text()


def test_capa_without_plaintext_auth(tls_only):
    c = RawPOP3(tls_only)
    caps = c.capa()
    assert "STLS" in caps
    assert "USER" not in caps
    assert not [l for l in caps if l.startswith("SASL")]
    # Nor are they accepted.
    assert c.cmd("USER " + USER).startswith("-ERR [AUTH]")
    assert c.cmd("PASS " + PASSWORD).startswith("-ERR [AUTH]")
    assert c.cmd("AUTH PLAIN " + yubintest.sasl_plain(USER, PASSWORD)).startswith("-ERR [AUTH]")
    assert c.cmd("AUTH SCRAM-SHA-256").startswith("-ERR [AUTH]")
    c.stls()
    caps = c.capa()
    assert "USER" in caps and "STLS" not in caps
    sasl = [l for l in caps if l.startswith("SASL ")]
    assert sasl and "PLAIN" in sasl[0].split()
    c.login()
    stat(c)
    quit_ok(c)
    c.close()


def test_pop3s_without_plaintext_auth(tls_only):
    c = RawPOP3(tls_only, tls=True)
    assert "USER" in c.capa()
    c.login()
    quit_ok(c)
    c.close()
