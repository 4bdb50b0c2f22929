"""Non-synchronizing literals (RFC 7888). By default yubin advertises
LITERAL+, so a {n+} literal over 4096 octets is taken in any command (RFC
9051 4.3: "unless otherwise specified in an IMAP extension"), up to the
limits of the command. With `[limits] imap_literals = minus` it advertises
LITERAL- instead (5: never both): a {n+} literal over 4096 octets is
answered BAD [TOOBIG] and its octets skipped (4, choice 1); synchronizing
literals of any size work as ever."""

import pytest

import imaptest


def test_5_literal_plus_not_minus(imap):
    c = imap()
    for text in (c.greeting.text, c.login().text, c.ok("CAPABILITY").lines("CAPABILITY")[0]):
        caps = imaptest.parse_caps(text)
        assert "LITERAL+" in caps and "LITERAL-" not in caps, caps


def test_3_non_synchronizing_literal_over_4096(mailbox, server):
    body = "needle-%s " % ("x" * 20)
    mailbox.fill(1, body=body * 300 + "\r\n")
    c = mailbox.session()
    needle = (body * 200).encode()
    assert len(needle) > 4096
    # No "+" continuation comes: the whole command goes at once.
    c.send(b"a1 SEARCH TEXT {%d+}\r\n" % len(needle) + needle + b"\r\n")
    r = c.read_until_tagged("a1")
    assert r.status == "OK" and r.lines("SEARCH") == ["SEARCH 1"], r
    assert not [x for x in r.untagged if x.raw.startswith(b"+")], r
    absent = needle + b"zzz"
    c.send(b"a2 SEARCH TEXT {%d+}\r\n" % len(absent) + absent + b"\r\n")
    r = c.read_until_tagged("a2")
    assert r.status == "OK" and r.lines("SEARCH") == ["SEARCH"], r


# ---- LITERAL- ----

@pytest.fixture(scope="module")
def minus_server(module_yubin_factory):
    return imaptest.make_server(module_yubin_factory, imap_literals="minus")


def minus_session(inst):
    user = imaptest.new_user(inst, "lit")
    c = imaptest.RawIMAP(inst)
    return user, c


def message(size):
    head = b"From: a@example.org\r\nSubject: literal minus\r\n\r\n"
    return head + b"x" * (size - len(head) - 2) + b"\r\n"


def test_5_literal_minus_advertised_alone(minus_server):
    user, c = minus_session(minus_server)
    try:
        for text in (c.greeting.text, c.login(user).text,
                     c.ok("CAPABILITY").lines("CAPABILITY")[0]):
            caps = imaptest.parse_caps(text)
            assert "LITERAL-" in caps and "LITERAL+" not in caps, caps
    finally:
        c.close()


def test_5_literal_minus_up_to_4096_taken(minus_server):
    user, c = minus_session(minus_server)
    try:
        u, p = user.encode(), imaptest.PASSWORD.encode()
        c.send(b"a1 LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(u), u, len(p), p))
        assert c.read_until_tagged("a1").status == "OK"
        msg = message(4096)
        c.send(b"a2 APPEND INBOX {4096+}\r\n" + msg + b"\r\n")
        r = c.read_until_tagged("a2")
        assert r.status == "OK", r
        assert not [x for x in r.untagged if x.raw.startswith(b"+")], r
        assert len(minus_server.mail_list(user, "INBOX")) == 1
    finally:
        c.close()


def test_5_literal_minus_over_4096_bad_toobig(minus_server):
    user, c = minus_session(minus_server)
    try:
        c.login(user)
        msg = message(5000)
        # The octets come anyway: they are skipped, never read as commands
        # (the message holds a line that looks like one).
        msg = msg.replace(b"xxxxxxxxxx\r\n", b"\r\nz1 LOGOUT\r\n", 1)
        c.send(b"a1 APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        r = c.read_until_tagged("a1")
        assert r.text.startswith("BAD [TOOBIG] "), r
        assert not r.untagged, r
        # RFC 7888 5 / 4: the session goes on; nothing was stored.
        r = c.cmd("NOOP")
        assert r.status == "OK" and not r.untagged, r
        assert minus_server.mail_list(user, "INBOX") == []
        # The same message as a synchronizing literal is taken.
        c.send(b"a2 APPEND INBOX {%d}\r\n" % len(msg))
        assert c.line().startswith(b"+ ")
        c.send(msg + b"\r\n")
        assert c.read_until_tagged("a2").status == "OK"
        rows = minus_server.mail_list(user, "INBOX")
        assert len(rows) == 1
    finally:
        c.close()


def test_5_literal_minus_multiappend_second_too_big(minus_server):
    """RFC 7888 7: MULTIAPPEND as with LITERAL+; the first message is small,
    the second over 4096: the whole command is refused, nothing stored."""
    user, c = minus_session(minus_server)
    try:
        c.login(user)
        small, big = message(1000), message(6000)
        c.send(b"a1 APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s\r\n"
               % (len(small), small, len(big), big))
        r = c.read_until_tagged("a1")
        assert r.text.startswith("BAD [TOOBIG] "), r
        assert c.cmd("NOOP").status == "OK"
        assert minus_server.mail_list(user, "INBOX") == []
    finally:
        c.close()
