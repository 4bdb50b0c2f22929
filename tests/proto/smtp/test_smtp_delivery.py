"""What is stored after DATA: trace fields, exact bytes, one body for many
recipients, aliases, catch-alls, plus-addressing, postmaster, relay denial,
8BITMIME and SMTPUTF8 (RFC 5321, 6152, 6531)."""

import os
import re

import pytest

import yubintest
from yubintest import HOSTNAME, EHLO_NAME, make_msg, dot_stuff, unique, \
    send_data, split_stored


def received_field(stored):
    fields, _ = split_stored(stored)
    assert len(fields) == 3, fields
    return fields[2].decode("utf-8", "replace")


def test_delivery_exact_bytes(server):
    subject = unique("exact")
    body = (b"First line.\r\n"
            b"..leading dot, stuffed on the wire\r\n"
            b".\tdot and tab\r\n"
            b"...\r\n"
            b"trailing spaces   \r\n"
            b"\r\n"
            b"last line\r\n")
    msg = make_msg(subject, frm="alice@example.org", body=body)
    r = server.session()
    rep = send_data(r, "alice@example.org", ["shiroyagi@example.com"], msg)
    assert (rep.code, rep.enh) == (250, "2.0.0"), rep
    assert re.match(r"^2\.0\.0 Ok: queued as \S+$", rep.lines[0]), rep
    r.close()

    rows = [x for x in server.mail_list("shiroyagi@example.com") if x.subject == subject]
    assert len(rows) == 1, rows
    row = rows[0]
    assert "alice@example.org" in row.from_
    stored = server.mail_show("shiroyagi@example.com", "INBOX", row.uid)
    assert row.size == len(stored), "list SIZE %d != %d bytes shown" % (row.size, len(stored))

    assert stored.startswith(b"Return-Path: <alice@example.org>\r\n"
                             b"Delivered-To: shiroyagi@example.com\r\n"
                             b"Received: "), stored[:300]
    fields, rest = split_stored(stored)
    assert rest == msg, "stored message differs from what was sent (after dot-unstuffing)"
    received = fields[2].decode()
    assert HOSTNAME in received, received
    assert EHLO_NAME in received, received
    assert "127.0.0.1" in received, received
    # RFC 5322 3.6.7: Received ends with "; date-time".
    assert re.search(r";\s*(\w{3},\s*)?\d{1,2} \w{3} \d{4} \d\d:\d\d(:\d\d)? [+-]\d{4}", received), received
    # Every line of what a reader gets ends in CRLF.
    assert b"\n" not in stored.replace(b"\r\n", b"")


def test_dot_unstuffing_only_leading_dot(server):
    subject = unique("dots")
    r = server.session()
    assert r.cmd("MAIL FROM:<d@example.org>").code == 250
    assert r.cmd("RCPT TO:<shiroyagi@example.com>").code == 250
    assert r.cmd("DATA").code == 354
    head = ("Subject: %s\r\n\r\n" % subject).encode()
    r.send(head + b"..x\r\na.b\r\n..\r\n...y\r\nmid.dle.\r\n.\r\n")
    assert r.reply().code == 250
    r.close()
    (row, stored), = server.find_mail("shiroyagi@example.com", subject)
    _, rest = split_stored(stored)
    assert rest == head + b".x\r\na.b\r\n.\r\n..y\r\nmid.dle.\r\n"


def test_message_without_final_crlf_handling(server):
    # An empty body (headers only) is fine.
    subject = unique("nobody")
    r = server.session()
    msg = ("Subject: %s\r\n" % subject).encode()
    rep = send_data(r, "e@example.org", ["shiroyagi@example.com"], msg)
    assert rep.code == 250
    r.close()
    (row, stored), = server.find_mail("shiroyagi@example.com", subject)
    assert split_stored(stored)[1] == msg


def test_null_sender_return_path(server):
    subject = unique("bounce")
    r = server.session()
    rep = send_data(r, "", ["kuroyagi@example.com"], make_msg(subject))
    assert rep.code == 250
    r.close()
    (row, stored), = server.find_mail("kuroyagi@example.com", subject)
    assert stored.startswith(b"Return-Path: <>\r\nDelivered-To: kuroyagi@example.com\r\n")


def test_helo_name_in_received(server):
    subject = unique("helo")
    r = server.raw()
    assert r.cmd("HELO old.client.example").code == 250
    rep = send_data(r, "h@example.org", ["kuroyagi@example.com"], make_msg(subject))
    assert rep.code == 250
    r.close()
    (row, stored), = server.find_mail("kuroyagi@example.com", subject)
    rec = received_field(stored)
    assert "old.client.example" in rec and HOSTNAME in rec, rec


def test_several_recipients_one_body(server):
    subject = unique("multi")
    users = ["shiroyagi@example.com", "kuroyagi@example.com", "hitsuji@example.com"]
    before = server.msg_files()
    msg = make_msg(subject, to=", ".join(users))
    r = server.session()
    rep = send_data(r, "multi@example.org", users, msg)
    assert (rep.code, rep.enh) == (250, "2.0.0"), rep
    r.close()
    for u in users:
        got = server.find_mail(u, subject)
        assert len(got) == 1, (u, got)
        stored = got[0][1]
        assert stored.startswith(b"Return-Path: <multi@example.org>\r\nDelivered-To: %s\r\n"
                                 % u.encode()), stored[:200]
        assert split_stored(stored)[1] == msg
    new = server.msg_files() - before
    assert len(new) == 1, "want exactly one new body file, got %r" % sorted(new)
    # The body file holds the message (and no per-recipient line).
    path = new.pop()
    with open(path, "rb") as f:
        body = f.read()
    assert body.endswith(msg)
    assert b"Delivered-To:" not in body
    # Mail is private: the body file is not readable by other users.
    assert os.stat(path).st_mode & 0o007 == 0, oct(os.stat(path).st_mode)


def test_same_recipient_twice_delivers_once(server):
    subject = unique("dup")
    r = server.session()
    assert r.cmd("MAIL FROM:<dup@example.org>").code == 250
    assert r.cmd("RCPT TO:<ushi@example.com>").code == 250
    rep = r.cmd("RCPT TO:<ushi@example.com>")
    assert rep.code == 250, rep
    assert r.cmd("DATA").code == 354
    r.send(dot_stuff(make_msg(subject)))
    assert r.reply().code == 250
    r.close()
    assert len(server.find_mail("ushi@example.com", subject)) == 1


def test_recipient_domain_case_insensitive(server):
    subject = unique("case")
    r = server.session()
    rep = send_data(r, "c@example.org", ["shiroyagi@EXAMPLE.Com"], make_msg(subject))
    assert rep.code == 250
    r.close()
    assert len(server.find_mail("shiroyagi@example.com", subject)) == 1


def test_alias_to_two_users(server):
    subject = unique("alias")
    r = server.session()
    rep = send_data(r, "al@example.org", ["team@example.com"], make_msg(subject, to="team@example.com"))
    assert rep.code == 250
    r.close()
    for u in ("shiroyagi@example.com", "kuroyagi@example.com"):
        got = server.find_mail(u, subject)
        assert len(got) == 1, u
        assert split_stored(got[0][1])[0][0] == b"Return-Path: <al@example.org>"


def test_alias_and_member_both_addressed_deliver_once(server):
    subject = unique("aliasdup")
    r = server.session()
    rep = send_data(r, "al@example.org", ["team@example.com", "shiroyagi@example.com"],
                    make_msg(subject))
    assert rep.code == 250
    r.close()
    assert len(server.find_mail("shiroyagi@example.com", subject)) == 1
    assert len(server.find_mail("kuroyagi@example.com", subject)) == 1


def test_catch_all(server):
    subject = unique("catchall")
    r = server.session()
    rep = send_data(r, "ca@example.org", ["whatever-%s@catchall.example" % subject],
                    make_msg(subject))
    assert rep.code == 250
    r.close()
    assert len(server.find_mail("kuroyagi@example.com", subject)) == 1
    assert server.find_mail("owner@catchall.example", subject) == []


def test_catch_all_does_not_take_real_accounts(server):
    subject = unique("catchreal")
    r = server.session()
    rep = send_data(r, "ca@example.org", ["owner@catchall.example"], make_msg(subject))
    assert rep.code == 250
    r.close()
    assert len(server.find_mail("owner@catchall.example", subject)) == 1
    assert server.find_mail("kuroyagi@example.com", subject) == []


def test_alias_with_remote_target_is_queued(yubin_factory):
    # The queue would route remote.example by DNS and bounce it at once
    # (NXDOMAIN); a smarthost nobody listens on keeps the row deferred.
    server = yubin_factory(
        overrides={"relay": {"smarthost": "127.0.0.1:%d" % yubintest.free_port()}},
        provision=yubintest.provision_standard)
    subject = unique("remote")
    r = server.session()
    rep = send_data(r, "rem@example.org", ["list@example.com"], make_msg(subject))
    assert (rep.code, rep.enh) == (250, "2.0.0"), rep
    r.close()
    assert len(server.find_mail("hitsuji@example.com", subject)) == 1
    q = server.queue_list()
    rows = [l for l in q.splitlines() if "friend@remote.example" in l]
    assert rows, "remote alias target not in `yubin queue list`:\n" + q
    # The local member was delivered now; it is not queued.
    assert "hitsuji@example.com" not in q, q


def test_plus_addressing(server):
    subject = unique("plus")
    r = server.session()
    rep = send_data(r, "p@example.org", ["shiroyagi+tag@example.com"], make_msg(subject))
    assert rep.code == 250
    r.close()
    got = server.find_mail("shiroyagi@example.com", subject)
    assert len(got) == 1


def test_plus_addressing_unknown_base(server):
    r = server.session()
    assert r.cmd("MAIL FROM:<p@example.org>").code == 250
    rep = r.cmd("RCPT TO:<nosuchuser+tag@example.com>")
    assert (rep.code, rep.enh) == (550, "5.1.1"), rep
    r.close()


@pytest.mark.parametrize("pm", ["postmaster@example.com", "POSTMASTER@example.com",
                                "PostMaster@Example.COM"])
def test_postmaster_always_accepted(server, pm):
    subject = unique("pm")
    r = server.session()
    assert r.cmd("MAIL FROM:<p@example.org>").code == 250
    rep = r.cmd("RCPT TO:<%s>" % pm)
    assert (rep.code, rep.enh) == (250, "2.1.5"), rep
    assert r.cmd("DATA").code == 354
    r.send(dot_stuff(make_msg(subject)))
    rep = r.reply()
    assert rep.code == 250, rep
    r.close()
    # It lands in the INBOX of some account of the domain.
    found = [u for u in yubintest.USERS if u.endswith("@example.com")
             and server.find_mail(u, subject)]
    assert len(found) == 1, found


def test_bare_postmaster(server):
    # RFC 5321 4.1.1.3: "<Postmaster>" without a domain must be accepted.
    r = server.session()
    assert r.cmd("MAIL FROM:<p@example.org>").code == 250
    rep = r.cmd("RCPT TO:<Postmaster>")
    assert rep.code == 250, rep
    r.close()


@pytest.mark.parametrize("rcpt", [
    "someone@other.example",
    "postmaster@other.example",
    "shiroyagi@[127.0.0.1]",
    "shiroyagi@[IPv6:::1]",
    '"quoted"@other.example',
    "shiroyagi@example.com.other.example",
    "shiroyagi@sub.example.com",
])
def test_relay_denied(server, rcpt):
    r = server.session()
    assert r.cmd("MAIL FROM:<shiroyagi@example.com>").code == 250
    rep = r.cmd("RCPT TO:<%s>" % rcpt)
    assert (rep.code, rep.enh) == (554, "5.7.1"), rep
    # The transaction has no recipient: DATA is refused, nothing is queued.
    rep = r.cmd("DATA")
    assert rep.code in (503, 554), rep
    r.close()
    q = server.queue_list()
    assert "other.example" not in q and "[127.0.0.1]" not in q and "IPv6" not in q, q


def test_percent_hack_is_not_a_route(server):
    r = server.session()
    assert r.cmd("MAIL FROM:<p@example.org>").code == 250
    rep = r.cmd("RCPT TO:<shiroyagi%other.example@example.com>")
    assert (rep.code, rep.enh) == (550, "5.1.1"), rep
    r.close()
    assert "other.example" not in server.queue_list()


@pytest.mark.parametrize("rcpt", [
    "shiroyagi@example.com@other.example",
    "other.example!shiroyagi@example.com",
])
def test_other_relay_hacks_never_relay(server, rcpt):
    r = server.session()
    assert r.cmd("MAIL FROM:<p@example.org>").code == 250
    rep = r.cmd("RCPT TO:<%s>" % rcpt)
    assert rep.code >= 500, rep
    r.close()
    assert "other.example" not in server.queue_list()


def test_source_route_ignored(server):
    subject = unique("route")
    r = server.session()
    assert r.cmd("MAIL FROM:<p@example.org>").code == 250
    rep = r.cmd("RCPT TO:<@other.example:kuroyagi@example.com>")
    assert rep.code == 250, rep
    rep = r.cmd("RCPT TO:<@other.example,@third.example:nosuch@example.com>")
    assert (rep.code, rep.enh) == (550, "5.1.1"), rep
    rep = r.cmd("RCPT TO:<@example.com:someone@other.example>")
    assert (rep.code, rep.enh) == (554, "5.7.1"), rep
    assert r.cmd("DATA").code == 354
    r.send(dot_stuff(make_msg(subject)))
    assert r.reply().code == 250
    r.close()
    got = server.find_mail("kuroyagi@example.com", subject)
    assert len(got) == 1
    assert b"Delivered-To: kuroyagi@example.com\r\n" in got[0][1]
    assert "other.example" not in server.queue_list()


def test_user_added_while_running(server):
    addr = "late-%s@example.com" % unique("u")[2:]
    subject = unique("late")
    r = server.session()
    assert r.cmd("MAIL FROM:<p@example.org>").code == 250
    assert r.cmd("RCPT TO:<%s>" % addr).code == 550
    r.close()
    server.add_user(addr)
    r = server.session()
    rep = send_data(r, "p@example.org", [addr], make_msg(subject))
    assert rep.code == 250
    r.close()
    assert len(server.find_mail(addr, subject)) == 1


def test_8bitmime(server):
    subject = unique("8bit")
    body = "Grüße aus Köln — 郵便\r\nbytes: ".encode() + bytes(range(0x80, 0x100)) + b"\r\n"
    msg = make_msg(subject, body=body,
                   extra_headers=["MIME-Version: 1.0",
                                  "Content-Type: text/plain; charset=utf-8",
                                  "Content-Transfer-Encoding: 8bit"])
    r = server.session()
    rep = send_data(r, "eight@example.org", ["shiroyagi@example.com"], msg,
                    params=" BODY=8BITMIME")
    assert rep.code == 250, rep
    r.close()
    (row, stored), = server.find_mail("shiroyagi@example.com", subject)
    assert split_stored(stored)[1] == msg


def test_body_7bit_param(smtp_session):
    rep = smtp_session.cmd("MAIL FROM:<a@example.org> BODY=7BIT")
    assert rep.code == 250, rep


def test_body_param_bad_value(smtp_session):
    rep = smtp_session.cmd("MAIL FROM:<a@example.org> BODY=9BIT")
    assert rep.code in (501, 555), rep


def test_smtputf8(server):
    subject = unique("utf8")
    sender = "ü@example.org"
    msg = make_msg(subject, frm=sender, to="shiroyagi@example.com",
                   body="日本語の本文\r\n")
    r = server.session()
    assert r.cmd("MAIL FROM:<%s> SMTPUTF8" % sender).code == 250
    assert r.cmd("RCPT TO:<shiroyagi@example.com>").code == 250
    assert r.cmd("DATA").code == 354
    r.send(dot_stuff(msg))
    assert r.reply().code == 250
    r.close()
    (row, stored), = server.find_mail("shiroyagi@example.com", subject)
    assert stored.startswith("Return-Path: <ü@example.org>\r\n".encode())
    assert split_stored(stored)[1] == msg


def test_utf8_address_without_smtputf8(smtp_session):
    rep = smtp_session.cmd("MAIL FROM:<ü@example.org>")
    assert (rep.code == 553 and rep.enh == "5.6.7") or rep.code == 501, rep


def test_utf8_rcpt_without_smtputf8(smtp_session):
    assert smtp_session.cmd("MAIL FROM:<a@example.org>").code == 250
    rep = smtp_session.cmd("RCPT TO:<shïroyagi@example.com>")
    assert (rep.code == 553 and rep.enh == "5.6.7") or rep.code == 501, rep


def test_message_size_in_list_matches(server):
    subject = unique("size")
    body = b"x" * 5000 + b"\r\n"
    msg = make_msg(subject, body=body)
    r = server.session()
    assert send_data(r, "s@example.org", ["ushi@example.com"], msg).code == 250
    r.close()
    (row, stored), = server.find_mail("ushi@example.com", subject)
    assert row.size == len(stored)
    assert row.size > len(msg)


def test_user_deleted_while_running(server):
    addr = "gone-%s@example.com" % unique("u")[2:]
    server.add_user(addr)
    r = server.session()
    assert r.cmd("MAIL FROM:<p@example.org>").code == 250
    assert r.cmd("RCPT TO:<%s>" % addr).code == 250
    r.close()
    server.cli_ok("user", "del", addr)
    r = server.session()
    assert r.cmd("MAIL FROM:<p@example.org>").code == 250
    rep = r.cmd("RCPT TO:<%s>" % addr)
    assert (rep.code, rep.enh) == (550, "5.1.1"), rep
    r.close()


def test_domain_and_alias_added_while_running(server):
    dom = "%s.example" % unique("d")
    r = server.session()
    assert r.cmd("MAIL FROM:<p@example.org>").code == 250
    rep = r.cmd("RCPT TO:<info@%s>" % dom)
    assert (rep.code, rep.enh) == (554, "5.7.1"), rep
    r.close()
    server.add_domain(dom)
    r = server.session()
    assert r.cmd("MAIL FROM:<p@example.org>").code == 250
    rep = r.cmd("RCPT TO:<info@%s>" % dom)
    assert (rep.code, rep.enh) == (550, "5.1.1"), rep
    r.close()
    server.add_alias("info@" + dom, "ushi@example.com")
    subject = unique("newalias")
    r = server.session()
    assert send_data(r, "p@example.org", ["info@" + dom], make_msg(subject)).code == 250
    r.close()
    assert len(server.find_mail("ushi@example.com", subject)) == 1


def test_mail_list_from_falls_back_to_envelope_sender(server):
    """`yubin mail list` shows the From: header; a message without one
    shows its envelope sender, in angle brackets."""
    subject = unique("nofrom")
    msg = ("To: hitsuji@example.com\r\nSubject: %s\r\n\r\nNo From here.\r\n"
           % subject).encode()
    r = server.session()
    rep = send_data(r, "envelope@example.org", ["hitsuji@example.com"], msg)
    assert rep.code == 250, rep
    # The null sender (a bounce) without From: leaves the column empty.
    subject2 = unique("nofrom-null")
    msg2 = ("To: hitsuji@example.com\r\nSubject: %s\r\n\r\nBounce.\r\n"
            % subject2).encode()
    rep = send_data(r, "", ["hitsuji@example.com"], msg2)
    assert rep.code == 250, rep
    # With a From:, that is what shows.
    subject3 = unique("withfrom")
    rep = send_data(r, "envelope@example.org", ["hitsuji@example.com"],
                    make_msg(subject3, frm="header@example.org", to="hitsuji@example.com"))
    assert rep.code == 250, rep
    r.close()
    rows = {x.subject: x for x in server.mail_list("hitsuji@example.com")}
    assert rows[subject].from_ == "<envelope@example.org>", rows[subject]
    assert rows[subject2].from_ == "", rows[subject2]
    assert rows[subject3].from_ == "Alice <header@example.org>", rows[subject3]
