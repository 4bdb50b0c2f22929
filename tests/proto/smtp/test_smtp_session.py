"""SMTP session basics: greeting, EHLO, command sequencing, simple commands,
errors and PIPELINING (RFC 5321, RFC 2920, RFC 2034)."""

import re
import smtplib
import socket
import time

import pytest

import yubintest
from yubintest import HOSTNAME, make_msg, dot_stuff, unique, send_data


def test_greeting(server):
    r = server.raw(greet=False)
    rep = r.reply()
    assert rep.code == 220
    # RFC 5321 4.3.1: the greeting names the server.
    assert rep.lines[0].split(" ")[0] == HOSTNAME
    assert "ESMTP" in rep.lines[0].split(" ")
    r.close()


def test_ehlo_lists_extensions(server):
    r = server.raw()
    rep = r.cmd("EHLO " + yubintest.EHLO_NAME)
    assert rep.code == 250
    assert rep.lines[0].split(" ")[0] == HOSTNAME
    keywords = {l.split(" ")[0].upper(): l.split(" ")[1:] for l in rep.lines[1:]}
    for kw in ("PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES",
               "SMTPUTF8", "CHUNKING", "STARTTLS"):
        assert kw in keywords, "EHLO does not list %s: %r" % (kw, rep.lines)
    # RFC 1870: SIZE carries the limit in octets ([limits] max_message_size = 1M).
    assert len(keywords["SIZE"]) == 1
    assert int(keywords["SIZE"][0]) in (1048576, 1000000), keywords["SIZE"]
    # Never offer AUTH on port 25 in M1 over plaintext.
    r.close()


def test_ehlo_repeated_is_fine(server):
    r = server.session()
    rep = r.cmd("EHLO other.test.example")
    assert rep.code == 250
    assert r.cmd("MAIL FROM:<a@example.org>").code == 250
    # A second EHLO resets the transaction (RFC 5321 4.1.4).
    rep = r.cmd("EHLO again.test.example")
    assert rep.code == 250
    rep = r.cmd("RCPT TO:<shiroyagi@example.com>")
    assert (rep.code, rep.enh) == (503, "5.5.1"), rep
    r.close()


def test_ehlo_without_argument(server):
    r = server.raw()
    rep = r.cmd("EHLO")
    assert rep.code == 501, rep
    r.close()


def test_helo(server):
    r = server.raw()
    rep = r.cmd("HELO " + yubintest.EHLO_NAME)
    assert rep.code == 250, rep
    assert len(rep.lines) == 1, "HELO answers one line: %r" % rep.lines
    assert r.cmd("MAIL FROM:<a@example.org>").code == 250
    assert r.cmd("RCPT TO:<shiroyagi@example.com>").code == 250
    r.close()


def test_mail_before_ehlo(server):
    r = server.raw()
    rep = r.cmd("MAIL FROM:<a@example.org>")
    assert (rep.code, rep.enh) == (503, "5.5.1"), rep
    r.close()


def test_mail_ok(smtp_session):
    rep = smtp_session.cmd("MAIL FROM:<a@example.org>")
    assert (rep.code, rep.enh) == (250, "2.1.0"), rep


def test_mail_null_reverse_path(smtp_session):
    rep = smtp_session.cmd("MAIL FROM:<>")
    assert (rep.code, rep.enh) == (250, "2.1.0"), rep


def test_nested_mail(smtp_session):
    assert smtp_session.cmd("MAIL FROM:<a@example.org>").code == 250
    rep = smtp_session.cmd("MAIL FROM:<b@example.org>")
    assert (rep.code, rep.enh) == (503, "5.5.1"), rep


@pytest.mark.parametrize("line", [
    "MAIL FROM:a@example.org",           # no angle brackets
    "MAIL FROM:<a@example.org",          # unbalanced
    "MAIL TO:<a@example.org>",
    "MAIL FROM:<a@example.org> FOO=BAR",  # unknown parameter
    "MAIL FROM:<a@@example.org>",
])
def test_mail_syntax_errors(smtp_session, line):
    rep = smtp_session.cmd(line)
    assert 500 <= rep.code <= 555, rep
    assert rep.code != 503
    # The session goes on.
    assert smtp_session.cmd("MAIL FROM:<a@example.org>").code == 250


def test_commands_are_case_insensitive(smtp_session):
    # RFC 5321 2.4: verbs and argument keywords in any case.
    assert smtp_session.cmd("mail from:<a@example.org>").code == 250
    assert smtp_session.cmd("rCpT tO:<shiroyagi@example.com>").code == 250
    assert smtp_session.cmd("rset").code == 250


def test_rcpt_before_mail(smtp_session):
    rep = smtp_session.cmd("RCPT TO:<shiroyagi@example.com>")
    assert (rep.code, rep.enh) == (503, "5.5.1"), rep


def test_data_before_rcpt(smtp_session):
    assert smtp_session.cmd("MAIL FROM:<a@example.org>").code == 250
    rep = smtp_session.cmd("DATA")
    assert (rep.code, rep.enh) == (503, "5.5.1"), rep
    # Not in DATA mode: commands still work.
    assert smtp_session.cmd("NOOP").code == 250


def test_data_without_mail(smtp_session):
    rep = smtp_session.cmd("DATA")
    assert (rep.code, rep.enh) == (503, "5.5.1"), rep
    assert smtp_session.cmd("NOOP").code == 250


def test_data_after_every_rcpt_failed(smtp_session):
    assert smtp_session.cmd("MAIL FROM:<a@example.org>").code == 250
    assert smtp_session.cmd("RCPT TO:<nobody-here@example.com>").code == 550
    rep = smtp_session.cmd("DATA")
    assert rep.code in (503, 554), rep
    assert smtp_session.cmd("NOOP").code == 250


def test_data_with_argument(smtp_session):
    # RFC 5321 4.1.1.4: data = "DATA" CRLF
    assert smtp_session.cmd("MAIL FROM:<a@example.org>").code == 250
    assert smtp_session.cmd("RCPT TO:<shiroyagi@example.com>").code == 250
    rep = smtp_session.cmd("DATA now")
    assert rep.code == 501, rep
    # Not in DATA mode, and the transaction is intact.
    assert smtp_session.cmd("NOOP").code == 250
    assert smtp_session.cmd("DATA").code == 354
    smtp_session.send(b"Subject: x\r\n\r\nx\r\n.\r\n")
    assert smtp_session.reply().code == 250


def test_rcpt_unknown_local_user(smtp_session):
    assert smtp_session.cmd("MAIL FROM:<a@example.org>").code == 250
    rep = smtp_session.cmd("RCPT TO:<no-such-user@example.com>")
    assert (rep.code, rep.enh) == (550, "5.1.1"), rep
    # The transaction survives a failed RCPT.
    assert smtp_session.cmd("RCPT TO:<shiroyagi@example.com>").code == 250


def test_rcpt_ok_enhanced_code(smtp_session):
    assert smtp_session.cmd("MAIL FROM:<a@example.org>").code == 250
    rep = smtp_session.cmd("RCPT TO:<shiroyagi@example.com>")
    assert (rep.code, rep.enh) == (250, "2.1.5"), rep


def test_rset_clears_transaction(server, smtp_session):
    subject = unique("rset")
    r = smtp_session
    assert r.cmd("MAIL FROM:<a@example.org>").code == 250
    assert r.cmd("RCPT TO:<shiroyagi@example.com>").code == 250
    rep = r.cmd("RSET")
    assert (rep.code, rep.enh) == (250, "2.0.0"), rep
    rep = r.cmd("RCPT TO:<shiroyagi@example.com>")
    assert (rep.code, rep.enh) == (503, "5.5.1"), rep
    rep = r.cmd("DATA")
    assert rep.code == 503, rep
    # A new transaction after RSET works, and only its recipient gets mail.
    assert r.cmd("MAIL FROM:<b@example.org>").code == 250
    assert r.cmd("RCPT TO:<kuroyagi@example.com>").code == 250
    assert r.cmd("DATA").code == 354
    r.send(dot_stuff(make_msg(subject)))
    assert r.reply().code == 250
    assert server.find_mail("shiroyagi@example.com", subject) == []
    got = server.find_mail("kuroyagi@example.com", subject)
    assert len(got) == 1
    assert got[0][1].startswith(b"Return-Path: <b@example.org>\r\n")


def test_noop(smtp_session):
    rep = smtp_session.cmd("NOOP")
    assert (rep.code, rep.enh) == (250, "2.0.0"), rep
    assert smtp_session.cmd("NOOP with an argument").code == 250


def test_noop_before_ehlo(server):
    r = server.raw()
    assert r.cmd("NOOP").code == 250
    r.close()


def test_vrfy(smtp_session):
    rep = smtp_session.cmd("VRFY shiroyagi@example.com")
    assert rep.code == 252, rep
    # No user enumeration: the answer does not depend on the account existing.
    rep2 = smtp_session.cmd("VRFY no-such-user@example.com")
    assert rep2.code == 252, rep2


def test_expn_does_not_list_members(smtp_session):
    # RFC 5321 4.3.2: EXPN may answer 250/252, or fail with 550, 500, 502, 504.
    rep = smtp_session.cmd("EXPN team@example.com")
    assert rep.code in (252, 500, 502, 504, 550), rep
    assert "shiroyagi" not in rep.text


def test_help(smtp_session):
    rep = smtp_session.cmd("HELP")
    assert rep.code == 214, rep


def test_quit(server):
    r = server.session()
    rep = r.cmd("QUIT")
    assert (rep.code, rep.enh) == (221, "2.0.0"), rep
    assert r.is_closed(), "connection still open after 221"


@pytest.mark.parametrize("line", ["FOOBAR", "XYZZY arg", "MAILFROM:<a@b>", "  "])
def test_unknown_command(smtp_session, line):
    rep = smtp_session.cmd(line)
    assert (rep.code == 500 and rep.enh == "5.5.2") or \
        (rep.code == 502 and rep.enh and rep.enh.startswith("5.5.")), rep
    assert smtp_session.cmd("NOOP").code == 250


def test_long_command_line(smtp_session):
    r = smtp_session
    rep = r.cmd("NOOP " + "x" * 10000)
    assert (rep.code, rep.enh) == (500, "5.5.2"), rep
    # Exactly one reply for the long line; the rest of it was not taken as
    # commands, and the session goes on.
    rep = r.cmd("NOOP")
    assert (rep.code, rep.enh) == (250, "2.0.0"), rep
    assert r.cmd("MAIL FROM:<a@example.org>").code == 250


def test_long_line_does_not_smuggle_a_command(server):
    # The tail of an over-long line must not be run as a command: here it
    # would be a QUIT.
    r = server.session()
    r.send(b"NOOP " + b"y" * 4091 + b"QUIT\r\n")
    rep = r.reply()
    assert rep.code == 500, rep
    rep = r.cmd("NOOP")
    assert rep.code == 250, rep
    r.close()


def test_max_errors_then_421(server):
    # [limits] max_errors = 10
    r = server.session()
    codes = []
    for i in range(12):
        try:
            rep = r.cmd("BOGUS%d" % i)
        except (EOFError, ConnectionResetError, BrokenPipeError):
            break
        codes.append(rep.code)
        if rep.code == 421:
            break
    assert 421 in codes, "no 421 after %d errors: %r" % (len(codes), codes)
    i = codes.index(421)
    assert 9 <= i <= 10, "421 after %d errors (max_errors = 10)" % i
    assert all(500 <= c < 600 for c in codes[:i]), codes
    assert r.is_closed(), "connection still open after 421"


def test_errors_do_not_reach_limit_when_spread(server):
    # Good commands between errors do not reset anything wrongly, but a
    # session with fewer errors than the limit is never cut.
    r = server.session()
    for i in range(8):
        assert r.cmd("BOGUS").code in (500, 502)
        assert r.cmd("NOOP").code == 250
    assert r.cmd("QUIT").code == 221
    r.close()


def test_pipelining(server):
    subject = unique("pipe")
    r = server.session()
    r.send(b"MAIL FROM:<pipe@example.org>\r\n"
           b"RCPT TO:<shiroyagi@example.com>\r\n"
           b"RCPT TO:<kuroyagi@example.com>\r\n"
           b"DATA\r\n")
    reps = r.replies(4)
    assert [x.code for x in reps] == [250, 250, 250, 354], reps
    r.send(dot_stuff(make_msg(subject)))
    rep = r.reply()
    assert (rep.code, rep.enh) == (250, "2.0.0"), rep
    for u in ("shiroyagi@example.com", "kuroyagi@example.com"):
        assert len(server.find_mail(u, subject)) == 1, u
    r.close()


def test_pipelining_with_failures(server):
    # A failed RCPT in the middle of a pipelined group does not disturb the
    # others (RFC 2920 3.1).
    subject = unique("pipefail")
    r = server.session()
    r.send(b"MAIL FROM:<pipe@example.org>\r\n"
           b"RCPT TO:<no-such-user@example.com>\r\n"
           b"RCPT TO:<hitsuji@example.com>\r\n"
           b"DATA\r\n")
    reps = r.replies(4)
    assert [x.code for x in reps] == [250, 550, 250, 354], reps
    r.send(dot_stuff(make_msg(subject)))
    assert r.reply().code == 250
    assert len(server.find_mail("hitsuji@example.com", subject)) == 1
    r.close()


def test_whole_session_in_one_write(server):
    # Everything, message and QUIT included, in one packet.
    subject = unique("onewrite")
    r = server.raw(greet=False)
    msg = make_msg(subject)
    r.send(b"EHLO pipe.test.example\r\n"
           b"MAIL FROM:<pipe@example.org>\r\n"
           b"RCPT TO:<ushi@example.com>\r\n"
           b"DATA\r\n" + dot_stuff(msg) +
           b"MAIL FROM:<pipe2@example.org>\r\n"
           b"RCPT TO:<ushi@example.com>\r\n"
           b"DATA\r\n" + dot_stuff(make_msg(subject + "-2")) +
           b"QUIT\r\n")
    reps = r.all_replies_until_close()
    assert [x.code for x in reps] == [220, 250, 250, 250, 354, 250,
                                      250, 250, 354, 250, 221], reps
    assert len(server.find_mail("ushi@example.com", subject + "-2")) == 1
    rows = server.mail_list("ushi@example.com")
    assert sum(1 for x in rows if x.subject == subject) == 1


def test_smtplib_sendmail(server):
    subject = unique("smtplib")
    with server.smtp() as s:
        refused = s.sendmail("lib@example.org", ["shiroyagi@example.com"],
                             make_msg(subject))
        assert refused == {}
    assert len(server.find_mail("shiroyagi@example.com", subject)) == 1


def test_many_connections_at_once(server):
    # Several sessions interleaved on the same server.
    subject = unique("conc")
    sessions = [server.session() for _ in range(8)]
    for r in sessions:
        assert r.cmd("MAIL FROM:<c@example.org>").code == 250
    for r in sessions:
        assert r.cmd("RCPT TO:<hitsuji@example.com>").code == 250
    for r in sessions:
        assert r.cmd("DATA").code == 354
    for i, r in enumerate(sessions):
        r.send(dot_stuff(make_msg("%s-%d" % (subject, i))))
    for r in sessions:
        rep = r.reply()
        assert rep.code == 250, rep
        r.close()
    rows = server.mail_list("hitsuji@example.com")
    got = sorted(x.subject for x in rows if x.subject.startswith(subject))
    assert got == sorted("%s-%d" % (subject, i) for i in range(8))
    # UIDs are unique and increasing.
    uids = [x.uid for x in rows]
    assert uids == sorted(set(uids))


def test_commands_split_across_packets(server):
    r = server.raw()
    r.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for piece in (b"EH", b"LO split.example\r", b"\nMA", b"IL FROM:<s@example.org>", b"\r\n"):
        r.send(piece)
        time.sleep(0.02)
    reps = r.replies(2)
    assert [x.code for x in reps] == [250, 250], reps
    r.close()


def test_end_of_data_split_across_packets(server):
    # The terminator and a stuffed dot arrive one byte per packet.
    subject = unique("split")
    r = server.session()
    r.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    assert r.cmd("MAIL FROM:<s@example.org>").code == 250
    assert r.cmd("RCPT TO:<hitsuji@example.com>").code == 250
    assert r.cmd("DATA").code == 354
    r.send(("Subject: %s\r\n\r\nbody" % subject).encode())
    for b in b"\r\n..dot\r\n.\r\n":
        r.send(bytes([b]))
        time.sleep(0.01)
    rep = r.reply()
    assert rep.code == 250, rep
    r.close()
    (row, stored), = server.find_mail("hitsuji@example.com", subject)
    assert stored.endswith(("Subject: %s\r\n\r\nbody\r\n.dot\r\n" % subject).encode())


def test_queue_ids_are_unique(server):
    r = server.session()
    ids = set()
    for i in range(5):
        rep = send_data(r, "q@example.org", ["ushi@example.com"], make_msg(unique("qid")))
        assert rep.code == 250
        ids.add(rep.lines[0].rsplit(" ", 1)[1])
    r.close()
    assert len(ids) == 5, ids


@pytest.mark.parametrize("line", ["RCPT TO:<>", "RCPT TO:", "RCPT TO:<shiroyagi@example.com",
                                  "RCPT FROM:<shiroyagi@example.com>"])
def test_rcpt_syntax_errors(smtp_session, line):
    assert smtp_session.cmd("MAIL FROM:<a@example.org>").code == 250
    rep = smtp_session.cmd(line)
    assert 500 <= rep.code < 600 and rep.code != 503, rep
    assert smtp_session.cmd("RCPT TO:<shiroyagi@example.com>").code == 250


def test_client_disconnects_mid_data(server):
    subject = unique("gone")
    before = server.msg_files()
    r = server.session()
    assert r.cmd("MAIL FROM:<g@example.org>").code == 250
    assert r.cmd("RCPT TO:<hitsuji@example.com>").code == 250
    assert r.cmd("DATA").code == 354
    r.send(("Subject: %s\r\n\r\nhalf" % subject).encode() + b"x" * 100000)
    r.close()
    time.sleep(0.3)
    r = server.session()
    assert r.cmd("NOOP").code == 250
    r.close()
    assert server.find_mail("hitsuji@example.com", subject) == []
    assert server.msg_files() == before


def test_no_starttls_without_certificate(yubin_factory):
    srv = yubin_factory(overrides={"server": {"tls_cert": None, "tls_key": None,
                                              "tls_selfsigned": None}})
    r = srv.raw()
    rep = r.cmd("EHLO x.example")
    assert rep.code == 250
    assert "STARTTLS" not in [l.split(" ")[0].upper() for l in rep.lines[1:]]
    rep = r.cmd("STARTTLS")
    # RFC 3207 4: 454 when TLS is not available; or simply not implemented.
    assert rep.code in (454, 502, 500), rep
    assert r.cmd("NOOP").code == 250
    r.close()
