"""Non-synchronizing literals (RFC 7888): yubin advertises LITERAL+, never
LITERAL- with it (5: not both), so a {n+} literal over 4096 octets is
taken in any command (RFC 9051 4.3: "unless otherwise specified in an IMAP
extension"), up to the limits of the command."""

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
