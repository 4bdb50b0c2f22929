"""TLS on the submission ports: the plaintext_auth policy (RFC 8314 says
to prefer TLS; plaintext_auth = tls enforces it), protocol versions,
logging, STARTTLS command injection (RFC 3207 4.2, CVE-2011-0411), port
465 speaking TLS from the first byte (RFC 8314 3.3), certificate reload
on SIGHUP and certificate choice by SNI."""

import os
import re
import signal
import socket
import ssl
import time
import warnings

import pytest

import yubintest
from yubintest import HOSTNAME, PASSWORD, client_tls_context, sasl_plain, unique
from subtest import SHIRO, KURO, plain_session, starttls_session, tls_session, \
    ehlo_keywords, auth_plain, login, scram_auth, submit, msg_from, make_server, \
    subs_port, make_cert, cert_der, give_to_server, provision_small


def context(min_version=None, max_version=None):
    ctx = client_tls_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if min_version is not None:
            ctx.minimum_version = min_version
        if max_version is not None:
            ctx.maximum_version = max_version
    return ctx


def old_tls_context():
    """A client that offers TLS 1.0 and 1.1 only (skips if this OpenSSL
    cannot)."""
    try:
        ctx = context(ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot offer TLS 1.1 at all")
    return ctx


def wait_log(inst, pattern, since=0, timeout=5.0):
    """Log lines matching pattern among the lines after the first `since`."""
    deadline = time.monotonic() + timeout
    while True:
        lines = inst.log_text().splitlines()[since:]
        found = [l for l in lines if re.search(pattern, l)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def log_len(inst):
    return len(inst.log_text().splitlines())


@pytest.fixture(scope="module")
def server(module_yubin_factory):
    """A submission server with a few accounts only (quicker to set up)."""
    return make_server(module_yubin_factory, provision=provision_small)


# ---- plaintext_auth = tls ----

@pytest.fixture(scope="module")
def tls_only(module_yubin_factory):
    return make_server(module_yubin_factory, {"server": {"plaintext_auth": "tls"}},
                       provision=provision_small)


def test_policy_tls_no_auth_in_plaintext(tls_only):
    r = plain_session(tls_only)
    kw = ehlo_keywords(r.cmd("EHLO client.test.example"))
    assert "AUTH" not in kw, kw
    assert "STARTTLS" in kw, kw
    for line in ("AUTH PLAIN " + sasl_plain(SHIRO, PASSWORD), "AUTH LOGIN",
                 "AUTH SCRAM-SHA-256"):
        rep = r.cmd(line)
        assert (rep.code, rep.enh) == (538, "5.7.11"), (line, rep)
    rep = r.cmd("MAIL FROM:<%s>" % SHIRO)
    assert (rep.code, rep.enh) == (530, "5.7.0"), rep
    r.close()


def test_policy_tls_no_password_checked_in_plaintext(tls_only):
    # The refusal comes before any check: the log has no login attempt.
    since = log_len(tls_only)
    r = plain_session(tls_only)
    assert auth_plain(r, SHIRO).code == 538
    r.close()
    assert not wait_log(tls_only, r"event=auth(_failed)? ", since, timeout=0.3)


@pytest.mark.parametrize("connect", [starttls_session, tls_session],
                         ids=["587-starttls", "465"])
def test_policy_tls_auth_after_tls(tls_only, connect):
    r = connect(tls_only)
    kw = ehlo_keywords(r.cmd("EHLO client.test.example"))
    assert set(kw["AUTH"]) == {"PLAIN", "LOGIN", "SCRAM-SHA-256"}, kw
    assert auth_plain(r, SHIRO).code == 235
    subject = unique("tlsonly")
    assert submit(r, SHIRO, [KURO], msg_from(subject, SHIRO, to=KURO)).code == 250
    r.close()
    assert len(tls_only.find_mail(KURO, subject)) == 1


def test_policy_tls_scram_after_tls(tls_only):
    r = starttls_session(tls_only)
    rep, _c, server_final = scram_auth(r, SHIRO)
    assert server_final is not None and rep.code == 235, rep
    r.close()


def test_default_policy_allows_loopback(server):
    r = plain_session(server)
    assert "AUTH" in ehlo_keywords(r.cmd("EHLO client.test.example"))
    assert auth_plain(r, SHIRO).code == 235
    r.close()


# ---- versions and logging ----

@pytest.mark.parametrize("port", ["587", "465"])
def test_tls_1_1_refused(server, port):
    ctx = old_tls_context()
    with pytest.raises((ssl.SSLError, ConnectionResetError, EOFError, OSError)):
        if port == "587":
            r = plain_session(server)
            assert r.cmd("STARTTLS").code == 220
            r.starttls(ctx)
        else:
            r = server.raw(port=subs_port(server), tls=ctx)
        r.cmd("EHLO x.example")
    # The server is fine afterwards.
    r = tls_session(server)
    assert r.cmd("NOOP").code == 250
    r.close()


@pytest.mark.parametrize("version,name", [
    (ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
    (ssl.TLSVersion.TLSv1_3, "TLSv1.3"),
])
@pytest.mark.parametrize("port", ["587", "465"])
def test_tls_versions_and_log(server, port, version, name):
    ctx = context(version, version)
    since = log_len(server)
    if port == "587":
        r = starttls_session(server, context=ctx)
    else:
        r = tls_session(server, context=ctx)
    assert r.sock.version() == name
    cipher = r.sock.cipher()[0]
    assert login(r) is r
    r.close()
    lines = wait_log(server, r"event=tls ", since)
    assert lines, "no event=tls line for a %s session" % name
    assert any(re.search(r"\bsession=\S+ version=%s cipher=\S+" % re.escape(name), l)
               for l in lines), lines
    assert any(cipher in l for l in lines), (cipher, lines)


def test_tls_on_465_from_the_first_byte(server):
    """RFC 8314 3.3: no plaintext greeting on 465, and plaintext SMTP
    commands get no SMTP answer."""
    s = socket.create_connection(("127.0.0.1", subs_port(server)), timeout=5)
    s.settimeout(0.5)
    try:
        early = s.recv(100)
    except (socket.timeout, TimeoutError):
        early = b""
    assert not early.startswith(b"220"), early
    s.settimeout(5)
    got = early
    try:
        s.sendall(b"EHLO plain.example\r\n")
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    except (socket.timeout, TimeoutError):
        pytest.fail("server kept a non-TLS connection on 465 open")
    s.close()
    assert b"220" not in got and b"250" not in got, got


def test_starttls_not_offered_inside_tls(server):
    for r in (starttls_session(server), tls_session(server)):
        assert "STARTTLS" not in ehlo_keywords(r.cmd("EHLO x.example"))
        rep = r.cmd("STARTTLS")
        assert 400 <= rep.code < 600, rep
        assert r.cmd("NOOP").code == 250
        r.close()


# ---- STARTTLS command injection ----

def test_starttls_injection_of_auth(server):
    r = plain_session(server)
    # The AUTH arrives with STARTTLS, before the handshake: it must be
    # thrown away, not run (and not answered) inside TLS.
    r.send("STARTTLS\r\nAUTH PLAIN %s\r\n" % sasl_plain(SHIRO, PASSWORD))
    rep = r.reply()
    assert rep.code == 220, rep
    assert r.buf == b"", "plaintext after the 220: %r" % r.buf
    r.starttls()
    rep = r.cmd("EHLO after.tls.example")
    assert rep.code == 250 and rep.lines[0].split(" ")[0] == HOSTNAME, \
        "first reply in TLS is not the EHLO reply (injected AUTH answered?): %r" % rep
    rep = r.cmd("MAIL FROM:<%s>" % SHIRO)
    assert (rep.code, rep.enh) == (530, "5.7.0"), "injected AUTH took effect: %r" % rep
    # And the session can log in normally (no leftover exchange).
    assert auth_plain(r, SHIRO).code == 235
    r.close()


def test_starttls_injection_of_auth_exchange(server):
    # An injected AUTH PLAIN without initial response followed by the
    # response line: neither may be read as a 334 answer inside TLS.
    r = plain_session(server)
    r.send("STARTTLS\r\nAUTH PLAIN\r\n%s\r\n" % sasl_plain(SHIRO, PASSWORD))
    assert r.reply().code == 220
    r.starttls()
    rep = r.cmd("EHLO after.tls.example")
    assert rep.code == 250 and rep.lines[0].split(" ")[0] == HOSTNAME, rep
    rep = r.cmd("MAIL FROM:<%s>" % SHIRO)
    assert rep.code == 530, rep
    r.close()


# ---- certificate reload on SIGHUP ----

def peer_der(r):
    return r.sock.getpeercert(binary_form=True)


def test_sighup_reloads_certificate(yubin_factory):
    srv = make_server(yubin_factory, provision=provision_small)
    tls_dir = os.path.join(srv.dir, "tls")
    old_der = cert_der(os.path.join(tls_dir, "cert.pem"))

    before = tls_session(srv)
    assert peer_der(before) == old_der
    login(before)
    before_587 = starttls_session(srv)
    assert peer_der(before_587) == old_der

    # The server made tls/ (0750, root) before it dropped privileges; let
    # the unprivileged server reach the new files.
    os.chmod(tls_dir, 0o755)
    cert, key, new_der = make_cert(tls_dir, "new", "reloaded.test")
    os.replace(cert, os.path.join(tls_dir, "cert.pem"))
    os.replace(key, os.path.join(tls_dir, "key.pem"))
    assert new_der != old_der

    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while True:
        r = tls_session(srv)
        der = peer_der(r)
        r.close()
        if der == new_der or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert der == new_der, "465 still serves the old certificate after SIGHUP"
    r = starttls_session(srv)
    assert peer_der(r) == new_der, "587 still serves the old certificate after SIGHUP"
    r.close()
    # A client that trusts only the new certificate and checks the name.
    ctx = ssl.create_default_context(cafile=os.path.join(tls_dir, "cert.pem"))
    r = srv.raw(port=subs_port(srv), tls=ctx, server_hostname="reloaded.test")
    assert r.cmd("EHLO x.example").code == 250
    r.close()

    # Sessions opened before the reload go on, on the old certificate.
    assert srv.running()
    subject = unique("hup")
    rep = submit(before, SHIRO, [KURO], msg_from(subject, SHIRO, to=KURO))
    assert rep.code == 250, rep
    before.close()
    assert login(before_587).cmd("NOOP").code == 250
    before_587.close()
    assert len(srv.find_mail(KURO, subject)) == 1


def test_sighup_with_broken_certificate_keeps_serving(yubin_factory):
    srv = make_server(yubin_factory, provision=provision_small)
    tls_dir = os.path.join(srv.dir, "tls")
    old_der = cert_der(os.path.join(tls_dir, "cert.pem"))
    os.chmod(tls_dir, 0o755)
    with open(os.path.join(tls_dir, "cert.pem"), "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    # Readable by the server: the content is what is wrong.
    os.chmod(os.path.join(tls_dir, "cert.pem"), 0o644)
    give_to_server(os.path.join(tls_dir, "key.pem"))
    srv.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert srv.running(), srv.log()
    # Still TLS, still the certificate it had.
    r = tls_session(srv)
    assert peer_der(r) == old_der
    login(r)
    r.close()


# ---- SNI ----

def start_or_xfail(inst):
    try:
        inst.start()
    except AssertionError:
        if inst.exit_codes and inst.exit_codes[-1] == 2 and "tls_sni" in inst.log_text():
            pytest.xfail("[server] tls_sni is not accepted by the config yet")
        raise


def test_sni_picks_certificate(yubin_factory):
    inst = make_server(yubin_factory, start=False, provision=provision_small)
    tls_dir = os.path.join(inst.dir, "tls")
    os.makedirs(tls_dir, exist_ok=True)
    os.chmod(tls_dir, 0o755)
    cert_a, key_a, der_a = make_cert(tls_dir, "sni-a", "mail.sni-a.example")
    cert_b, key_b, der_b = make_cert(tls_dir, "sni-b", "smtp.sni-b.example")
    inst.cfg["server"]["tls_sni"] = "mail.sni-a.example %s %s" % (cert_a, key_a)
    text = yubintest.render_config(inst.cfg).replace(
        "tls_sni = mail.sni-a.example %s %s\n" % (cert_a, key_a),
        "tls_sni = mail.sni-a.example %s %s\ntls_sni = smtp.sni-b.example %s %s\n"
        % (cert_a, key_a, cert_b, key_b))
    inst.write_config(text)
    start_or_xfail(inst)
    default_der = cert_der(os.path.join(tls_dir, "cert.pem"))

    def der_465(name):
        r = inst.raw(port=subs_port(inst), tls=client_tls_context(), server_hostname=name)
        der = peer_der(r)
        assert r.cmd("EHLO x.example").code == 250
        r.close()
        return der

    def der_587(name):
        r = starttls_session(inst, server_hostname=name)
        der = peer_der(r)
        r.close()
        return der

    for get in (der_465, der_587):
        assert get("mail.sni-a.example") == der_a
        assert get("MAIL.SNI-A.EXAMPLE") == der_a          # names are case-insensitive
        assert get("smtp.sni-b.example") == der_b
        assert get(HOSTNAME) == default_der
        assert get("unknown.example") == default_der
        assert get(None) == default_der
    # A client that checks the name gets through with SNI.
    ctx = ssl.create_default_context(cafile=cert_a)
    r = inst.raw(port=subs_port(inst), tls=ctx, server_hostname="mail.sni-a.example")
    assert r.cmd("EHLO x.example").code == 250
    login(r)
    r.close()
