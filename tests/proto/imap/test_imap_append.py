"""IMAP APPEND (RFC 9051 6.3.12, RFC 4315 APPENDUID), small and large
(streamed to disk) messages, flags and internal dates."""

import imaplib
import re
import socket

import pytest

import yubintest

PASSWORD = "append-secret"


def _provision(inst):
    inst.add_domain("example.com")
    inst.add_user("ap@example.com", PASSWORD)


@pytest.fixture(scope="module")
def srv(module_yubin_factory):
    port = yubintest.free_port()
    inst = module_yubin_factory({"imap": {"listen": "127.0.0.1:%d" % port},
                                 "limits": {"auth_fail_delay": "0",
                                            "max_message_size": "4M"}},
                                provision=_provision)
    inst.imap_port = port
    return inst


def login(srv):
    m = imaplib.IMAP4("127.0.0.1", srv.imap_port)
    m.login("ap@example.com", PASSWORD)
    return m


def test_append_small_with_flags_and_date(srv):
    m = login(srv)
    msg = b"Subject: appended\r\nFrom: ap@example.com\r\n\r\nhello\r\n"
    typ, data = m.append("Sent", "(\\Seen $Sent)", '"07-Nov-2026 08:05:56 +0900"', msg)
    assert typ == "OK"
    code = data[0].decode()
    assert code.startswith("[APPENDUID ")
    uidvalidity, uid = code.split("]")[0].split()[1:]
    typ, st = m.status("Sent", "(UIDVALIDITY UIDNEXT)")
    assert ("UIDVALIDITY %s" % uidvalidity).encode() in st[0]
    m.select("Sent")
    typ, d = m.uid("FETCH", uid, "(FLAGS INTERNALDATE BODY.PEEK[])")
    head = d[0][0].decode()
    assert "\\Seen" in head and "$Sent" in head
    # 08:05:56 +0900 is 23:05:56 UTC the day before.
    assert '"06-Nov-2026 23:05:56 +0000"' in head
    assert d[0][1] == msg
    # Stored once, as is: the CLI sees the same bytes.
    rows = srv.mail_list("ap@example.com", "Sent")
    assert any(r.subject == "appended" for r in rows)
    m.logout()


def test_append_large_message_streamed(srv):
    m = login(srv)
    big = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 2000
    typ, data = m.append("Drafts", None, None, big)
    assert typ == "OK"
    m.select("Drafts")
    typ, d = m.fetch("1:*", "(RFC822.SIZE BODY.PEEK[])")
    last = [x for x in d if isinstance(x, tuple)][-1]
    assert last[1] == big
    assert ("RFC822.SIZE %d" % len(big)).encode() in last[0]
    m.logout()


def test_append_errors(srv):
    m = login(srv)
    typ, data = m.append("NoSuchBox", None, None, b"Subject: x\r\n\r\ny\r\n")
    assert typ == "NO" and b"TRYCREATE" in data[0]
    with pytest.raises(imaplib.IMAP4.error):
        m.append("INBOX", "(\\Bogus)", None, b"Subject: x\r\n\r\ny\r\n")
    with pytest.raises(imaplib.IMAP4.error):
        m.append("INBOX", None, '"99-Foo-2026 00:00:00 +0000"', b"Subject: x\r\n\r\ny\r\n")
    m.logout()


def test_append_too_big_is_refused_before_sending(srv):
    s = socket.create_connection(("127.0.0.1", srv.imap_port), timeout=10)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"a LOGIN ap@example.com %s\r\n" % PASSWORD.encode())
    assert f.readline().startswith(b"a OK")
    s.sendall(b"b APPEND INBOX {%d}\r\n" % (5 * 1024 * 1024))
    line = f.readline()
    assert line.startswith(b"b NO [TOOBIG]"), line
    s.sendall(b"c NOOP\r\n")
    assert f.readline().startswith(b"c OK")
    s.close()


def test_append_to_selected_mailbox_reports_exists(srv):
    m = login(srv)
    typ, data = m.select("INBOX")
    before = int(data[0])
    typ, data = m.append("INBOX", None, None, b"Subject: sel\r\n\r\nz\r\n")
    assert typ == "OK"
    assert m.untagged_responses.get("EXISTS", [b"0"])[-1] == str(before + 1).encode()
    m.logout()


# ---- MULTIAPPEND (RFC 3502) ----

class Raw:
    """A logged-in line-level client for commands imaplib cannot send."""

    def __init__(self, srv):
        self.s = socket.create_connection(("127.0.0.1", srv.imap_port), timeout=20)
        self.f = self.s.makefile("rb")
        self.f.readline()
        self.s.sendall(b"a LOGIN ap@example.com %s\r\n" % PASSWORD.encode())
        assert self.f.readline().startswith(b"a OK")

    def run(self, tag, data):
        """Sends data; returns (untagged lines, tagged line)."""
        self.s.sendall(data)
        untagged = []
        while True:
            line = self.f.readline()
            assert line, "connection closed"
            if line.startswith(tag + b" "):
                return untagged, line.rstrip(b"\r\n")
            untagged.append(line.rstrip(b"\r\n"))

    def status(self, box):
        _, t = self.run(b"s", b"s STATUS %s (MESSAGES UIDNEXT)\r\n" % box)
        return t

    def close(self):
        self.s.close()


def lit(msg):
    return b"{%d+}\r\n%s" % (len(msg), msg)


def msg(n, size=0):
    return b"Subject: multi %d\r\n\r\n" % n + b"x" * size + b"body\r\n"


def test_multiappend(srv):
    c = Raw(srv)
    c.run(b"c", b"c CREATE Multi\r\n")
    _, t = c.run(b"m", b"m APPEND Multi (\\Seen) " + lit(msg(1)) +
                 b' (\\Flagged $Work) "07-Nov-2026 08:05:56 +0900" ' + lit(msg(2)) +
                 b" " + lit(msg(3)) + b"\r\n")
    code = re.match(rb"^m OK \[APPENDUID (\d+) (\d+):(\d+)\] ", t)
    assert code, t
    assert int(code.group(3)) == int(code.group(2)) + 2
    m = login(srv)
    m.select("Multi")
    typ, d = m.fetch("1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
    got = [x for x in d if isinstance(x, tuple)]
    assert [x[1] for x in got] == [msg(1), msg(2), msg(3)]
    assert b"\\Seen" in got[0][0] and b"$Work" in got[1][0] and b"\\Flagged" in got[1][0]
    assert b'"06-Nov-2026 23:05:56 +0000"' in got[1][0]
    m.logout()
    c.close()


def test_multiappend_with_streamed_literals(srv):
    """Large messages go to body files while being read; several in one
    command each get their own."""
    c = Raw(srv)
    c.run(b"c", b"c CREATE Multi2\r\n")
    big1, big2 = msg(1, 200000), msg(2, 300000)
    _, t = c.run(b"m", b"m APPEND Multi2 " + lit(big1) + b" " + lit(msg(9)) + b" " +
                 lit(big2) + b"\r\n")
    assert re.match(rb"^m OK \[APPENDUID \d+ \d+:\d+\] ", t), t
    rows = srv.mail_list("ap@example.com", "Multi2")
    assert [r.size for r in rows] == [len(big1), len(msg(9)), len(big2)]
    assert srv.mail_show("ap@example.com", "Multi2", rows[2].uid) == big2
    c.close()


def test_multiappend_is_all_or_nothing(srv):
    c = Raw(srv)
    c.run(b"c", b"c CREATE Multi3\r\n")
    before = c.status(b"Multi3")
    # An empty message cancels the whole command (RFC 3502 6.3.11).
    _, t = c.run(b"m", b"m APPEND Multi3 " + lit(msg(1, 100000)) + b" " + lit(msg(2)) +
                 b" {0+}\r\n\r\n")
    assert t.startswith(b"m NO "), t
    # A bad flag in the third message: BAD, and nothing either.
    _, t = c.run(b"n", b"n APPEND Multi3 " + lit(msg(1, 100000)) + b" " + lit(msg(2)) +
                 b" (\\Bogus) " + lit(msg(3)) + b"\r\n")
    assert t.startswith(b"n BAD "), t
    # Flags without a message at the end.
    _, t = c.run(b"o", b"o APPEND Multi3 " + lit(msg(1)) + b" (\\Seen)\r\n")
    assert t.startswith(b"o BAD "), t
    # One message over the limit, announced after a streamed one.
    _, t = c.run(b"p", b"p APPEND Multi3 " + lit(msg(1, 100000)) +
                 b" {%d}\r\n" % (5 * 1024 * 1024))
    assert t.startswith(b"p NO [TOOBIG]"), t
    assert c.status(b"Multi3") == before
    assert srv.mail_list("ap@example.com", "Multi3") == []
    _, t = c.run(b"q", b"q NOOP\r\n")
    assert t.startswith(b"q OK"), t
    c.close()


def test_multiappend_to_selected_mailbox(srv):
    m = login(srv)
    m.create("Multi4")
    typ, data = m.select("Multi4")
    typ, data = m._simple_command("APPEND", "Multi4", "{%d+}\r\n%s {%d+}\r\n%s" % (
        len(msg(1)), msg(1).decode(), len(msg(2)), msg(2).decode()))
    assert typ == "OK", data
    assert m.untagged_responses.get("EXISTS", [b"0"])[-1] == b"2"
    m.logout()
