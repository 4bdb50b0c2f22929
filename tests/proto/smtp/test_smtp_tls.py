"""STARTTLS (RFC 3207), including the CVE-2011-0411 command injection."""

import os
import ssl
import warnings

import pytest

import yubintest
from yubintest import HOSTNAME, make_msg, dot_stuff, unique, send_data, \
    split_stored, client_tls_context


def ehlo_keywords(rep):
    return [l.split(" ")[0].upper() for l in rep.lines[1:]]


def test_selfsigned_certificate_made(server):
    cert = os.path.join(server.dir, "tls", "cert.pem")
    key = os.path.join(server.dir, "tls", "key.pem")
    assert os.path.exists(cert) and os.path.exists(key)
    # The private key is not readable by others.
    assert os.stat(key).st_mode & 0o077 == 0, oct(os.stat(key).st_mode)


def test_starttls_smtplib(server):
    subject = unique("tls")
    msg = make_msg(subject)
    with server.smtp() as s:
        assert s.has_extn("starttls")
        code, _ = s.starttls(context=client_tls_context())
        assert code == 220
        cert = s.sock.getpeercert(binary_form=True)
        assert cert
        code, _ = s.ehlo()
        assert code == 250
        assert not s.has_extn("starttls"), "STARTTLS still offered inside TLS"
        version = s.sock.version()
        cipher, _, bits = s.sock.cipher()
        refused = s.sendmail("tls@example.org", ["shiroyagi@example.com"], msg)
        assert refused == {}
    (row, stored), = server.find_mail("shiroyagi@example.com", subject)
    fields, rest = split_stored(stored)
    received = fields[2].decode()
    # Received: names what this session used, as the client saw it.
    assert version in ("TLSv1.2", "TLSv1.3"), version
    assert "with ESMTPS" in received, received
    assert "(using %s with cipher %s (%d bits))" % (version, cipher, bits) in received, \
        (received, version, cipher, bits)
    assert rest == msg


def test_certificate_names_the_host(server):
    r = server.session()
    rep = r.cmd("STARTTLS")
    assert (rep.code, rep.enh) == (220, "2.0.0"), rep
    r.starttls()
    der = r.sock.getpeercert(binary_form=True)
    assert HOSTNAME.encode() in der
    assert r.sock.version() in ("TLSv1.2", "TLSv1.3"), r.sock.version()
    r.close()


def test_old_tls_versions_refused(server):
    ctx = client_tls_context()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot offer TLS 1.1 at all")
    r = server.session()
    assert r.cmd("STARTTLS").code == 220
    with pytest.raises((ssl.SSLError, ConnectionResetError, EOFError, OSError)):
        r.starttls(ctx)
        r.cmd("EHLO x")
    r.close()


def test_starttls_command_injection(server):
    r = server.session()
    # The RSET arrives with STARTTLS, before the handshake: it must be
    # thrown away, not answered inside TLS.
    r.send(b"STARTTLS\r\nRSET\r\n")
    rep = r.reply()
    assert rep.code == 220, rep
    assert r.buf == b"", "plaintext after the 220: %r" % r.buf
    r.starttls()
    rep = r.cmd("EHLO after.tls.example")
    assert rep.code == 250, rep
    assert len(rep.lines) > 1 and rep.lines[0].split(" ")[0] == HOSTNAME, \
        "first reply in TLS is not the EHLO reply (injected RSET answered?): %r" % rep
    assert "STARTTLS" not in ehlo_keywords(rep)
    rep = r.cmd("NOOP")
    assert rep.code == 250
    r.close()


def test_starttls_injection_of_mail_command(server):
    subject = unique("inject")
    r = server.session()
    r.send(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n")
    assert r.reply().code == 220
    r.starttls()
    assert r.cmd("EHLO after.tls.example").code == 250
    # The injected MAIL did not open a transaction.
    rep = r.cmd("RCPT TO:<shiroyagi@example.com>")
    assert (rep.code, rep.enh) == (503, "5.5.1"), rep
    r.close()


def test_starttls_forgets_the_session(server):
    r = server.session()
    assert r.cmd("MAIL FROM:<before@example.org>").code == 250
    assert r.cmd("STARTTLS").code == 220
    r.starttls()
    # RFC 3207 4.2: the server discards what it knew, EHLO included.
    rep = r.cmd("MAIL FROM:<after@example.org>")
    assert (rep.code, rep.enh) == (503, "5.5.1"), rep
    assert r.cmd("EHLO again.example").code == 250
    rep = r.cmd("RCPT TO:<shiroyagi@example.com>")
    assert (rep.code, rep.enh) == (503, "5.5.1"), rep
    assert r.cmd("MAIL FROM:<after@example.org>").code == 250
    r.close()


def test_starttls_twice(server):
    r = server.session()
    assert r.cmd("STARTTLS").code == 220
    r.starttls()
    assert r.cmd("EHLO x.example").code == 250
    rep = r.cmd("STARTTLS")
    assert 500 <= rep.code < 600, rep
    assert r.cmd("NOOP").code == 250
    r.close()


def test_starttls_with_parameter(smtp_session):
    rep = smtp_session.cmd("STARTTLS now")
    assert rep.code == 501, rep
    assert smtp_session.cmd("NOOP").code == 250


def test_starttls_in_transaction_then_message(server):
    subject = unique("tlsraw")
    r = server.session()
    assert r.cmd("STARTTLS").code == 220
    r.starttls()
    assert r.cmd("EHLO tls.client.example").code == 250
    msg = make_msg(subject, body=b"..dotted\r\n" + b"z" * 70000 + b"\r\n")
    rep = send_data(r, "tls@example.org", ["kuroyagi@example.com"], msg)
    assert rep.code == 250, rep
    r.close()
    (row, stored), = server.find_mail("kuroyagi@example.com", subject)
    fields, rest = split_stored(stored)
    assert rest == msg
    assert "tls.client.example" in fields[2].decode()
    assert "TLS" in fields[2].decode()


def test_plaintext_received_does_not_claim_tls(server):
    subject = unique("plain")
    r = server.session()
    assert send_data(r, "p@example.org", ["kuroyagi@example.com"], make_msg(subject)).code == 250
    r.close()
    (row, stored), = server.find_mail("kuroyagi@example.com", subject)
    assert "TLS" not in split_stored(stored)[0][2].decode()


def test_tls_garbage_handshake(server):
    # A broken handshake closes that connection only.
    r = server.session()
    assert r.cmd("STARTTLS").code == 220
    r.send(b"\x16\x03\x01\x00\x05hello-not-tls\r\n" * 4)
    assert r.is_closed(timeout=5, drain=True)
    r.close()
    r = server.session()
    assert r.cmd("NOOP").code == 250
    r.close()
