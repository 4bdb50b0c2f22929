"""Limits and hostile input: SIZE (RFC 1870), recipients per message, NUL,
mail loops (RFC 5321 6.3), idle timeout."""

import time

import pytest

import yubintest
from yubintest import make_msg, dot_stuff, unique, send_data, split_stored


def advertised_size(server):
    r = server.raw()
    rep = r.cmd("EHLO size.test.example")
    r.close()
    for l in rep.lines[1:]:
        f = l.split(" ")
        if f[0].upper() == "SIZE":
            return int(f[1])
    raise AssertionError("no SIZE in EHLO: %r" % rep.lines)


def big_message(subject, nbytes):
    line = b"0123456789" * 9 + b"abcdefgh\r\n"   # 100 bytes
    return make_msg(subject, body=line * (nbytes // len(line) + 1))


def test_size_param_too_big(server, smtp_session):
    limit = advertised_size(server)
    rep = smtp_session.cmd("MAIL FROM:<big@example.org> SIZE=%d" % (limit + 1))
    assert (rep.code, rep.enh) == (552, "5.3.4"), rep
    # Still no transaction, the session goes on.
    assert smtp_session.cmd("RCPT TO:<shiroyagi@example.com>").code == 503
    assert smtp_session.cmd("MAIL FROM:<big@example.org> SIZE=1000").code == 250


def test_size_param_huge_number(smtp_session):
    rep = smtp_session.cmd("MAIL FROM:<big@example.org> SIZE=99999999999999999999999999")
    assert rep.code in (552, 501, 555), rep
    assert smtp_session.cmd("NOOP").code == 250


def test_size_param_at_limit(server, smtp_session):
    limit = advertised_size(server)
    rep = smtp_session.cmd("MAIL FROM:<big@example.org> SIZE=%d" % limit)
    assert (rep.code, rep.enh) == (250, "2.1.0"), rep


@pytest.mark.parametrize("param", ["SIZE=", "SIZE=abc", "SIZE=-1", "SIZE=12x"])
def test_size_param_malformed(smtp_session, param):
    rep = smtp_session.cmd("MAIL FROM:<big@example.org> %s" % param)
    assert rep.code in (501, 555), rep


def test_data_over_size_limit(server):
    limit = advertised_size(server)
    subject = unique("toobig")
    before_files = server.msg_files()
    before_rows = server.mail_list("hitsuji@example.com")
    r = server.session()
    assert r.cmd("MAIL FROM:<big@example.org>").code == 250
    assert r.cmd("RCPT TO:<hitsuji@example.com>").code == 250
    assert r.cmd("DATA").code == 354
    r.send(dot_stuff(big_message(subject, limit + 20000)))
    rep = r.reply()
    assert (rep.code, rep.enh) == (552, "5.3.4"), rep
    # The session goes on: a small message is accepted.
    small = unique("small")
    rep = send_data(r, "big@example.org", ["hitsuji@example.com"], make_msg(small))
    assert rep.code == 250, rep
    r.close()
    after_rows = server.mail_list("hitsuji@example.com")
    assert [x for x in after_rows if x.subject == subject] == []
    assert len([x for x in after_rows if x.subject == small]) == 1
    assert len(after_rows) == len(before_rows) + 1
    assert len(server.msg_files() - before_files) == 1, "a body file was kept for the refused message"


def test_data_just_under_size_limit(server):
    limit = advertised_size(server)
    subject = unique("fits")
    msg = big_message(subject, limit - 4096)
    msg = msg[:limit - 2048 - len(b"end\r\n")] + b"end\r\n"
    assert len(msg) < limit
    r = server.session()
    rep = send_data(r, "big@example.org", ["hitsuji@example.com"], msg)
    assert rep.code == 250, rep
    r.close()
    (row, stored), = server.find_mail("hitsuji@example.com", subject)
    assert split_stored(stored)[1] == msg


def test_max_recipients(server):
    # [limits] max_recipients = 100 (RFC 5321 4.5.3.1.8: at least 100 must
    # be taken; 452 for one too many).
    subject = unique("rcpts")
    r = server.session()
    assert r.cmd("MAIL FROM:<many@example.org>").code == 250
    batch = b"".join(b"RCPT TO:<r%03d@many.example>\r\n" % i for i in range(100))
    r.send(batch)
    reps = r.replies(100)
    assert all(x.code == 250 for x in reps), [x for x in reps if x.code != 250]
    rep = r.cmd("RCPT TO:<r100@many.example>")
    assert (rep.code, rep.enh) == (452, "4.5.3"), rep
    # The session goes on, and the 100 accepted recipients get the message.
    assert r.cmd("DATA").code == 354
    r.send(dot_stuff(make_msg(subject)))
    assert r.reply().code == 250
    r.close()
    # All of them are ushi (catch-all of many.example), delivered once.
    assert len(server.find_mail("ushi@example.com", subject)) == 1


def test_max_recipients_counts_per_transaction(server):
    r = server.session()
    for _ in range(2):
        assert r.cmd("MAIL FROM:<many@example.org>").code == 250
        r.send(b"".join(b"RCPT TO:<s%02d@many.example>\r\n" % i for i in range(60)))
        assert all(x.code == 250 for x in r.replies(60))
        assert r.cmd("RSET").code == 250
    r.close()


def test_nul_in_data(server):
    subject = unique("nul")
    r = server.session()
    assert r.cmd("MAIL FROM:<nul@example.org>").code == 250
    assert r.cmd("RCPT TO:<kuroyagi@example.com>").code == 250
    assert r.cmd("DATA").code == 354
    r.send(("Subject: %s\r\n\r\nbefore\x00after\r\n.\r\n" % subject).encode())
    rep = r.reply()
    assert (rep.code, rep.enh) == (550, "5.6.0"), rep
    ok = unique("afternul")
    assert send_data(r, "nul@example.org", ["kuroyagi@example.com"], make_msg(ok)).code == 250
    r.close()
    assert server.find_mail("kuroyagi@example.com", subject) == []
    assert len(server.find_mail("kuroyagi@example.com", ok)) == 1


def test_nul_in_command(smtp_session):
    rep = smtp_session.cmd(b"NOOP\x00QUIT")
    assert 500 <= rep.code < 600, rep
    assert smtp_session.cmd("NOOP").code == 250


def received_headers(n):
    return ["Received: from relay%d.example.org (relay%d.example.org [192.0.2.%d])\r\n"
            "\tby hop%d.example.net; Sun, 22 Nov 2026 07:00:00 +0000" % (i, i, i % 250 + 1, i)
            for i in range(n)]


def test_mail_loop_too_many_received(server):
    subject = unique("loop")
    msg = ("\r\n".join(received_headers(101)) + "\r\n").encode() + make_msg(subject)
    r = server.session()
    rep = send_data(r, "loop@example.org", ["ushi@example.com"], msg)
    assert rep.code in (554, 550) and rep.enh == "5.4.6", rep
    # The session goes on.
    assert r.cmd("NOOP").code == 250
    r.close()
    assert server.find_mail("ushi@example.com", subject) == []


def test_some_received_headers_are_fine(server):
    subject = unique("hops")
    msg = ("\r\n".join(received_headers(20)) + "\r\n").encode() + make_msg(subject)
    r = server.session()
    rep = send_data(r, "loop@example.org", ["ushi@example.com"], msg)
    assert rep.code == 250, rep
    r.close()
    (row, stored), = server.find_mail("ushi@example.com", subject)
    assert stored.endswith(msg)
    assert stored.count(b"\nReceived: ") == 21


def test_binary_garbage_commands(server):
    r = server.session()
    r.send(b"\xff\xfe\xfd garbage \x80\x81\r\n")
    rep = r.reply()
    assert 500 <= rep.code < 600, rep
    assert r.cmd("NOOP").code == 250
    r.close()


def test_idle_timeout(yubin_factory):
    srv = yubin_factory(overrides={"limits": {"smtp_timeout": "2s"}})
    r = srv.session()
    t0 = time.monotonic()
    reps = r.all_replies_until_close(timeout=10)
    waited = time.monotonic() - t0
    assert 1.5 <= waited < 8, "closed after %.1fs with smtp_timeout = 2s" % waited
    # RFC 5321 4.5.3.2: the server may close with 421 on timeout.
    assert all(x.code == 421 for x in reps), reps
    r.close()
    # The server still serves others.
    r = srv.session()
    assert r.cmd("NOOP").code == 250
    r.close()


def test_size_limit_from_config(yubin_factory):
    srv = yubin_factory(overrides={"limits": {"max_message_size": "200000"}},
                        provision=yubintest.provision_standard)
    assert advertised_size(srv) == 200000
    r = srv.session()
    rep = r.cmd("MAIL FROM:<s@example.org> SIZE=200001")
    assert (rep.code, rep.enh) == (552, "5.3.4"), rep
    assert r.cmd("MAIL FROM:<s@example.org> SIZE=150000").code == 250
    assert r.cmd("RCPT TO:<ushi@example.com>").code == 250
    assert r.cmd("DATA").code == 354
    r.send(dot_stuff(big_message(unique("over"), 210000)))
    rep = r.reply()
    assert (rep.code, rep.enh) == (552, "5.3.4"), rep
    r.close()


def trickle_until_closed(r, chunks, every=0.3, limit=20.0):
    """Sends one chunk of bytes every `every` seconds until the server
    closes; returns (seconds it took, the replies read at the end)."""
    t0 = time.monotonic()
    for chunk in chunks:
        if time.monotonic() - t0 > limit:
            break
        try:
            r.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
        r.sock.settimeout(every)
        try:
            data = r.sock.recv(4096)
        except (TimeoutError, OSError):
            continue
        r.buf += data
        break
    replies = r.all_replies_until_close(timeout=5)
    return time.monotonic() - t0, replies


@pytest.mark.parametrize("mode", ["DATA", "BDAT"])
def test_data_total_timeout(yubin_factory, mode):
    """[limits] smtp_data_timeout bounds a whole transfer: a client that
    sends a byte now and then (never idle for smtp_timeout) is cut at the
    deadline with 421, and nothing of its message is kept."""
    srv = yubin_factory(overrides={"limits": {"smtp_timeout": "30s",
                                              "smtp_data_timeout": "2s"}},
                        provision=yubintest.provision_standard)
    before_files = srv.msg_files()
    r = srv.session()
    assert r.cmd("MAIL FROM:<slow@example.org>").code == 250
    assert r.cmd("RCPT TO:<ushi@example.com>").code == 250
    subject = unique("trickle")
    msg = make_msg(subject, to="ushi@example.com", body=b"x" * 200 + b"\r\n")
    if mode == "DATA":
        assert r.cmd("DATA").code == 354
        payload = dot_stuff(msg)
        chunks = [payload[i:i + 4] for i in range(0, len(payload) - 3, 4)]
    else:
        # One chunk announced whole, its bytes sent slowly.
        r.send(b"BDAT %d LAST\r\n" % len(msg))
        chunks = [msg[i:i + 4] for i in range(0, len(msg) - 1, 4)]
    waited, reps = trickle_until_closed(r, chunks)
    r.close()
    assert 1.5 <= waited < 8, "cut after %.1fs with smtp_data_timeout = 2s" % waited
    assert reps, "closed without a reply"
    assert reps[-1].code in (421, 451), reps
    assert [x for x in reps if x.code == 250] == [], reps
    # Nothing stored: no row, no body file.
    assert [x for x in srv.mail_list("ushi@example.com") if x.subject == subject] == []
    assert srv.msg_files() == before_files
    # The server serves others as before.
    rep = send_data(srv.session(), "fast@example.org", ["ushi@example.com"],
                    make_msg(unique("fast"), to="ushi@example.com"))
    assert rep.code == 250, rep
