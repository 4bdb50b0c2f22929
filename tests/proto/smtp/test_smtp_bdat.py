"""CHUNKING / BDAT (RFC 3030)."""

import pytest

import yubintest
from yubintest import make_msg, dot_stuff, unique, send_data, split_stored


def bdat(r, chunk, last=False):
    r.send(b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"") + chunk)
    return r.reply()


def start(r, rcpt="shiroyagi@example.com", sender="bdat@example.org"):
    assert r.cmd("MAIL FROM:<%s>" % sender).code == 250
    assert r.cmd("RCPT TO:<%s>" % rcpt).code == 250


def test_bdat_chunks_stored_exactly(server):
    subject = unique("bdat")
    # No dot-stuffing in BDAT: "..x" and a lone "." line are content.
    msg = make_msg(subject, body=b"..x\r\n.\r\n.\r\nend\r\n")
    r = server.session()
    start(r)
    parts = [msg[:7], msg[7:100], msg[100:]]
    for p in parts[:-1]:
        rep = bdat(r, p)
        assert (rep.code, rep.enh) == (250, "2.0.0"), rep
    rep = bdat(r, parts[-1], last=True)
    assert (rep.code, rep.enh) == (250, "2.0.0"), rep
    r.close()
    (row, stored), = server.find_mail("shiroyagi@example.com", subject)
    fields, rest = split_stored(stored)
    assert rest == msg
    assert fields[0] == b"Return-Path: <bdat@example.org>"
    assert row.size == len(stored)


def test_bdat_zero_last(server):
    subject = unique("bdat0")
    msg = make_msg(subject)
    r = server.session()
    start(r)
    assert bdat(r, msg).code == 250
    rep = bdat(r, b"", last=True)
    assert (rep.code, rep.enh) == (250, "2.0.0"), rep
    r.close()
    (row, stored), = server.find_mail("shiroyagi@example.com", subject)
    assert split_stored(stored)[1] == msg


def test_bdat_single_chunk_last(server):
    subject = unique("bdat1")
    msg = make_msg(subject)
    r = server.session()
    start(r, rcpt="kuroyagi@example.com")
    assert bdat(r, msg, last=True).code == 250
    # A second transaction on the same session.
    subject2 = unique("bdat2")
    msg2 = make_msg(subject2)
    start(r, rcpt="kuroyagi@example.com")
    assert bdat(r, msg2, last=True).code == 250
    r.close()
    assert split_stored(server.find_mail("kuroyagi@example.com", subject)[0][1])[1] == msg
    assert split_stored(server.find_mail("kuroyagi@example.com", subject2)[0][1])[1] == msg2


def test_bdat_pipelined(server):
    subject = unique("bdatpipe")
    msg = make_msg(subject, body=b"line\r\n" * 100)
    r = server.session()
    a, b = msg[:300], msg[300:]
    r.send(b"MAIL FROM:<bp@example.org>\r\nRCPT TO:<hitsuji@example.com>\r\n"
           + b"BDAT %d\r\n" % len(a) + a + b"BDAT %d LAST\r\n" % len(b) + b
           + b"QUIT\r\n")
    reps = r.all_replies_until_close()
    assert [x.code for x in reps] == [250, 250, 250, 250, 221], reps
    (row, stored), = server.find_mail("hitsuji@example.com", subject)
    assert split_stored(stored)[1] == msg


def test_bdat_binary_content_and_crlf_split(server):
    # A chunk boundary between CR and LF, and 8-bit bytes: stored as sent.
    subject = unique("bdatbin")
    msg = make_msg(subject, body="binär ✓\r\n".encode() + bytes(range(0x80, 0x100)) + b"\r\n",
                   extra_headers=["MIME-Version: 1.0",
                                  "Content-Type: text/plain; charset=utf-8",
                                  "Content-Transfer-Encoding: 8bit"])
    cut = msg.index(b"\r\n") + 1
    r = server.session()
    assert r.cmd("MAIL FROM:<bb@example.org> BODY=8BITMIME").code == 250
    assert r.cmd("RCPT TO:<hitsuji@example.com>").code == 250
    assert bdat(r, msg[:cut]).code == 250
    assert bdat(r, msg[cut:], last=True).code == 250
    r.close()
    (row, stored), = server.find_mail("hitsuji@example.com", subject)
    assert split_stored(stored)[1] == msg


def test_data_after_bdat_refused(server):
    subject = unique("bdatmix")
    r = server.session()
    start(r, rcpt="ushi@example.com")
    assert bdat(r, make_msg(subject)).code == 250
    rep = r.cmd("DATA")
    assert (rep.code, rep.enh) == (503, "5.5.1"), rep
    # Not in DATA mode: the next line is a command.
    rep = r.cmd("RSET")
    assert rep.code == 250, rep
    r.close()
    assert server.find_mail("ushi@example.com", subject) == []


def test_bdat_without_transaction_consumes_chunk(server):
    # RFC 3030 2: a refused BDAT still has its chunk read; the chunk is
    # never taken for commands (here it holds a QUIT).
    r = server.session()
    chunk = b"QUIT\r\nNOOP\r\n"
    rep = bdat(r, chunk)
    assert (rep.code, rep.enh) == (503, "5.5.1"), rep
    rep = r.cmd("NOOP")
    assert rep.code == 250, rep
    assert r.cmd("NOOP").code == 250
    r.close()


def test_bdat_without_rcpt(server):
    r = server.session()
    assert r.cmd("MAIL FROM:<x@example.org>").code == 250
    rep = bdat(r, b"Subject: x\r\n\r\nQUIT\r\n", last=True)
    assert rep.code in (503, 554), rep
    assert r.cmd("NOOP").code == 250
    r.close()


@pytest.mark.parametrize("arg", ["", "abc", "-5", "10 FIRST", "1x"])
def test_bdat_bad_syntax(smtp_session, arg):
    # Without a usable size the chunk cannot be skipped. RFC 5321 3.8 leaves
    # two correct answers: a 5xx and the session goes on, or 421 and close.
    # A 5xx followed by a silent close is neither.
    r = smtp_session
    start(r)
    rep = r.cmd("BDAT " + arg if arg else "BDAT")
    if rep.code == 421:
        assert r.is_closed(), "421 but the connection stays open"
        return
    assert rep.code in (501, 500, 555), rep
    try:
        rep = r.cmd("RSET")
    except (EOFError, ConnectionResetError, BrokenPipeError):
        pytest.fail("connection closed after %r without a 421 (RFC 5321 3.8)" % rep)
    assert rep.code == 250, rep


def test_bdat_over_size_limit(server):
    subject = unique("bdatbig")
    r = server.raw()
    rep = r.cmd("EHLO big.example")
    limit = int([l for l in rep.lines if l.upper().startswith("SIZE ")][0].split()[1])
    before = server.msg_files()
    start(r, rcpt="ushi@example.com")
    chunk = b"y" * 98 + b"\r\n"
    chunk = make_msg(subject) + chunk * (300000 // len(chunk))
    sent = 0
    codes = []
    while sent <= limit + len(chunk):
        rep = bdat(r, chunk)
        sent += len(chunk)
        codes.append((rep.code, rep.enh))
        if rep.code != 250:
            break
    if codes[-1][0] == 250:
        rep = bdat(r, b"", last=True)
        codes.append((rep.code, rep.enh))
    assert codes[-1] == (552, "5.3.4"), codes
    r.cmd("RSET")
    small = unique("bdatsmall")
    start(r, rcpt="ushi@example.com")
    assert bdat(r, make_msg(small), last=True).code == 250
    r.close()
    assert server.find_mail("ushi@example.com", subject) == []
    assert len(server.find_mail("ushi@example.com", small)) == 1
    assert len(server.msg_files() - before) == 1


def test_bdat_nul_and_bare_lf_policy(server):
    # Whatever the policy on bare LF inside BDAT, a message is either
    # refused or stored once; never split.
    subject = unique("bdatlf")
    r = server.session()
    start(r, rcpt="ushi@example.com")
    chunk = ("Subject: %s\r\n\r\nline\n.\r\nMAIL FROM:<evil@x>\r\n" % subject).encode()
    rep = bdat(r, chunk, last=True)
    assert rep.code in (250, 550, 554), rep
    assert r.cmd("NOOP").code == 250
    r.close()
    got = server.find_mail("ushi@example.com", subject)
    assert len(got) == (1 if rep.code == 250 else 0)
