"""IMAP sessions (RFC 9051 / RFC 3501): greeting and capabilities, LOGIN
with quoted strings and literals (RFC 7888 LITERAL+), AUTHENTICATE
(PLAIN, LOGIN, SCRAM-SHA-256; RFC 4959 SASL-IR), STARTTLS and implicit
TLS, the commands of any state, and bad input."""

import base64
import imaplib
import socket

import pytest

import imaptest
import yubintest
from imaptest import AUTH_CAPS, BASE_CAPS, PASSWORD, USER, b64, parse_caps


# ---- greeting and capabilities ----

def test_greeting_lists_capabilities(imap):
    c = imap()
    g = c.greeting.text
    assert g.startswith("* OK [CAPABILITY "), g
    caps = set(parse_caps(g))
    assert BASE_CAPS <= caps, BASE_CAPS - caps
    # Loopback and plaintext_auth = loopback: clear-text auth is allowed.
    assert AUTH_CAPS <= caps
    assert "STARTTLS" in caps
    assert "LOGINDISABLED" not in caps
    # The CAPABILITY command says the same.
    r = c.ok("CAPABILITY")
    assert len(r.lines("CAPABILITY")) == 1
    assert set(parse_caps(r.lines("CAPABILITY")[0])) == caps


def test_capabilities_after_login(imap):
    c = imap()
    r = c.login()
    assert r.text.startswith("OK [CAPABILITY "), r.text
    caps = set(parse_caps(r.text))
    assert BASE_CAPS <= caps
    # STARTTLS and AUTHENTICATE are not valid any more.
    assert "STARTTLS" not in caps
    assert not [x for x in caps if x.startswith("AUTH=")]
    assert "LOGINDISABLED" not in caps
    r = c.ok("CAPABILITY")
    assert set(parse_caps(r.lines("CAPABILITY")[0])) == caps


def test_imaplib_login_select_logout(server):
    deliver_one(server, "imaplib")
    m = imaplib.IMAP4("127.0.0.1", server.listener_port("imap"))
    try:
        assert "IMAP4REV1" in m.capabilities
        typ, _ = m.login(USER, PASSWORD)
        assert typ == "OK"
        typ, data = m.select("INBOX")
        assert typ == "OK" and int(data[0]) >= 1
        typ, data = m.fetch("1", "(UID RFC822.SIZE)")
        assert typ == "OK" and b"RFC822.SIZE" in data[0]
    finally:
        typ, _ = m.logout()
    assert typ == "BYE"


def deliver_one(inst, marker, rcpt=USER):
    imaptest.deliver(inst, yubintest.make_msg(yubintest.unique(marker), to=rcpt), rcpt=rcpt)


# ---- LOGIN ----

def test_login_wrong_password_then_right(imap):
    c = imap()
    r = c.cmd('LOGIN %s "not the password"' % USER)
    assert r.status == "NO" and r.text.startswith("NO [AUTHENTICATIONFAILED]"), r
    r = c.cmd('LOGIN nobody@example.com "%s"' % PASSWORD)
    assert r.text.startswith("NO [AUTHENTICATIONFAILED]"), r
    # Still not authenticated.
    r = c.cmd("SELECT INBOX")
    assert r.status == "BAD", r
    c.login()
    c.select()


def test_login_quoted_strings_with_escapes(server, imap):
    user = "q-%s@example.com" % yubintest.unique("u")
    pw = 'a "quoted" pass\\word'
    server.add_user(user, pw)
    c = imap()
    r = c.cmd('LOGIN "%s" "%s"' % (user, 'a \\"quoted\\" pass\\\\word'))
    assert r.status == "OK", r
    c2 = imap()
    # The same password without the escapes is another password.
    r = c2.cmd('LOGIN "%s" "%s"' % (user, 'a \\"quoted\\" pass\\word'))
    assert r.status in ("NO", "BAD"), r


def test_login_atom_user(imap):
    c = imap()
    r = c.cmd('LOGIN %s "%s"' % (USER, PASSWORD))
    assert r.status == "OK", r


def test_login_synchronizing_literals(imap):
    c = imap()
    user, pw = USER.encode(), PASSWORD.encode()
    c.send(b"a1 LOGIN {%d}\r\n" % len(user))
    cont = c.line()
    assert cont.startswith(b"+"), cont
    c.send(user + b" {%d}\r\n" % len(pw))
    cont = c.line()
    assert cont.startswith(b"+"), cont
    c.send(pw + b"\r\n")
    r = c.read_until_tagged("a1")
    assert r.status == "OK", r
    assert r.untagged == []


def test_synchronizing_literal_waits_for_the_client(imap):
    """The server asks for the literal and waits: nothing else happens
    until the client sends it (RFC 9051 4.3)."""
    c = imap()
    c.send(b"a1 LOGIN {%d}\r\n" % len(USER))
    assert c.line().startswith(b"+")
    assert c.nothing_pending(0.3)
    c.send(USER.encode() + b' "%s"\r\n' % PASSWORD.encode())
    assert c.read_until_tagged("a1").status == "OK"


def test_login_empty_synchronizing_literal_still_gets_continuation(imap):
    """RFC 9051 4.3: even {0} waits for the continuation request."""
    c = imap()
    c.send(b"a1 LOGIN %s {0}\r\n" % USER.encode())
    assert c.line().startswith(b"+")
    c.send(b"\r\n")
    r = c.read_until_tagged("a1")
    assert r.text.startswith("NO [AUTHENTICATIONFAILED]"), r


def test_login_non_synchronizing_literals(imap):
    c = imap()
    user, pw = USER.encode(), PASSWORD.encode()
    # Everything in one write; no continuation request may come.
    c.send(b"a1 LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(user), user, len(pw), pw))
    r = c.read_until_tagged("a1")
    assert r.status == "OK", r
    assert r.untagged == [], r


def test_login_literal_with_space_and_crlf_in_password(server, imap):
    user = "lit-%s@example.com" % yubintest.unique("u")
    pw = "two words"
    server.add_user(user, pw)
    c = imap()
    c.send(b'a1 LOGIN "%s" {%d+}\r\n%s\r\n' % (user.encode(), len(pw), pw.encode()))
    assert c.read_until_tagged("a1").status == "OK"


def test_login_syntax_errors(imap):
    c = imap()
    assert c.cmd("LOGIN").status == "BAD"
    assert c.cmd("LOGIN %s" % USER).status == "BAD"
    assert c.cmd('LOGIN %s "%s" extra' % (USER, PASSWORD)).status == "BAD"
    c.login()


def test_login_twice_is_bad(imap):
    c = imap()
    c.login()
    r = c.cmd('LOGIN %s "%s"' % (USER, PASSWORD))
    assert r.status == "BAD", r


# ---- AUTHENTICATE ----

def test_authenticate_plain_with_initial_response(imap):
    c = imap()
    r = c.cmd("AUTHENTICATE PLAIN " + yubintest.sasl_plain(USER, PASSWORD))
    assert r.status == "OK", r
    assert r.text.startswith("OK [CAPABILITY "), r
    assert r.untagged == []
    c.select()


def test_authenticate_plain_without_initial_response(imap):
    c = imap()
    c.send(b"a1 AUTHENTICATE PLAIN\r\n")
    cont = c.line()
    # An empty challenge: "+ " (RFC 9051 7.6, resp-text may be empty).
    assert cont in (b"+ \r\n", b"+\r\n"), cont
    c.send(yubintest.sasl_plain(USER, PASSWORD).encode() + b"\r\n")
    r = c.read_until_tagged("a1")
    assert r.status == "OK", r
    assert r.text.startswith("OK [CAPABILITY ")


def test_authenticate_plain_wrong_password(imap):
    c = imap()
    r = c.cmd("AUTHENTICATE PLAIN " + yubintest.sasl_plain(USER, "wrong"))
    assert r.text.startswith("NO [AUTHENTICATIONFAILED]"), r
    assert c.cmd("SELECT INBOX").status == "BAD"
    c.login()


def test_authenticate_plain_authzid_of_another_user_refused(imap):
    c = imap()
    r = c.cmd("AUTHENTICATE PLAIN " +
              yubintest.sasl_plain(USER, PASSWORD, authzid=imaptest.USER2))
    assert r.status == "NO", r


def test_authenticate_login_mechanism(imap):
    c = imap()
    c.send(b"a1 AUTHENTICATE LOGIN\r\n")
    ch = c.line()
    assert ch.startswith(b"+ "), ch
    c.send(b64(USER).encode() + b"\r\n")
    ch = c.line()
    assert ch.startswith(b"+ "), ch
    c.send(b64(PASSWORD).encode() + b"\r\n")
    r = c.read_until_tagged("a1")
    assert r.status == "OK", r
    c.select()


def test_authenticate_cancel(imap):
    c = imap()
    c.send(b"a1 AUTHENTICATE PLAIN\r\n")
    assert c.line().startswith(b"+")
    c.send(b"*\r\n")
    r = c.read_until_tagged("a1")
    assert r.status == "BAD", r
    # Back to normal commands, still not authenticated.
    assert c.cmd("SELECT INBOX").status == "BAD"
    c.login()


def test_authenticate_bad_base64(imap):
    c = imap()
    c.send(b"a1 AUTHENTICATE PLAIN\r\n")
    assert c.line().startswith(b"+")
    c.send(b"!!!not base64!!!\r\n")
    r = c.read_until_tagged("a1")
    assert r.status in ("BAD", "NO"), r
    assert c.cmd("NOOP").status == "OK"
    c.login()


def test_authenticate_unknown_mechanism(imap):
    c = imap()
    r = c.cmd("AUTHENTICATE X-UNKNOWN")
    assert r.status in ("NO", "BAD"), r
    assert r.untagged == []
    c.login()


def scram_exchange(c, user=USER, password=PASSWORD, ir=False, tamper=False):
    """Runs AUTHENTICATE SCRAM-SHA-256; returns (client, tagged result,
    server-final message or None)."""
    cl = yubintest.ScramSha256(user, password)
    first = b64(cl.client_first())
    if ir:
        c.send(b"a1 AUTHENTICATE SCRAM-SHA-256 " + first.encode() + b"\r\n")
    else:
        c.send(b"a1 AUTHENTICATE SCRAM-SHA-256\r\n")
        assert c.line() in (b"+ \r\n", b"+\r\n")
        c.send(first.encode() + b"\r\n")
    ch = c.line()
    assert ch.startswith(b"+ "), ch
    server_first = base64.b64decode(ch[2:].strip(), validate=True)
    c.send(b64(cl.client_final(server_first, proof_tamper=tamper)).encode() + b"\r\n")
    line = c.line()
    final = None
    if line.startswith(b"+ "):
        final = base64.b64decode(line[2:].strip(), validate=True)
        c.send(b"\r\n")
        r = c.read_until_tagged("a1")
    else:
        c.buf = line + c.buf
        r = c.read_until_tagged("a1")
    return cl, r, final


def test_authenticate_scram_sha_256(imap):
    c = imap()
    cl, r, final = scram_exchange(c)
    assert final is not None, r
    assert cl.check_server_final(final), "server signature does not match: %r" % final
    assert r.status == "OK", r
    assert r.text.startswith("OK [CAPABILITY ")
    c.select()


def test_authenticate_scram_sha_256_initial_response(imap):
    c = imap()
    cl, r, final = scram_exchange(c, ir=True)
    assert final is not None and cl.check_server_final(final)
    assert r.status == "OK", r


def test_authenticate_scram_wrong_password(imap):
    c = imap()
    _, r, final = scram_exchange(c, password="not the password")
    assert r.text.startswith("NO [AUTHENTICATIONFAILED]"), r
    # A server that does not know... proves nothing either.
    assert final is None or not final.startswith(b"v=")
    c.login()


def test_authenticate_scram_tampered_proof(imap):
    c = imap()
    _, r, _ = scram_exchange(c, tamper=True)
    assert r.text.startswith("NO [AUTHENTICATIONFAILED]"), r


# ---- TLS ----

def test_starttls_then_login(imap):
    c = imap()
    c.starttls()
    r = c.ok("CAPABILITY")
    caps = set(parse_caps(r.lines("CAPABILITY")[0]))
    assert "STARTTLS" not in caps
    assert AUTH_CAPS <= caps
    assert c.cmd("STARTTLS").status == "BAD"
    c.login()
    c.select()


def test_imaplib_starttls(server):
    m = imaplib.IMAP4("127.0.0.1", server.listener_port("imap"))
    try:
        typ, _ = m.starttls(yubintest.client_tls_context())
        assert typ == "OK"
        assert "STARTTLS" not in m.capabilities
        assert m.login(USER, PASSWORD)[0] == "OK"
    finally:
        m.logout()


def test_implicit_tls(imap):
    c = imap(tls=True)
    caps = set(parse_caps(c.greeting.text))
    assert "STARTTLS" not in caps
    assert AUTH_CAPS <= caps
    c.login()
    c.select()


def test_imaplib_implicit_tls(server):
    m = imaplib.IMAP4_SSL("127.0.0.1", server.listener_port("imaps"),
                          ssl_context=yubintest.client_tls_context())
    try:
        assert m.login(USER, PASSWORD)[0] == "OK"
        assert m.select("INBOX")[0] == "OK"
    finally:
        m.logout()


def test_starttls_injection_is_not_run(imap):
    """Commands sent with STARTTLS before the handshake are dropped
    (RFC 9051 6.2.1, RFC 3207 4.2 / CVE-2011-0411 class)."""
    c = imap()
    c.send(b"a STARTTLS\r\nb LOGIN %s \"%s\"\r\n" % (USER.encode(), PASSWORD.encode()))
    r = c.read_until_tagged("a")
    assert r.status == "OK", r
    assert c.buf == b"", "bytes before the handshake: %r" % c.buf
    c.sock = yubintest.client_tls_context().wrap_socket(
        c.sock, server_hostname=yubintest.HOSTNAME)
    # Not logged in; "b" never answered.
    r = c.cmd("SELECT INBOX", tag="c")
    assert r.status == "BAD", r
    assert not [u for u in r.untagged if u.raw.startswith(b"b ")]
    r = c.cmd("CAPABILITY", tag="d")
    assert "AUTH=PLAIN" in parse_caps(r.lines("CAPABILITY")[0])
    c.login()


@pytest.fixture(scope="module")
def tls_only(module_yubin_factory):
    """A server with [server] plaintext_auth = tls."""
    return imaptest.make_server(module_yubin_factory, server={"plaintext_auth": "tls"})


def test_plaintext_auth_tls_logindisabled(tls_only, imap):
    c = imap(inst=tls_only)
    caps = set(parse_caps(c.greeting.text))
    assert "LOGINDISABLED" in caps
    assert "STARTTLS" in caps
    assert not [x for x in caps if x.startswith("AUTH=")]
    r = c.cmd('LOGIN %s "%s"' % (USER, PASSWORD))
    assert r.text.startswith("NO [PRIVACYREQUIRED]"), r
    r = c.cmd("AUTHENTICATE PLAIN " + yubintest.sasl_plain(USER, PASSWORD))
    assert r.text.startswith("NO [PRIVACYREQUIRED]"), r
    # No continuation for a mechanism without initial response either.
    r = c.cmd("AUTHENTICATE PLAIN")
    assert r.text.startswith("NO [PRIVACYREQUIRED]"), r
    assert r.untagged == []
    c.starttls()
    r = c.ok("CAPABILITY")
    caps = set(parse_caps(r.lines("CAPABILITY")[0]))
    assert "LOGINDISABLED" not in caps and "STARTTLS" not in caps
    assert AUTH_CAPS <= caps
    c.login()
    c.select()


def test_plaintext_auth_tls_implicit_tls_allows_login(tls_only, imap):
    c = imap(inst=tls_only, tls=True)
    caps = set(parse_caps(c.greeting.text))
    assert "LOGINDISABLED" not in caps and AUTH_CAPS <= caps
    c.login()


# ---- commands of any state ----

def test_noop_before_and_after_login(imap):
    c = imap()
    r = c.cmd("NOOP")
    assert r.status == "OK" and r.untagged == []
    c.login()
    assert c.cmd("NOOP").status == "OK"


def test_command_names_are_case_insensitive(imap):
    c = imap()
    assert c.cmd("noop").status == "OK"
    assert c.cmd("CaPaBiLiTy").status == "OK"
    assert c.cmd('login %s "%s"' % (USER, PASSWORD)).status == "OK"
    assert c.cmd("select inbox").status == "OK"


def test_id(imap):
    c = imap()
    r = c.cmd("ID NIL")
    assert r.status == "OK", r
    ids = r.lines("ID")
    assert len(ids) == 1 and ids[0].startswith("ID ("), ids
    assert '"name"' in ids[0].lower()
    r = c.cmd('ID ("name" "pytest" "version" "1.0")')
    assert r.status == "OK" and len(r.lines("ID")) == 1
    c.login()
    assert c.cmd("ID NIL").status == "OK"


def test_enable(imap):
    c = imap()
    assert c.cmd("ENABLE CONDSTORE").status == "BAD"   # not before login
    c.login()
    r = c.cmd("ENABLE CONDSTORE UTF8=ACCEPT X-UNKNOWN")
    assert r.status == "OK", r
    # Unknown names are ignored; ENABLED lists what was turned on.
    assert r.lines("ENABLED") == ["ENABLED CONDSTORE UTF8=ACCEPT"], r
    # Again: nothing new, an ENABLED response with an empty list.
    r = c.ok("ENABLE UTF8=ACCEPT")
    assert [l.rstrip() for l in r.lines("ENABLED")] == ["ENABLED"], r
    assert c.cmd("ENABLE").status == "BAD"
    assert c.cmd('ENABLE "IMAP4rev2"').status == "BAD"
    # Only before a mailbox is selected (RFC 5161 3.1).
    c.ok("SELECT INBOX")
    assert c.cmd("ENABLE IMAP4rev2").status == "BAD"


def test_namespace(imap):
    c = imap()
    assert c.cmd("NAMESPACE").status == "BAD"
    c.login()
    r = c.cmd("NAMESPACE")
    assert r.status == "OK"
    assert r.lines("NAMESPACE") == ['NAMESPACE (("" "/")) NIL NIL'], r


def test_logout_bye_then_ok_then_close(imap):
    c = imap()
    c.login()
    r = c.cmd("LOGOUT")
    assert r.status == "OK", r
    assert [u.text.split(" ")[1] for u in r.untagged] == ["BYE"], r
    assert c.is_closed()


def test_logout_before_login(imap):
    c = imap()
    r = c.cmd("LOGOUT")
    assert r.status == "OK" and r.lines("BYE")
    assert c.is_closed()


# ---- bad input ----

def test_unknown_command(imap):
    c = imap()
    r = c.cmd("FROBNICATE now")
    assert r.status == "BAD", r
    c.login()
    assert c.cmd("XYZZY").status == "BAD"
    assert c.cmd("NOOP").status == "OK"


@pytest.mark.parametrize("cmd", ["SELECT INBOX", "EXAMINE INBOX", "LIST \"\" *",
                                 "STATUS INBOX (MESSAGES)", "IDLE", "FETCH 1 FLAGS",
                                 "STORE 1 +FLAGS (\\Seen)", "EXPUNGE", "CLOSE",
                                 "UNSELECT", "UID FETCH 1 FLAGS"])
def test_commands_before_login_are_bad(imap, cmd):
    c = imap()
    r = c.cmd(cmd)
    assert r.status == "BAD", r
    assert r.untagged == []


@pytest.mark.parametrize("cmd", ["FETCH 1 FLAGS", "STORE 1 +FLAGS (\\Seen)", "EXPUNGE",
                                 "CLOSE", "UNSELECT", "UID FETCH 1:* FLAGS",
                                 "UID EXPUNGE 1", "STARTTLS", "AUTHENTICATE PLAIN"])
def test_commands_in_the_wrong_state_are_bad(imap, cmd):
    c = imap()
    c.login()
    r = c.cmd(cmd)
    assert r.status == "BAD", r
    assert r.untagged == []
    assert c.cmd("NOOP").status == "OK"


@pytest.mark.parametrize("line", [
    b"a1 SELECT (INBOX\r\n",                        # unbalanced (
    b"a1 FETCH 1 (FLAGS UID))\r\n",                 # unbalanced )
    b'a1 LOGIN "unterminated\r\n',
    b'a1 LOGIN "bad \\q escape" x\r\n',
    b"a1 LOGIN {3x}\r\n",                           # bad literal
    b"a1 NOOP  \r\n",                               # double space
    b"a1 LOGIN user\x00name pw\r\n",
])
def test_malformed_line_is_bad_and_session_goes_on(imap, line):
    c = imap()
    c.send(line)
    r = c.read_until_tagged("a1")
    assert r.status == "BAD", r
    assert c.cmd("NOOP").status == "OK"
    c.login()
    r = c.select()
    assert r.status == "OK"


def test_malformed_lines_after_login(imap):
    c = imap()
    c.login()
    c.select()
    c.send(b"b1 FETCH 1 (FLAGS\r\n")
    assert c.read_until_tagged("b1").status == "BAD"
    c.send(b"b2 STORE 1 +FLAGS (\\Seen\r\n")
    assert c.read_until_tagged("b2").status == "BAD"
    assert c.cmd("NOOP").status == "OK"


def test_line_without_tag_is_untagged_bad(imap):
    c = imap()
    c.send(b"\r\n")             # an empty line is ignored
    c.send(b"(\r\n")
    r = c.response()
    assert r.raw.startswith(b"* BAD"), r      # no tag to echo
    assert c.cmd("NOOP").status == "OK"


def test_literal_too_big_for_login(imap):
    c = imap()
    c.send(b"a1 LOGIN {70000}\r\n")
    line = c.line()
    assert not line.startswith(b"+"), "asked for a 70000-byte LOGIN literal: %r" % line
    assert line.startswith(b"a1 NO [TOOBIG]"), line
    # The client never sends it; the session goes on.
    assert c.cmd("NOOP").status == "OK"
    c.login()


def test_non_synchronizing_literal_too_big_is_skipped(imap):
    """A refused {n+} literal's bytes are read and thrown away, never
    taken as commands."""
    c = imap()
    junk = b"x1 LOGIN %s \"%s\"\r\n" % (USER.encode(), PASSWORD.encode())
    junk = junk * (70000 // len(junk) + 1)
    c.send(b"a1 LOGIN {%d+}\r\n" % len(junk) + junk + b" pw\r\n")
    r = c.read_until_tagged("a1")
    assert r.status in ("NO", "BAD") and "TOOBIG" in r.text, r
    r = c.cmd("SELECT INBOX", tag="a2")
    assert r.status == "BAD", "a literal's bytes were run as commands: %r" % r
    assert not [u for u in r.untagged if u.raw.startswith(b"x1 ")]


def test_too_many_errors_closes_the_session(imap):
    c = imap()
    c.login()
    for i in range(4):
        r = c.cmd("BOGUS%d" % i)
        assert r.status == "BAD"
    assert c.cmd("NOOP").status == "OK"
    c.send(b"z BOGUS\r\n")
    lines = []
    try:
        while True:
            lines.append(c.line())
    except (EOFError, ConnectionResetError, socket.timeout):
        pass
    assert lines and lines[0].startswith(b"z BAD"), lines
    assert any(l.startswith(b"* BYE") for l in lines[1:]), lines
    assert c.is_closed()


def test_errors_count_per_session(imap):
    a = imap()
    for i in range(3):
        assert a.cmd("BOGUS").status == "BAD"
    b = imap()
    for i in range(3):
        assert b.cmd("BOGUS").status == "BAD"
    assert a.cmd("NOOP").status == "OK"
    assert b.cmd("NOOP").status == "OK"
