"""DKIM signing on the way out (RFC 6376 5): mail a user of example.com
submits on 587 leaves through the queue signed with example.com's keys
(made by `yubin dkim keygen`), and Debian's dkimpy verifies what the peer
got, byte for byte, also after an 8BITMIME downgrade. Mail that did not
come from an authenticated user (port 25, forwarded by an alias) is not
signed even when its From: names our domain, nor is mail of a domain
without keys. The peer is the recording SMTP server of test_queue_8bit."""

import re
import smtplib

import dkim  # python3-dkim

from test_queue_8bit import SevenBitPeer
from test_queue_smarthost import SHIRO, example, queue_rows, wait
import yubintest
from yubintest import PASSWORD


def keygen(inst, selector, algorithm):
    out = inst.cli_ok("dkim", "keygen", "example.com", "--selector", selector,
                      "--algorithm", algorithm)
    m = re.match(r'^(\S+)\. IN TXT((?: "[^"]*")+)$', out.strip())
    assert m, out
    return m.group(1), "".join(re.findall(r'"([^"]*)"', m.group(2)))


def signed_example(factory, port):
    """example() with an RSA and an Ed25519 key; returns (inst, records)."""
    inst = example(factory, port)
    records = {}
    for sel, alg in (("r1", "rsa"), ("e1", "ed25519")):
        name, txt = keygen(inst, sel, alg)
        records[name] = txt
    return inst, records


def dnsfunc_for(records):
    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        txt = records.get(name.rstrip(".").lower())
        return txt.encode() if txt is not None else None
    return dnsfunc


def verify_all(data, records):
    """dkimpy's verdict on every DKIM-Signature: [(selector, ok)]."""
    d = dkim.DKIM(data)
    sigs = [l for l in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
            if l.lower().startswith(b"dkim-signature:")]
    out = []
    for i in range(len(sigs)):
        ok = d.verify(idx=i, dnsfunc=dnsfunc_for(records))
        sel = re.search(rb"s=([^;]+);", data.split(b"DKIM-Signature:")[i + 1]).group(1)
        out.append((sel.decode(), ok))
    return out


def submit(inst, rcpt, msg):
    with smtplib.SMTP("127.0.0.1", inst.listener_port("submission"), timeout=20) as s:
        s.login(SHIRO, PASSWORD)
        s.sendmail(SHIRO, [rcpt], msg)


def test_submitted_mail_leaves_signed(yubin_factory):
    peer = SevenBitPeer()
    try:
        a, records = signed_example(yubin_factory, peer.port)
        subject = yubintest.unique("signed")
        msg = yubintest.make_msg(subject, frm=SHIRO, to="someone@old.example",
                                 body="Hello  from example.com. \r\n\r\n.dot\r\n\r\n")
        submit(a, "someone@old.example", msg)
        assert wait(lambda: peer.messages), a.log_text()[-3000:]
        data = peer.messages[0][1]
        # both signatures on top, RSA first (understood everywhere)
        assert data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; "
                               b"d=example.com; s=r1;"), data[:300]
        assert data.count(b"DKIM-Signature:") == 2
        assert verify_all(data, records) == [("r1", True), ("e1", True)]
        header = data.split(b"\r\n\r\n", 1)[0].replace(b"\r\n\t", b"")
        assert b"h=from:from:" in header
        assert subject.encode() in data
        assert "event=dkim_signed" in a.log_text()
        # what it protects: the From, the body
        forged = data.replace(b"From: Alice <%s>" % SHIRO.encode(),
                              b"From: Alice <ceo@example.com>")
        assert verify_all(forged, records) == [("r1", False), ("e1", False)]
        assert wait(lambda: queue_rows(a) == [])
    finally:
        peer.close()


def test_signed_after_8bit_downgrade(yubin_factory):
    peer = SevenBitPeer()
    try:
        a, records = signed_example(yubin_factory, peer.port)
        body = "Grüße aus Zürich — naïve café.\r\n"
        msg = ("From: %s\r\nTo: someone@old.example\r\nSubject: eight\r\n"
               "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Transfer-Encoding: 8bit\r\n\r\n" % SHIRO).encode() + body.encode()
        submit(a, "someone@old.example", msg)
        assert wait(lambda: peer.messages), a.log_text()[-3000:]
        data = peer.messages[0][1]
        assert all(b < 0x80 for b in data)
        assert b"Content-Transfer-Encoding: quoted-printable" in data
        assert verify_all(data, records) == [("r1", True), ("e1", True)]
    finally:
        peer.close()


def test_not_signed_unless_submitted(yubin_factory):
    peer = SevenBitPeer()
    try:
        a, records = signed_example(yubin_factory, peer.port)
        # port 25, no AUTH: a message claiming to be from example.com,
        # forwarded to the outside by an alias
        a.add_alias("fwd@example.com", "someone@old.example")
        msg = yubintest.make_msg("forwarded", frm=SHIRO, to="fwd@example.com")
        with smtplib.SMTP("127.0.0.1", a.port, timeout=20) as s:
            s.sendmail("someone@elsewhere.example", ["fwd@example.com"], msg)
        assert wait(lambda: peer.messages), a.log_text()[-3000:]
        data = peer.messages[0][1]
        assert b"DKIM-Signature" not in data, data[:500]
        assert b"forwarded" in data
        assert "event=dkim_signed" not in a.log_text()
    finally:
        peer.close()


def test_domain_without_key_unsigned(yubin_factory):
    peer = SevenBitPeer()
    try:
        a = example(yubin_factory, peer.port)
        msg = yubintest.make_msg("nokey", frm=SHIRO, to="someone@old.example")
        submit(a, "someone@old.example", msg)
        assert wait(lambda: peer.messages), a.log_text()[-3000:]
        assert b"DKIM-Signature" not in peer.messages[0][1]
    finally:
        peer.close()
