"""[M7] between the two hosts of the relay rig (issue 8, item 6): mail
that example.com's yubin signs on its way out (`yubin dkim keygen`, the
queue's DKIM signing) arrives at hogehoge.com with dkim=pass and
dmarc=pass in hogehoge's Authentication-Results; a message claiming to be
from example.com sent by another machine (the rig's root namespace, with
no signature) is refused with 550 5.7.1 (example.com publishes p=reject).

SPF: example.com publishes "v=spf1 ip4:<mx.example.com> ip6:... -all", so
the relayed message has spf=pass too."""

import email
import re

import yubintest
from test_relay_scenarios import FAST, KURO, SHIRO, delivered, submit

MAILAUTH = {"mailauth": {"spf": "yes", "dkim": "yes", "dmarc": "yes"}}


def keygen(inst, selector="k1", algorithm="ed25519"):
    out = inst.cli_ok("dkim", "keygen", "example.com", "--selector", selector,
                      "--algorithm", algorithm)
    m = re.match(r'^(\S+)\. IN TXT((?: "[^"]*")+)$', out.strip())
    assert m, out
    return m.group(1), "".join(re.findall(r'"([^"]*)"', m.group(2)))


def publish(rig, name, txt):
    rig.dns.add(name, "TXT", [txt[i:i + 255] for i in range(0, len(txt), 255)])


def authres(raw):
    msg = email.message_from_bytes(raw)
    return [re.sub(r"\s+", " ", v) for v in msg.get_all("Authentication-Results") or []]


def test_signed_mail_from_example_passes_at_hogehoge(rig):
    ex = rig.example.serve(FAST)
    name, txt = keygen(ex)
    publish(rig, name, txt)
    publish(rig, "_dmarc.example.com", "v=DMARC1; p=reject")
    publish(rig, "example.com", "v=spf1 ip4:%s%s -all" % (
        rig.example.ipv4, " ip6:%s" % rig.example.ipv6 if rig.example.ipv6 else ""))
    hg = rig.hogehoge.serve(MAILAUTH)
    subject = yubintest.unique("m7-pass")
    submit(ex, [KURO], subject)
    msgs = hg.wait_for(lambda: delivered(hg, subject), what="delivery to hogehoge")
    ars = authres(msgs[0])
    assert len(ars) == 1, ars
    ar = ars[0]
    assert ar.startswith("mx.hogehoge.com;"), ar
    assert re.search(r"\bdkim=pass header\.d=example\.com header\.s=k1 header\.a=ed25519-sha256\b", ar), ar
    assert "spf=pass smtp.mailfrom=example.com" in ar, ar
    assert "dmarc=pass policy.dmarc=reject header.from=example.com" in ar, ar
    assert "event=mailauth" in hg.log_text()


def test_forged_from_example_is_refused_at_hogehoge(rig):
    publish(rig, "_dmarc.example.com", "v=DMARC1; p=reject")
    publish(rig, "example.com", "v=spf1 ip4:%s -all" % rig.example.ipv4)
    hg = rig.hogehoge.serve(MAILAUTH)
    subject = yubintest.unique("m7-forged")
    msg = yubintest.make_msg(subject, frm=SHIRO, to=KURO, body="Pay this invoice.\r\n")
    # from the rig's root namespace: a machine that is not mx.example.com
    r = hg.raw()
    try:
        assert r.cmd("EHLO elsewhere.example").code == 250
        rep = yubintest.send_data(r, SHIRO, [KURO], msg)
        assert (rep.code, rep.enh) == (550, "5.7.1"), rep
    finally:
        r.close()
    assert delivered(hg, subject) == []
    log = hg.log_text()
    assert "action=reject" in log
    assert re.search(r"event=mailauth .*spf=fail dkim=none dmarc=fail policy=reject action=reject", log), log
