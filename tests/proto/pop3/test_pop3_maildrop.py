"""The maildrop over POP3: STAT, LIST, UIDL, RETR, TOP, DELE, RSET, QUIT
and the UPDATE state (RFC 1939), IN-USE (RFC 2449 8.1.2), UTF8 (RFC 6856),
and the bytes of messages: dot-stuffing, 8-bit, 10 MB."""

import hashlib
import re
import time

import pytest

import yubintest
from poptest import PASSWORD, RawPOP3, deliver, deliver_many, quit_ok, stat


@pytest.fixture
def user(server):
    """A new account of its own for the test (an empty INBOX)."""
    address = "%s@example.com" % yubintest.unique("pop")
    server.add_user(address)
    return address


def login(server, user, tls=False):
    c = RawPOP3(server, tls=tls)
    c.login(user)
    return c


def body_of(msg):
    return msg.split(b"\r\n\r\n", 1)[1]


def test_empty_mailbox(server, user):
    c = login(server, user)
    assert c.ok("STAT") == "+OK 0 0"
    assert c.lines("LIST")[1] == []
    assert c.lines("UIDL")[1] == []
    assert c.cmd("RETR 1").startswith("-ERR")
    assert c.cmd("TOP 1 0").startswith("-ERR")
    assert c.cmd("DELE 1").startswith("-ERR")
    assert c.ok("RSET").startswith("+OK")
    assert c.ok("NOOP").startswith("+OK")
    quit_ok(c)
    c.close()


def test_retr_is_the_stored_message_and_sizes_match(server, user):
    msgs = [yubintest.make_msg("m%d" % i, to=user, body="Body %d.\r\n" % i * (i + 1))
            for i in range(3)]
    deliver_many(server, msgs, rcpt=user)
    stored = [server.mail_show(user, "INBOX", r.uid) for r in server.mail_list(user)]
    c = login(server, user)
    n, size = stat(c)
    assert n == 3 and size == sum(len(m) for m in stored)
    _, listing = c.lines("LIST")
    assert listing == ["%d %d" % (i + 1, len(m)) for i, m in enumerate(stored)]
    for i, m in enumerate(stored):
        assert c.ok("LIST %d" % (i + 1)) == "+OK %d %d" % (i + 1, len(m))
        st, got = c.retr(i + 1)
        # RFC 1939: the size is the octets sent (before stuffing).
        assert st == "+OK %d octets" % len(m)
        assert got == m
        # What was sent over SMTP follows our trace fields, unchanged.
        trace, rest = yubintest.split_stored(got)
        assert rest == msgs[i]
    quit_ok(c)
    c.close()


def test_dot_stuffing(server, user):
    body = (b".\r\n..\r\n.leading dot\r\n...three\r\nmiddle . dot\r\n"
            b"\r\n.\r\nend\r\n.")
    msg = yubintest.make_msg("dots", to=user, body=body + b"\r\n")
    deliver(server, msg, rcpt=user)
    c = login(server, user)
    c.ok("RETR 1")
    raw = c.multiline_raw()
    # On the wire: every line that starts with "." has one more.
    assert b"\r\n..\r\n...\r\n..leading dot\r\n....three\r\nmiddle . dot\r\n" in raw
    assert raw.endswith(b"\r\nend\r\n..\r\n.\r\n")
    _, got = c.retr(1)
    assert got.endswith(body + b"\r\n")
    assert got == server.mail_show(user, "INBOX", server.mail_list(user)[0].uid)
    # TOP stuffs too.
    c.ok("TOP 1 3")
    raw = c.multiline_raw()
    assert raw.endswith(b"\r\n\r\n..\r\n...\r\n..leading dot\r\n.\r\n")
    quit_ok(c)
    c.close()


def test_8bit_body_byte_for_byte(server, user):
    body = bytes(range(0x80, 0x100)) + b"\r\n" + "日本語の本文\r\n".encode() + \
        b"\xff\xfe latin-1 \xe9\r\n"
    msg = yubintest.make_msg("8bit", to=user, body=body,
                             extra_headers=["Content-Type: text/plain; charset=utf-8",
                                            "Content-Transfer-Encoding: 8bit"])
    with server.smtp() as s:
        s.sendmail("alice@example.org", [user], msg, mail_options=["BODY=8BITMIME"])
    c = login(server, user)
    _, got = c.retr(1)
    assert got.endswith(b"\r\n\r\n" + body)
    assert yubintest.split_stored(got)[1] == msg
    quit_ok(c)
    c.close()


def test_top(server, user):
    body = b"".join(b"line %d\r\n" % i for i in range(1, 11))
    msg = yubintest.make_msg("top", to=user, body=body)
    deliver(server, msg, rcpt=user)
    c = login(server, user)
    _, full = c.retr(1)
    header = full.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    for n in (0, 1, 3, 10, 11, 1000):
        st = c.ok("TOP 1 %d" % n)
        assert st.startswith("+OK")
        got = c.multiline()
        assert got == header + b"".join(b"line %d\r\n" % i for i in range(1, min(n, 10) + 1)), n
    assert c.cmd("TOP 1").startswith("-ERR")
    assert c.cmd("TOP 1 x").startswith("-ERR")
    assert c.cmd("TOP 1 -1").startswith("-ERR")
    assert c.cmd("TOP 2 1").startswith("-ERR")
    quit_ok(c)
    c.close()


def test_top_of_message_without_body(server, user):
    # No empty line at all: the whole message is the header.
    deliver(server, b"Subject: no body\r\nFrom: a@example.org\r\n", rcpt=user)
    c = login(server, user)
    _, full = c.retr(1)
    c.ok("TOP 1 5")
    assert c.multiline() == full
    quit_ok(c)
    c.close()


def test_uidl_unique_and_stable(server, user):
    deliver_many(server, [yubintest.make_msg("u%d" % i, to=user) for i in range(4)],
                 rcpt=user)
    c = login(server, user)
    _, lines = c.lines("UIDL")
    ids = [l.split(" ", 1) for l in lines]
    assert [int(n) for n, _ in ids] == [1, 2, 3, 4]
    uids = [u for _, u in ids]
    assert len(set(uids)) == 4
    for u in uids:
        # RFC 1939 7: 1 to 70 characters from 0x21 to 0x7E.
        assert re.match(r"^[\x21-\x7e]{1,70}$", u)
        assert re.match(r"^\d+\.\d+$", u)
    uidvalidity = {u.split(".")[0] for u in uids}
    assert len(uidvalidity) == 1
    assert [int(u.split(".")[1]) for u in uids] == [r.uid for r in server.mail_list(user)]
    assert c.ok("UIDL 3") == "+OK 3 %s" % uids[2]
    c.ok("DELE 2")
    assert c.cmd("UIDL 2").startswith("-ERR")
    assert [l.split()[0] for l in c.lines("UIDL")[1]] == ["1", "3", "4"]
    quit_ok(c)
    c.close()
    deliver(server, yubintest.make_msg("u-new", to=user), rcpt=user)
    c = login(server, user)
    _, lines = c.lines("UIDL")
    after = [l.split(" ", 1)[1] for l in lines]
    # The ones left keep their ids; the new one has a new id.
    assert after[:3] == [uids[0], uids[2], uids[3]]
    assert after[3] not in uids
    quit_ok(c)
    c.close()


def test_dele_rset_quit(server, user):
    deliver_many(server, [yubintest.make_msg("d%d" % i, to=user) for i in range(3)],
                 rcpt=user)
    sizes = [r.size for r in server.mail_list(user)]
    c = login(server, user)
    assert c.ok("DELE 2") == "+OK Message 2 deleted"
    assert stat(c) == (2, sizes[0] + sizes[2])
    assert c.cmd("DELE 2").startswith("-ERR")
    assert c.cmd("RETR 2").startswith("-ERR")
    assert c.cmd("TOP 2 0").startswith("-ERR")
    assert c.cmd("LIST 2").startswith("-ERR")
    assert [l.split()[0] for l in c.lines("LIST")[1]] == ["1", "3"]
    # RSET undoes DELE.
    assert c.ok("RSET").startswith("+OK")
    assert stat(c) == (3, sum(sizes))
    c.retr(2)
    c.ok("DELE 1")
    c.ok("DELE 3")
    quit_ok(c)
    c.close()
    # QUIT applied DELE: only the second is left, for POP3 and the store.
    rows = server.mail_list(user)
    assert [r.subject for r in rows] == ["d1"]
    c = login(server, user)
    assert stat(c) == (1, sizes[1])
    quit_ok(c)
    c.close()


def test_drop_without_quit_keeps_mail(server, user):
    deliver_many(server, [yubintest.make_msg("k%d" % i, to=user) for i in range(2)],
                 rcpt=user)
    c = login(server, user)
    c.ok("DELE 1")
    c.ok("DELE 2")
    c.close()                       # no QUIT: no UPDATE state
    deadline = time.monotonic() + 5
    while True:                     # the lock goes when the server sees the close
        c = RawPOP3(server)
        c.ok("USER " + user)
        st = c.cmd("PASS " + PASSWORD)
        if st.startswith("+OK") or time.monotonic() > deadline:
            break
        c.close()
        time.sleep(0.05)
    assert st.startswith("+OK"), st
    assert stat(c)[0] == 2
    quit_ok(c)
    c.close()
    assert len(server.mail_list(user)) == 2


def test_quit_without_deletions(server, user):
    deliver(server, yubintest.make_msg("q", to=user), rcpt=user)
    c = login(server, user)
    c.retr(1)
    assert quit_ok(c).startswith("+OK")
    c.close()
    assert len(server.mail_list(user)) == 1


@pytest.mark.parametrize("arg", ["0", "2", "-1", "+1", "abc", "1x", "", "1 2",
                                 "99999999999999999999999"])
def test_bad_message_numbers(server, user, arg):
    deliver(server, yubintest.make_msg("bad", to=user), rcpt=user)
    c = login(server, user)
    for cmd in ("RETR", "DELE", "LIST", "UIDL", "TOP"):
        if arg == "" and cmd in ("LIST", "UIDL"):
            continue
        line = "%s %s" % (cmd, arg) if cmd != "TOP" else "TOP %s 1" % arg
        if cmd == "TOP" and arg == "1 2":
            continue                # a valid TOP
        st = c.cmd(line.rstrip())
        assert st.startswith("-ERR"), (line, st)
    # The session goes on.
    assert stat(c)[0] == 1
    quit_ok(c)
    c.close()


def test_in_use(server, user):
    deliver(server, yubintest.make_msg("lock", to=user), rcpt=user)
    a = login(server, user)
    b = RawPOP3(server)
    b.ok("USER " + user)
    st = b.cmd("PASS " + PASSWORD)
    # RFC 2449 8.1.2: another session holds the maildrop.
    assert st.startswith("-ERR [IN-USE]"), st
    # Still in AUTHORIZATION; the same answer by AUTH.
    st = b.cmd("AUTH PLAIN " + yubintest.sasl_plain(user, PASSWORD))
    assert st.startswith("-ERR [IN-USE]"), st
    a.ok("DELE 1")
    quit_ok(a)
    a.close()
    # Once the first one is gone, the second gets in and sees its QUIT.
    b.login(user)
    assert stat(b) == (0, 0)
    quit_ok(b)
    b.close()


def test_in_use_is_per_account(server, user):
    other = "%s@example.com" % yubintest.unique("pop")
    server.add_user(other)
    a = login(server, user)
    b = login(server, other)
    stat(a)
    stat(b)
    quit_ok(a)
    quit_ok(b)


def test_new_mail_shows_in_the_next_session(server, user):
    deliver(server, yubintest.make_msg("first", to=user), rcpt=user)
    c = login(server, user)
    before = stat(c)
    _, uidl_before = c.lines("UIDL")
    deliver(server, yubintest.make_msg("second", to=user), rcpt=user)
    # Numbers and sizes are fixed for the session.
    assert stat(c) == before
    assert c.lines("UIDL")[1] == uidl_before
    assert c.cmd("RETR 2").startswith("-ERR")
    c.ok("DELE 1")
    quit_ok(c)
    c.close()
    c = login(server, user)
    assert stat(c)[0] == 1
    _, got = c.retr(1)
    assert b"Subject: second" in got
    quit_ok(c)
    c.close()


def test_ten_megabyte_message(server, user):
    line = b"0123456789" * 7 + b"\r\n"                # 72 octets a line
    lines = 10 * 1024 * 1024 // len(line)
    body = b"".join((b"." if i % 1000 == 0 else b"") + line for i in range(lines))
    msg = yubintest.make_msg("big", to=user, body=body)
    deliver(server, msg, rcpt=user)
    row = server.mail_list(user)[0]
    assert row.size > 10 * 1024 * 1024
    c = login(server, user)
    assert c.ok("LIST 1") == "+OK 1 %d" % row.size
    # A command pipelined behind the RETR is answered after the message.
    c.send(b"RETR 1\r\nNOOP\r\n")
    st = c.status()
    assert st == "+OK %d octets" % row.size
    got = c.multiline()
    assert len(got) == row.size
    assert hashlib.sha256(yubintest.split_stored(got)[1]).digest() == \
        hashlib.sha256(msg).digest()
    assert c.status().startswith("+OK")
    c.ok("TOP 1 2")
    top = c.multiline()
    assert top.endswith(b"\r\n\r\n." + line + line)
    quit_ok(c)
    c.close()
    # Streamed in chunks through TLS too: after STLS, and on [pop3s].
    for how in ("stls", "pop3s"):
        c = RawPOP3(server, tls=how == "pop3s")
        if how == "stls":
            c.stls()
        c.login(user)
        st, again = c.retr(1)
        assert again == got, how
        quit_ok(c)
        c.close()


def test_utf8_header_needs_utf8_mode(server, user):
    msg = ("From: 差出人 <alice@example.org>\r\nTo: %s\r\nSubject: 件名\r\n\r\n本文\r\n"
           % user).encode()
    with server.smtp() as s:
        s.sendmail("alice@example.org", [user], msg, mail_options=["SMTPUTF8"])
    c = login(server, user)
    # RFC 6856 2.1, 5: not as is to a client that did not ask for UTF-8.
    assert c.cmd("RETR 1").startswith("-ERR [UTF8]")
    assert c.cmd("TOP 1 0").startswith("-ERR [UTF8]")
    assert c.ok("LIST 1")
    quit_ok(c)
    c.close()
    c = RawPOP3(server)
    assert c.ok("UTF8").startswith("+OK")
    c.login(user)
    _, got = c.retr(1)
    assert yubintest.split_stored(got)[1] == msg
    quit_ok(c)
    c.close()


def test_legacy_8bit_header_is_sent_as_is(server, user):
    # Latin-1 in a header is not UTF-8: an old-style message, sent as it
    # always was (refusing it would strand it for every POP3 client).
    msg = b"From: a@example.org\r\nSubject: caf\xe9\r\n\r\nbody\r\n"
    deliver(server, msg, rcpt=user)
    c = login(server, user)
    _, got = c.retr(1)
    assert yubintest.split_stored(got)[1] == msg
    quit_ok(c)
    c.close()


def test_retr_over_pop3s(server, user):
    deliver(server, yubintest.make_msg("tls", to=user, body=b".dot\r\n"), rcpt=user)
    c = login(server, user, tls=True)
    _, got = c.retr(1)
    assert got.endswith(b"\r\n\r\n.dot\r\n")
    quit_ok(c)
    c.close()
