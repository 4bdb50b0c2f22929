"""IMAP APPEND (RFC 9051 6.3.12, RFC 4315 APPENDUID), small and large
(streamed to disk) messages, flags and internal dates."""

import imaplib
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
