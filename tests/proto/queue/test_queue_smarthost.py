"""The outbound queue through a smarthost ([relay] smarthost): two yubin
servers on 127.0.0.1, "example.com" relaying everything to
"hogehoge.com"'s SMTP listener. The same queue, client and bounces as
delivery by MX (tests/proto/relay), without DNS.

Scenarios of [M6]: delivered with a Received: trail of both hosts and TLS
logged; the peer down, retried, delivered after it comes back; an unknown
recipient bounced (RFC 3464) to the sender's INBOX; a restart of the
sending server mid-queue loses nothing; the queue CLI shows every row."""

import email
import smtplib
import time

import pytest

import yubintest
from yubintest import PASSWORD

SHIRO = "shiroyagi@example.com"
KURO = "kuroyagi@hogehoge.com"


def hogehoge(factory, start=True):
    def provision(inst):
        inst.add_domain("hogehoge.com")
        inst.add_user(KURO)
    return factory({"server": {"hostname": "mx.hogehoge.com"}},
                   provision=provision, start=start)


def example(factory, smarthost_port, extra=None):
    ov = {
        "server": {"hostname": "mx.example.com"},
        "submission": {"listen": "127.0.0.1:%d" % yubintest.free_port()},
        "relay": {"smarthost": "127.0.0.1:%d" % smarthost_port,
                  "smarthost_tls": "opportunistic"},
        # A quick schedule: retries within seconds, not minutes.
        "queue": {"retry_min": "1s", "retry_max": "2s"},
        "limits": {"auth_fail_delay": "0"},
    }
    for s, keys in (extra or {}).items():
        ov.setdefault(s, {}).update(keys)

    def provision(inst):
        inst.add_domain("example.com")
        inst.add_user(SHIRO)
    return factory(ov, provision=provision)


def queue_rows(inst):
    """The rows of `yubin queue list`, without its header line."""
    return inst.lines("queue", "list")[1:]


def found(inst, address, subject):
    """The row of the one message of address with subject, or None."""
    got = inst.find_mail(address, subject)
    assert len(got) <= 1, got
    return got[0][0] if got else None


def submit(inst, rcpts, subject, body="Hello from example.com.\r\n"):
    msg = yubintest.make_msg(subject, to=", ".join(rcpts), body=body, frm=SHIRO)
    with smtplib.SMTP("127.0.0.1", inst.listener_port("submission"), timeout=20) as s:
        s.ehlo("client.example.com")
        s.login(SHIRO, PASSWORD)
        s.sendmail(SHIRO, rcpts, msg)
    return msg


def wait(cond, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    return cond()


def test_delivered_with_both_hosts_in_received(yubin_factory):
    b = hogehoge(yubin_factory)
    a = example(yubin_factory, b.port)
    subject = yubintest.unique("relay")
    submit(a, [KURO], subject)
    row = wait(lambda: found(b, KURO, subject))
    assert row, "not delivered; A's log:\n" + a.log_text()[-3000:]
    msg = email.message_from_bytes(b.mail_show(KURO, "INBOX", row.uid))
    received = msg.get_all("Received")
    # Newest first: hogehoge's receipt from example's client, then
    # example's receipt from the submitting user.
    assert "by mx.hogehoge.com" in received[0], received
    assert "mx.example.com" in received[0], received
    assert "by mx.example.com" in received[1], received
    assert msg["Return-Path"] == "<%s>" % SHIRO
    assert wait(lambda: queue_rows(a) == []), queue_rows(a)
    log = a.log_text()
    assert "event=relayed" in log and "rcpt=%s" % KURO in log
    # Opportunistic STARTTLS was used, and its (failed: self-signed)
    # verification logged.
    assert "event=tls" in log and "verified=no" in log
    # The body file went with the last reference.
    assert wait(lambda: not a.msg_files()), a.msg_files()


def test_peer_down_then_back(yubin_factory):
    b = hogehoge(yubin_factory)
    a = example(yubin_factory, b.port)
    b.stop()
    subject = yubintest.unique("down")
    submit(a, [KURO], subject)
    rows = wait(lambda: [r for r in queue_rows(a) if "refused" in r.lower()])
    assert rows, queue_rows(a)
    b.start()
    assert wait(lambda: found(b, KURO, subject), 30), a.log_text()[-3000:]
    assert wait(lambda: queue_rows(a) == [])
    assert "event=relay_host_failed" in a.log_text()


def test_unknown_recipient_bounces_to_sender(yubin_factory):
    b = hogehoge(yubin_factory)
    a = example(yubin_factory, b.port)
    subject = yubintest.unique("bounce")
    nobody = "nobody-here@hogehoge.com"
    submit(a, [nobody, KURO], subject)
    assert wait(lambda: found(b, KURO, subject))
    bounce = wait(lambda: found(a, SHIRO, "Undelivered Mail Returned to Sender"))
    assert bounce, a.log_text()[-3000:]
    raw = a.mail_show(SHIRO, "INBOX", bounce.uid)
    msg = email.message_from_bytes(raw)
    assert msg["Return-Path"] == "<>"
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts] == \
        ["text/plain", "message/delivery-status", "text/rfc822-headers"]
    status = parts[1].get_payload()
    per_rcpt = status[1]
    assert per_rcpt["Final-Recipient"] == "rfc822; " + nobody
    assert per_rcpt["Action"] == "failed"
    assert per_rcpt["Status"] == "5.1.1"
    assert per_rcpt["Diagnostic-Code"].startswith("smtp; 550 5.1.1")
    assert per_rcpt["Remote-MTA"] == "dns; 127.0.0.1"
    assert ("Subject: " + subject).encode() in raw
    # Only the failed recipient is reported; the queue is empty.
    assert KURO.encode() not in parts[1].as_bytes()
    assert wait(lambda: queue_rows(a) == [])


def test_restart_mid_queue_loses_nothing(yubin_factory):
    b = hogehoge(yubin_factory)
    a = example(yubin_factory, b.port)
    b.stop()
    subjects = [yubintest.unique("restart") for _ in range(3)]
    for s in subjects:
        submit(a, [KURO], s)
    assert wait(lambda: len(queue_rows(a)) == 3)
    a.stop()
    assert len(queue_rows(a)) == 3
    a.start()
    b.start()
    for s in subjects:
        assert wait(lambda: found(b, KURO, s), 30), s
    assert wait(lambda: queue_rows(a) == [])
    # Exactly once each.
    rows = b.mail_list(KURO)
    for s in subjects:
        assert sum(1 for r in rows if r.subject == s) == 1


def test_null_sender_is_never_bounced(yubin_factory):
    """A message from the null sender (a bounce, an auto-reply) that fails
    is dropped with a log line, never bounced (RFC 5321 6.1): no loop."""
    b = hogehoge(yubin_factory)
    a = example(yubin_factory, b.port)
    s = yubintest.RawSMTP("127.0.0.1", a.listener_port("submission"))
    s.reply()
    s.cmd("EHLO client.example.com")
    assert s.cmd("AUTH PLAIN " + yubintest.sasl_plain(SHIRO, PASSWORD)).code == 235
    assert s.cmd("MAIL FROM:<>").code == 250
    assert s.cmd("RCPT TO:<nobody-here@hogehoge.com>").code == 250
    assert s.cmd("DATA").code == 354
    s.send(yubintest.dot_stuff(yubintest.make_msg("null sender", frm=SHIRO)))
    assert s.reply().code == 250
    s.close()
    assert wait(lambda: "event=bounce_skipped" in a.log_text()), a.log_text()[-2000:]
    assert wait(lambda: queue_rows(a) == [])
    assert a.mail_list(SHIRO) == []


def test_smarthost_with_auth_and_required_tls(yubin_factory):
    """[relay] smarthost_user/password: AUTH PLAIN after STARTTLS to the
    smarthost's submission port (as to an ISP's relay); with a wrong
    password the mail waits, with the reason in the queue."""
    relay_user = "relay@hogehoge.com"

    def provision(inst):
        inst.add_domain("hogehoge.com")
        inst.add_user(KURO)
        inst.add_user(relay_user)
        # The smarthost's own anti-spoofing: the relay account may send as
        # example.com's user.
        inst.cli_ok("user", "sendas", "add", relay_user, SHIRO)
    sub_port = yubintest.free_port()
    b = yubin_factory({"server": {"hostname": "mx.hogehoge.com"},
                       "submission": {"listen": "127.0.0.1:%d" % sub_port},
                       "limits": {"auth_fail_delay": "0", "auth_lock_failures": "0"}},
                      provision=provision)
    a = example(yubin_factory, sub_port, extra={"relay": {
        "smarthost_user": relay_user, "smarthost_password": "wrong",
        "smarthost_tls": "required"}})
    subject = yubintest.unique("auth")
    submit(a, [KURO], subject)
    assert wait(lambda: any("AUTH" in r and "535" in r for r in queue_rows(a))), \
        queue_rows(a)
    a.stop()
    a.cfg["relay"]["smarthost_password"] = PASSWORD
    a.write_config()
    a.start()
    assert wait(lambda: found(b, KURO, subject), 30), a.log_text()[-3000:]
    assert wait(lambda: queue_rows(a) == [])
    log = a.log_text()
    assert "event=relay_session" in log and "tls=TLSv1.3" in log
    assert "event=auth protocol=smtp" in b.log_text() and "user=%s" % relay_user in b.log_text()


def test_delay_notice_once_then_delivered(yubin_factory):
    """[queue] delay_notice: a recipient still waiting after that long gets
    its sender one "delayed" DSN (RFC 3464 Action: delayed), not one per
    retry; the message is delivered later all the same."""
    b = hogehoge(yubin_factory)
    a = example(yubin_factory, b.port, extra={"queue": {"delay_notice": "2s"}})
    b.stop()
    subject = yubintest.unique("delay")
    submit(a, [KURO], subject)
    row = wait(lambda: found(a, SHIRO, "Delayed Mail"))
    assert row, a.log_text()[-2000:]
    dsn = email.message_from_bytes(a.mail_show(SHIRO, "INBOX", row.uid))
    status = dsn.get_payload()[1].get_payload()[1]
    assert status["Action"] == "delayed"
    assert status["Status"].startswith("4.")
    assert status["Will-Retry-Until"]
    # More retries, no more notices.
    attempts = int(queue_rows(a)[0].split("\t")[2])
    assert wait(lambda: int(queue_rows(a)[0].split("\t")[2]) >= attempts + 2)
    assert len(a.find_mail(SHIRO, "Delayed Mail")) == 1
    b.start()
    assert wait(lambda: found(b, KURO, subject), 30)
    assert wait(lambda: queue_rows(a) == [])
    assert a.find_mail(SHIRO, "Undelivered") == []
