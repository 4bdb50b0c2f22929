"""The [M6] scenarios between two mail hosts (issue 7, "The two-host test"):
example.com and hogehoge.com, each a yubin in its own network namespace,
finding each other by MX in the rig's DNS (see conftest.py).

(a) submitted on example.com:587, delivered by MX into kuroyagi's INBOX at
    hogehoge.com, read there over IMAP, with a Received: trail of both;
(b) hogehoge.com down: the message waits, is retried, and is delivered
    when it is back;
(c) an unknown recipient: hogehoge's 550 becomes a bounce in shiroyagi's
    INBOX;
(d) a domain with no MX and no address, and one with a null MX: bounces;
(e) a peer without STARTTLS and one with it: both delivered, TLS logged;
(f) a restart of the sending server mid-queue loses nothing."""

import email
import smtplib
import ssl

import yubintest
from yubintest import PASSWORD

SHIRO = "shiroyagi@example.com"
KURO = "kuroyagi@hogehoge.com"
FAST = {"queue": {"retry_min": "1s", "retry_max": "2s"}}


def submit(ex, rcpts, subject):
    """shiroyagi submits on example.com's port 587 with STARTTLS and AUTH,
    from the root namespace (a client on the network)."""
    msg = yubintest.make_msg(subject, frm=SHIRO, to=", ".join(rcpts),
                             body="From example.com, by MX.\r\n")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(ex.addr, 587, timeout=20) as s:
        s.ehlo("client.example.com")
        s.starttls(context=ctx)
        s.ehlo("client.example.com")
        s.login(SHIRO, PASSWORD)
        s.sendmail(SHIRO, rcpts, msg)


def queue_rows(inst):
    return inst.lines("queue", "list")[1:]


def delivered(hg, subject):
    return [m for m in hg.fetch_inbox(KURO) if ("Subject: " + subject).encode() in m]


def bounce_for(ex, subject):
    """The DSN in shiroyagi's INBOX about subject, parsed, or None."""
    for row, raw in ex.find_mail(SHIRO, "Undelivered Mail Returned to Sender"):
        if ("Subject: " + subject).encode() in raw:
            return email.message_from_bytes(raw)
    return None


def report(dsn):
    """The per-recipient fields of a DSN's message/delivery-status part."""
    return dsn.get_payload()[1].get_payload()[1:]


def test_a_delivered_by_mx_and_read_over_imap(rig):
    ex = rig.example.serve(FAST)
    hg = rig.hogehoge.serve()
    subject = yubintest.unique("a")
    submit(ex, [KURO], subject)
    msgs = hg.wait_for(lambda: delivered(hg, subject), what="delivery to hogehoge")
    msg = email.message_from_bytes(msgs[0])
    received = msg.get_all("Received")
    assert "by mx.hogehoge.com" in received[0] and "mx.example.com" in received[0], received
    assert rig.example.ipv4 in received[0] or (rig.example.ipv6 or "-") in received[0]
    assert "by mx.example.com" in received[1], received
    assert msg["Return-Path"] == "<%s>" % SHIRO
    assert msg["Delivered-To"] == KURO
    ex.wait_for(lambda: queue_rows(ex) == [], what="empty queue")
    log = ex.log_text()
    assert "event=relayed" in log and "relay=mx.hogehoge.com" in log


def test_b_peer_down_retried_then_delivered(rig):
    ex = rig.example.serve(FAST)
    hg = rig.hogehoge.serve()
    hg.stop()
    subject = yubintest.unique("b")
    submit(ex, [KURO], subject)
    # Waiting, retried (the attempts count grows), with the reason shown.
    ex.wait_for(lambda: any(int(r.split("\t")[2]) >= 2 for r in queue_rows(ex)),
                what="two attempts")
    assert "refused" in queue_rows(ex)[0].lower(), queue_rows(ex)
    hg.start()
    hg.wait_for(lambda: delivered(hg, subject), what="delivery after the restart")
    ex.wait_for(lambda: queue_rows(ex) == [], what="empty queue")
    assert len(delivered(hg, subject)) == 1


def test_c_unknown_recipient_bounces(rig):
    ex = rig.example.serve(FAST)
    rig.hogehoge.serve()
    subject = yubintest.unique("c")
    submit(ex, ["nobody@hogehoge.com"], subject)
    dsn = ex.wait_for(lambda: bounce_for(ex, subject), what="bounce")
    (r,) = report(dsn)
    assert r["Final-Recipient"] == "rfc822; nobody@hogehoge.com"
    assert r["Status"] == "5.1.1"
    assert r["Remote-MTA"] == "dns; mx.hogehoge.com"
    assert r["Diagnostic-Code"].startswith("smtp; 550 5.1.1")
    ex.wait_for(lambda: queue_rows(ex) == [], what="empty queue")


def test_d_no_address_and_null_mx_bounce(rig):
    ex = rig.example.serve(FAST)
    subject = yubintest.unique("d")
    submit(ex, ["someone@nowhere.example", "someone@nullmx.example"], subject)
    dsns = ex.wait_for(lambda: [m for _, m in [(0, bounce_for(ex, subject))] if m] and
                       len(ex.find_mail(SHIRO, "Undelivered")) >= 2 and
                       ex.find_mail(SHIRO, "Undelivered"), what="two bounces")
    reports = {}
    for row, raw in dsns:
        for r in report(email.message_from_bytes(raw)):
            reports[r["Final-Recipient"]] = r
    nowhere = reports["rfc822; someone@nowhere.example"]
    nullmx = reports["rfc822; someone@nullmx.example"]
    assert nowhere["Status"].startswith("5."), nowhere
    assert nullmx["Status"] == "5.1.10"
    assert "null MX" in nullmx["Diagnostic-Code"]
    # Bounced at once, not after retries.
    assert "attempts" not in nowhere["Diagnostic-Code"]
    ex.wait_for(lambda: queue_rows(ex) == [], what="empty queue")


def test_e_with_and_without_starttls(rig):
    ex = rig.example.serve(FAST)
    # hogehoge first without TLS at all (no STARTTLS offered)...
    hg = rig.hogehoge.serve({"server": {"tls_cert": None, "tls_key": None,
                                        "tls_selfsigned": None}})
    s1 = yubintest.unique("e-plain")
    submit(ex, [KURO], s1)
    # (Read with the CLI: without TLS its IMAP would not take a password
    # from the network.)
    hg.wait_for(lambda: hg.find_mail(KURO, s1), what="delivery in clear")
    log = ex.log_text()
    assert "event=relay_session" in log and "peer=mx.hogehoge.com" in log
    assert "tls=none" in log
    hg.stop()
    # ...then with it: opportunistic STARTTLS, the result of the (failing:
    # self-signed) verification logged.
    hg2 = rig.hogehoge.serve()
    s2 = yubintest.unique("e-tls")
    submit(ex, [KURO], s2)
    hg2.wait_for(lambda: delivered(hg2, s2), what="delivery over TLS")
    log = ex.log_text()
    assert "tls=TLSv1.3 verified=no" in log or "tls=TLSv1.2 verified=no" in log, log[-3000:]
    msg = delivered(hg2, s2)[0]
    assert b"using TLS" in msg.split(b"\r\n\r\n")[0]


def test_f_restart_mid_queue_loses_nothing(rig):
    ex = rig.example.serve(FAST)
    hg = rig.hogehoge.serve()
    hg.stop()
    subjects = [yubintest.unique("f") for _ in range(3)]
    for s in subjects:
        submit(ex, [KURO], s)
    ex.wait_for(lambda: len(queue_rows(ex)) == 3, what="three queued")
    ex.stop()
    assert len(queue_rows(ex)) == 3
    ex.start()
    hg.start()
    for s in subjects:
        hg.wait_for(lambda: delivered(hg, s), what="delivery of " + s)
    ex.wait_for(lambda: queue_rows(ex) == [], what="empty queue")
    for s in subjects:
        assert len(delivered(hg, s)) == 1
