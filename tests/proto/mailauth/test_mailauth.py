"""Mail authentication on port 25 ([M7]): DKIM verification of what
arrives, DMARC (RFC 9989) on the From: domain, the Authentication-Results
field (RFC 8601) added for the recipient, and DMARC's policy applied:
reject -> 550 5.7.1, quarantine -> the recipient's Junk."""

import imaplib
import re
import time

import dkim

import yubintest
from mailauthtest import RCPT, SELECTOR, overrides, session_from

AUTHSERV = yubintest.HOSTNAME


def signed(msg, key, domain="signed.example"):
    sig = dkim.sign(msg, SELECTOR.encode(), domain.encode(), key,
                    canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    return sig + msg


def send(inst, msg, mail_from="bounce@sender.example"):
    r = inst.session()
    try:
        return yubintest.send_data(r, mail_from, [RCPT], msg)
    finally:
        r.close()


def authres(stored):
    """The Authentication-Results fields of a stored message, unfolded."""
    head = stored.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    head = re.sub(r"\r\n[ \t]+", " ", head)
    return [l.split(":", 1)[1].strip() for l in head.split("\r\n")
            if l.lower().startswith("authentication-results:")]


def stored_one(inst, marker, mailbox="INBOX"):
    found = inst.find_mail(RCPT, marker, mailbox)
    assert len(found) == 1, (mailbox, marker, [r for r, _ in found])
    return found[0][1]


# RFC 6376 + RFC 9989 4.4.1: an aligned DKIM pass is a DMARC pass
def test_rfc9989_dkim_aligned_pass(server, dkim_key):
    subj = yubintest.unique("dkim-pass")
    msg = signed(yubintest.make_msg(subj, frm="alice@signed.example", to=RCPT), dkim_key[0])
    rep = send(server, msg)
    assert rep.code == 250, rep
    stored = stored_one(server, subj)
    ars = authres(stored)
    assert len(ars) == 1, ars
    ar = ars[0]
    assert ar.startswith(AUTHSERV + ";"), ar
    assert re.search(r"\bdkim=pass header\.d=signed\.example header\.s=sel1 header\.a=rsa-sha256 header\.b=", ar), ar
    assert "dmarc=pass policy.dmarc=reject header.from=signed.example" in ar, ar
    # the field comes before the message's own header, after the trace fields
    assert stored.index(b"Authentication-Results:") < stored.index(b"DKIM-Signature:")


# RFC 9989 7.2: a forged From: of a p=reject domain is refused in SMTP
def test_rfc9989_reject_550_5_7_1(server, dkim_key):
    subj = yubintest.unique("forged")
    rep = send(server, yubintest.make_msg(subj, frm="ceo@example.net", to=RCPT))
    assert (rep.code, rep.enh) == (550, "5.7.1"), rep
    assert server.find_mail(RCPT, subj) == []
    assert server.find_mail(RCPT, subj, "Junk") == []
    # signed by another domain: still not aligned
    subj = yubintest.unique("forged-signed")
    msg = signed(yubintest.make_msg(subj, frm="ceo@example.net", to=RCPT), dkim_key[0])
    rep = send(server, msg)
    assert (rep.code, rep.enh) == (550, "5.7.1"), rep


# RFC 9989 4.7 "sp": an existing subdomain gets sp (quarantine), not p
def test_rfc9989_sp_subdomain_quarantine(server):
    subj = yubintest.unique("subdomain")
    rep = send(server, yubintest.make_msg(subj, frm="x@www.example.net", to=RCPT))
    assert rep.code == 250, rep
    assert server.find_mail(RCPT, subj) == []
    ar = authres(stored_one(server, subj, "Junk"))[0]
    assert "dmarc=fail policy.dmarc=quarantine header.from=www.example.net" in ar, ar


# quarantine: delivered, but into Junk (RFC 6154 \Junk)
def test_rfc9989_quarantine_to_junk(server):
    subj = yubintest.unique("quarantine")
    rep = send(server, yubintest.make_msg(subj, frm="x@quarantine.example", to=RCPT))
    assert rep.code == 250, rep
    assert server.find_mail(RCPT, subj) == []
    stored = stored_one(server, subj, "Junk")
    ar = authres(stored)[0]
    assert "dmarc=fail policy.dmarc=quarantine header.from=quarantine.example" in ar, ar
    assert "dkim=none" in ar, ar


# RFC 9989 4.7 "t": t=y lowers reject to quarantine
def test_rfc9989_t_y(server):
    subj = yubintest.unique("testing")
    rep = send(server, yubintest.make_msg(subj, frm="x@testing.example", to=RCPT))
    assert rep.code == 250, rep
    ar = authres(stored_one(server, subj, "Junk"))[0]
    assert "dmarc=fail policy.dmarc=quarantine" in ar, ar


# no DMARC record: dmarc=none, delivered to the INBOX
def test_rfc9989_no_record(server):
    subj = yubintest.unique("norecord")
    rep = send(server, yubintest.make_msg(subj, frm="x@norecord.example", to=RCPT))
    assert rep.code == 250, rep
    ar = authres(stored_one(server, subj))[0]
    assert "dmarc=none header.from=norecord.example" in ar, ar


# RFC 8601 5: a received field claiming our authserv-id is removed before
# ours is added; one of another authserv-id stays
def test_rfc8601_5_forged_authres_removed(server):
    subj = yubintest.unique("forged-ar")
    msg = yubintest.make_msg(subj, frm="x@norecord.example", to=RCPT, extra_headers=(
        "Authentication-Results: %s; dkim=pass header.d=bank.example;\r\n dmarc=pass" % AUTHSERV,
        "Authentication-Results: %s; spf=pass" % AUTHSERV.upper(),
        "Authentication-Results: mx.elsewhere.example; spf=fail smtp.mailfrom=x",
    ))
    rep = send(server, msg)
    assert rep.code == 250, rep
    stored = stored_one(server, subj)
    ars = authres(stored)
    assert len(ars) == 2, ars
    assert ars[0].startswith(AUTHSERV + ";") and "dmarc=none" in ars[0], ars
    assert ars[1] == "mx.elsewhere.example; spf=fail smtp.mailfrom=x", ars
    assert b"bank.example" not in stored


# RFC 9989 5.3.6: DNS that does not answer ends in temperror within the
# time bound, and the message is delivered (fail open)
def test_rfc9989_temperror_bounded(server):
    subj = yubintest.unique("slow")
    t0 = time.monotonic()
    rep = send(server, yubintest.make_msg(subj, frm="x@slow.example", to=RCPT))
    elapsed = time.monotonic() - t0
    assert rep.code == 250, rep
    assert elapsed < 15, elapsed
    ar = authres(stored_one(server, subj))[0]
    assert "dmarc=temperror header.from=slow.example" in ar, ar


# BDAT LAST takes the same path as the end of DATA
def test_rfc3030_bdat_rejected_too(server):
    subj = yubintest.unique("bdat")
    msg = yubintest.make_msg(subj, frm="ceo@example.net", to=RCPT)
    r = server.session()
    try:
        assert r.cmd("MAIL FROM:<b@sender.example>").code == 250
        assert r.cmd("RCPT TO:<%s>" % RCPT).code == 250
        r.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
        rep = r.reply()
        assert (rep.code, rep.enh) == (550, "5.7.1"), rep
        # the session goes on
        assert r.cmd("NOOP").code == 250
    finally:
        r.close()


# [mailauth] dmarc_reject = no: what DMARC rejects goes to Junk instead
def test_dmarc_reject_no_goes_to_junk(yubin_factory, zone):
    inst = yubin_factory(overrides(zone, dmarc_reject="no"),
                         provision=yubintest.provision_standard)
    subj = yubintest.unique("noreject")
    rep = send(inst, yubintest.make_msg(subj, frm="ceo@example.net", to=RCPT))
    assert rep.code == 250, rep
    ar = authres(stored_one(inst, subj, "Junk"))[0]
    assert "dmarc=fail policy.dmarc=reject header.from=example.net" in ar, ar


# [mailauth] off: no field, no DNS
def test_mailauth_off(yubin_factory, zone):
    inst = yubin_factory(overrides(zone, spf="no", dkim="no", dmarc="no"),
                         provision=yubintest.provision_standard)
    subj = yubintest.unique("off")
    before = len(zone.queries)
    rep = send(inst, yubintest.make_msg(subj, frm="ceo@example.net", to=RCPT))
    assert rep.code == 250, rep
    assert authres(stored_one(inst, subj)) == []
    assert len(zone.queries) == before


# the Junk mailbox is made (\Junk, RFC 6154) when the account has none
def test_junk_created_when_missing(yubin_factory, zone):
    o = overrides(zone)
    o["imap"] = {"listen": "127.0.0.1:%d" % yubintest.free_port()}
    inst = yubin_factory(o, provision=yubintest.provision_standard)
    im = imaplib.IMAP4("127.0.0.1", inst.listener_port("imap"))
    try:
        assert im.login(RCPT, yubintest.PASSWORD)[0] == "OK"
        assert im.delete("Junk")[0] == "OK"
        subj = yubintest.unique("newjunk")
        rep = send(inst, yubintest.make_msg(subj, frm="x@quarantine.example", to=RCPT))
        assert rep.code == 250, rep
        typ, data = im.list('""', "*")
        junk = [l for l in data if b"\\Junk" in l]
        assert len(junk) == 1, data
        assert junk[0].endswith(b'"Junk"') or junk[0].endswith(b" Junk"), data
        im.select("Junk")
        typ, data = im.search(None, "SUBJECT", subj)
        assert typ == "OK" and len(data[0].split()) == 1, data
    finally:
        im.logout()


def send_from(inst, source, mail_from, msg):
    r = session_from(inst, source)
    try:
        return yubintest.send_data(r, mail_from, [RCPT], msg)
    finally:
        r.close()


# RFC 9989 4.4.2: an aligned SPF pass of MAIL FROM is a DMARC pass
def test_rfc9989_spf_aligned_pass(server):
    subj = yubintest.unique("spf-pass")
    rep = send_from(server, "127.0.0.7", "a@spf.example",
                    yubintest.make_msg(subj, frm="x@spf.example", to=RCPT))
    assert rep.code == 250, rep
    ar = authres(stored_one(server, subj))[0]
    assert "spf=pass smtp.mailfrom=spf.example" in ar, ar
    assert "dkim=none" in ar, ar
    assert "dmarc=pass policy.dmarc=reject header.from=spf.example" in ar, ar


# the same envelope from an address SPF does not allow: spf=fail, and
# with no other identifier DMARC fails: refused
def test_rfc9989_spf_fail_rejected(server):
    subj = yubintest.unique("spf-fail")
    rep = send_from(server, "127.0.0.9", "a@spf.example",
                    yubintest.make_msg(subj, frm="x@spf.example", to=RCPT))
    assert (rep.code, rep.enh) == (550, "5.7.1"), rep
    assert server.find_mail(RCPT, subj) == []


# RFC 9989 3.2.10: a subdomain's SPF pass aligns relaxed, not strict (aspf=s)
def test_rfc9989_spf_relaxed_and_strict(server):
    subj = yubintest.unique("spf-relaxed")
    rep = send_from(server, "127.0.0.7", "a@bounce.relaxed.example",
                    yubintest.make_msg(subj, frm="x@relaxed.example", to=RCPT))
    assert rep.code == 250, rep
    ar = authres(stored_one(server, subj))[0]
    assert "spf=pass smtp.mailfrom=bounce.relaxed.example" in ar, ar
    assert "dmarc=pass" in ar, ar
    subj = yubintest.unique("spf-strict")
    rep = send_from(server, "127.0.0.7", "a@bounce.spf.example",
                    yubintest.make_msg(subj, frm="x@spf.example", to=RCPT))
    assert (rep.code, rep.enh) == (550, "5.7.1"), rep


# the server stops while a message's DMARC lookup is pending: the session
# is freed and its lookup cancelled (before, it leaked); nothing was
# acknowledged, so nothing may be lost; stop() must exit 0 and the log be
# free of sanitizer reports (the fixture checks)
def test_stop_during_lookups(yubin_factory, zone):
    o = overrides(zone)
    o["dns"]["timeout"] = "5s"
    o["dns"]["attempts"] = "2"
    inst = yubin_factory(o, provision=yubintest.provision_standard)
    subj = yubintest.unique("stop")
    r = inst.session()
    assert r.cmd("MAIL FROM:<a@sender.example>").code == 250
    assert r.cmd("RCPT TO:<%s>" % RCPT).code == 250
    assert r.cmd("DATA").code == 354
    r.send(yubintest.dot_stuff(yubintest.make_msg(subj, frm="x@slow.example", to=RCPT)))
    deadline = time.monotonic() + 5
    while not any(q[0] == "_dmarc.slow.example" for q in zone.queries):
        assert time.monotonic() < deadline, "no DMARC query"
        time.sleep(0.05)
    t0 = time.monotonic()
    inst.stop_clean()
    assert time.monotonic() - t0 < 5
    r.close()
    assert inst.find_mail(RCPT, subj) == []
