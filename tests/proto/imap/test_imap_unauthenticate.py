"""UNAUTHENTICATE (RFC 8437): back to the not authenticated state on the
same connection, plain or TLS, with everything of the first user gone."""

import imaptest
from test_imap_compress import ZIMAP


def caps(c):
    return set(imaptest.parse_caps(c.ok("CAPABILITY").lines("CAPABILITY")[0]))


def test_3_advertised_once_authenticated(imap):
    c = imap()
    assert "UNAUTHENTICATE" not in caps(c)
    # 3: BAD, never NO, where it is not allowed.
    assert c.cmd("UNAUTHENTICATE").status == "BAD"
    r = c.login()
    assert "UNAUTHENTICATE" in imaptest.parse_caps(r.text)
    assert "UNAUTHENTICATE" in caps(c)
    assert c.cmd("UNAUTHENTICATE now").status == "BAD"


def test_3_back_to_not_authenticated(mailbox, server, imap):
    mailbox.fill(2)
    other = imaptest.new_user(server, "other")
    c = mailbox.session(select=None)
    c.ok("ENABLE QRESYNC UTF8=ACCEPT")
    c.ok("SELECT INBOX")
    c.ok("SEARCH RETURN (SAVE) ALL")
    r = c.ok("UNAUTHENTICATE")
    # 3: the mailbox is closed without expunge events.
    assert r.untagged == [], r
    # Not authenticated: the commands of the other states are BAD, the
    # capabilities are those before login again.
    for cmd in ("FETCH 1 FLAGS", "SELECT INBOX", "LIST \"\" *", "NOOP"):
        r = c.cmd(cmd)
        assert r.status == ("OK" if cmd == "NOOP" else "BAD"), (cmd, r)
    now = caps(c)
    assert "AUTH=PLAIN" in now and "UNAUTHENTICATE" not in now, now
    # Another user on the same connection sees only their own mail.
    c.login(other)
    # 4.1: what ENABLE turned on is off (it is enabled anew), "$" is empty.
    r = c.ok("ENABLE QRESYNC UTF8=ACCEPT")
    assert r.lines("ENABLED") == ["ENABLED QRESYNC UTF8=ACCEPT"], r
    r = c.ok("SELECT INBOX")
    assert "* 0 EXISTS" in [x.text for x in r.untagged], r
    assert c.ok("SEARCH $").lines("SEARCH") == ["SEARCH"]
    c.ok("UNAUTHENTICATE")
    c.login(mailbox.user)
    r = c.ok("SELECT INBOX")
    assert "* 2 EXISTS" in [x.text for x in r.untagged], r
    # Without ENABLE, no HIGHESTMODSEQ in SELECT (CONDSTORE is off, 4.1).
    assert not [x for x in r.untagged if b"HIGHESTMODSEQ" in x.raw], r


def test_3_pipelined_with_login_and_tls(mailbox, server, imap):
    """3: without a SASL layer the client may send UNAUTHENTICATE and the
    next login together; TLS stays."""
    other = imaptest.new_user(server, "pipe")
    c = imap(tls=True)
    c.login(mailbox.user)
    c.send('a1 UNAUTHENTICATE\r\na2 LOGIN "%s" "%s"\r\na3 CAPABILITY\r\n'
           % (other, imaptest.PASSWORD))
    assert c.read_until_tagged("a1").status == "OK"
    assert c.read_until_tagged("a2").status == "OK"
    r = c.read_until_tagged("a3")
    got = set(imaptest.parse_caps(r.lines("CAPABILITY")[0]))
    # Over TLS from the start: no STARTTLS to offer.
    assert "UNAUTHENTICATE" in got and "STARTTLS" not in got, got
    r = c.ok("STATUS INBOX (MESSAGES)")
    assert r.lines("STATUS") == ['STATUS "INBOX" (MESSAGES 0)'], r


def test_not_offered_under_compress(mailbox, server):
    """The DEFLATE layer cannot be taken off: under COMPRESS the command is
    not advertised and is BAD (RFC 8437 3); the session goes on."""
    c = ZIMAP(server)
    c.login(mailbox.user, imaptest.PASSWORD)
    c.compress()
    assert "UNAUTHENTICATE" not in caps(c)
    assert c.cmd("UNAUTHENTICATE").status == "BAD"
    c.ok("SELECT INBOX")
    c.close()
