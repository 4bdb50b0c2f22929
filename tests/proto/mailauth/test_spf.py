"""SPF (RFC 7208) in the port-25 session ([M7]): evaluated from MAIL FROM
on, in the background, against a test DNS (tests/proto/dns/dnstest.py)
that yubin asks through [dns] servers; the result is ready by the end of
the data (waited for if need be) and never refuses mail by itself.

The result is checked in the Authentication-Results field (RFC 8601
2.7.2) of the stored message and in the server log ("event=spf ...
result=R identity=mailfrom|helo domain=D")."""

import os
import re
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "dns"))

import dnstest  # noqa: E402
import yubintest  # noqa: E402

RCPT = "shiroyagi@example.com"

# The connections come from 127.0.0.1.
ZONE = [
    ("pass.example", "TXT", "v=spf1 ip4:127.0.0.0/8 -all"),
    ("fail.example", "TXT", "v=spf1 ip4:192.0.2.0/24 -all exp=why.fail.example"),
    ("why.fail.example", "TXT", "%{i} may not send for %{d}"),
    ("soft.example", "TXT", "v=spf1 ~all"),
    ("neutral.example", "TXT", "v=spf1 ?all"),
    ("nospf.example", "A", "192.0.2.1"),
    ("nospf.example", "TXT", "google-site-verification=abc"),
    ("perm.example", "TXT", "v=spf1 ip4:127.0.0.1 -all"),
    ("perm.example", "TXT", "v=spf1 -all"),
    ("syntax.example", "TXT", "v=spf1 ip4:127.0.0.1 frobnicate -all"),
    # include and a, mx through the DNS
    ("inc.example", "TXT", "v=spf1 include:pass.example -all"),
    ("mx.example", "TXT", "v=spf1 mx -all"),
    ("mx.example", "MX", "10 mail.mx.example"),
    ("mail.mx.example", "A", "127.0.0.1"),
    # the HELO identity, for MAIL FROM:<>
    ("helo.example", "TXT", "v=spf1 a -all"),
    ("helo.example", "A", "127.0.0.1"),
]


@pytest.fixture(scope="module")
def spf_dns():
    dns = dnstest.TestDNS("127.0.0.1")
    dns.load(ZONE)
    dns.servfail("temp.example")
    dns.drop("silent.example")    # never answered: c-ares times out
    dns.start()
    yield dns
    dns.stop()


def spf_overrides(dns, **mailauth):
    o = dnstest.dns_overrides(dns.spec, timeout="1s", attempts="1")
    o["mailauth"] = {"spf": "yes", "dkim": "no", "dmarc": "no"}
    o["mailauth"].update(mailauth)
    return o


@pytest.fixture(scope="module")
def spf_server(module_yubin_factory, spf_dns):
    return module_yubin_factory(spf_overrides(spf_dns), provision=yubintest.provision_standard)


def spf_lines(inst, domain):
    return [l for l in inst.log_text().splitlines()
            if "event=spf " in l and re.search(r"\bdomain=%s(\s|$)" % re.escape(domain), l)]


def wait_spf(inst, domain, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = spf_lines(inst, domain)
        if lines:
            return lines
        time.sleep(0.05)
    raise AssertionError("no event=spf line for %s\n%s" % (domain, inst.log()))


def authres_spf(inst, subj):
    """The spf= part of the stored message's Authentication-Results."""
    found = inst.find_mail(RCPT, subj)
    assert len(found) == 1, found
    head = found[0][1].split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    head = re.sub(r"\r\n[ \t]+", " ", head)
    ars = [l for l in head.split("\r\n") if l.lower().startswith("authentication-results:")]
    assert len(ars) == 1, ars
    m = re.search(r"\bspf=(\S+)(?: (smtp\.(?:mailfrom|helo))=([^;\s]+))?", ars[0])
    assert m, ars[0]
    return m.group(1).rstrip(";"), m.group(2), m.group(3)


def send(inst, mail_from, ehlo=yubintest.EHLO_NAME):
    subj = yubintest.unique("spf")
    r = inst.session(ehlo=ehlo)
    try:
        rep = yubintest.send_data(r, mail_from, [RCPT],
                                  yubintest.make_msg(subj, frm="a@pass.example", to=RCPT))
    finally:
        r.close()
    return rep, subj


@pytest.mark.parametrize("domain,result", [
    ("pass.example", "pass"),          # RFC 7208 5.6 ip4
    ("fail.example", "fail"),          # RFC 7208 5.1 -all
    ("soft.example", "softfail"),      # RFC 7208 2.6.5
    ("neutral.example", "neutral"),    # RFC 7208 2.6.2
    ("nospf.example", "none"),         # RFC 7208 4.5: no v=spf1 record
    ("nowhere.example", "none"),       # RFC 7208 4.3: NXDOMAIN
    ("perm.example", "permerror"),     # RFC 7208 4.5: two records
    ("syntax.example", "permerror"),   # RFC 7208 4.6: a syntax error
    ("temp.example", "temperror"),     # RFC 7208 4.4: SERVFAIL
    ("inc.example", "pass"),           # RFC 7208 5.2 include
    ("mx.example", "pass"),            # RFC 7208 5.4 mx
])
def test_rfc7208_2_6_results(spf_server, domain, result):
    rep, subj = send(spf_server, "user@" + domain)
    # RFC 7208 8.4: a fail MAY be refused; here DMARC decides, not SPF
    assert rep.code == 250, rep
    assert authres_spf(spf_server, subj) == (result, "smtp.mailfrom", domain)
    lines = wait_spf(spf_server, domain)
    assert len(lines) == 1, lines
    assert " result=%s " % result in lines[0], lines[0]
    assert " identity=mailfrom " in lines[0], lines[0]


# RFC 7208 2.4: with MAIL FROM:<>, the HELO identity is checked
def test_rfc7208_2_4_null_sender_checks_helo(spf_server):
    rep, subj = send(spf_server, "", ehlo="helo.example")
    assert rep.code == 250, rep
    assert authres_spf(spf_server, subj) == ("pass", "smtp.helo", "helo.example")
    line = wait_spf(spf_server, "helo.example")[0]
    assert " result=pass " in line and " identity=helo " in line, line


# RFC 7208 4.3: an address literal as HELO is no domain: none, no DNS
def test_rfc7208_4_3_helo_literal(spf_server, spf_dns):
    before = len(spf_dns.queries)
    r = spf_server.session(ehlo="[127.0.0.1]")
    try:
        rep = yubintest.send_data(r, "", [RCPT], yubintest.make_msg(yubintest.unique("lit")))
    finally:
        r.close()
    assert rep.code == 250, rep
    lines = [l for l in spf_server.log_text().splitlines()
             if "event=spf " in l and "domain=[127.0.0.1]" in l]
    assert lines and " result=none " in lines[-1], lines
    assert len(spf_dns.queries) == before


# The check runs in the background: the session goes on while DNS is
# silent, and the end of the data waits for the result (RFC 7208 4.6.4:
# bounded; here by the resolver's 1 s timeout, which makes temperror).
def test_rfc7208_4_6_4_end_of_data_waits(spf_server):
    r = spf_server.session()
    try:
        t0 = time.monotonic()
        rep = r.cmd("MAIL FROM:<user@silent.example>")
        assert rep.code == 250, rep
        rep = r.cmd("RCPT TO:<%s>" % RCPT)
        assert rep.code == 250, rep
        # MAIL and RCPT were answered without waiting for the DNS
        assert time.monotonic() - t0 < 0.9
        assert spf_lines(spf_server, "silent.example") == []
        rep = r.cmd("DATA")
        assert rep.code == 354, rep
        subj = yubintest.unique("silent")
        r.send(yubintest.make_msg(subj) + b".\r\n")
        rep = r.reply()
        assert rep.code == 250, rep
        assert authres_spf(spf_server, subj) == ("temperror", "smtp.mailfrom",
                                                 "silent.example")
        # the end of the data was answered after the result, not before
        lines = spf_lines(spf_server, "silent.example")
        assert len(lines) == 1 and " result=temperror " in lines[0], lines
        # the session goes on after the wait
        assert r.cmd("NOOP").code == 250
    finally:
        r.close()


# A new transaction starts a new check; RSET drops the one in flight.
def test_rfc7208_per_transaction(spf_server):
    r = spf_server.session()
    try:
        assert r.cmd("MAIL FROM:<user@silent.example>").code == 250
        assert r.cmd("RSET").code == 250
        rep = yubintest.send_data(r, "user@soft.example", [RCPT],
                                  yubintest.make_msg(yubintest.unique("second")))
        assert rep.code == 250, rep
    finally:
        r.close()
    assert " result=softfail " in wait_spf(spf_server, "soft.example")[-1]


# [mailauth] spf = no: no check at all.
def test_spf_off(yubin_factory, spf_dns):
    inst = yubin_factory(spf_overrides(spf_dns, spf="no"), provision=yubintest.provision_standard)
    rep, subj = send(inst, "user@pass.example")
    assert rep.code == 250, rep
    found = inst.find_mail(RCPT, subj)
    assert len(found) == 1
    assert b"spf=" not in found[0][1].split(b"\r\n\r\n", 1)[0]
    assert "event=spf " not in inst.log_text()


# RFC 7208 4.6.4: the evaluation's elapsed time is bounded (20 s from MAIL
# FROM here), even when the resolver itself would wait longer: then the
# result is temperror and the end of the data is answered.
def test_rfc7208_4_6_4_time_limit(yubin_factory, spf_dns):
    o = spf_overrides(spf_dns)
    o["dns"]["timeout"] = "60s"
    inst = yubin_factory(o, provision=yubintest.provision_standard)
    r = inst.session()
    r.sock.settimeout(60)
    try:
        t0 = time.monotonic()
        subj = yubintest.unique("limit")
        rep = yubintest.send_data(r, "user@silent.example", [RCPT], yubintest.make_msg(subj))
        took = time.monotonic() - t0
        assert rep.code == 250, rep
    finally:
        r.close()
    assert 19 <= took < 40, took
    assert authres_spf(inst, subj) == ("temperror", "smtp.mailfrom", "silent.example")
    line = wait_spf(inst, "silent.example")[0]
    assert " result=temperror " in line and "took too long" in line, line


# The client goes away while the end of the data waits for SPF (its input
# is paused, so the close is seen at the latest when the server stops):
# the session ends with its lookup cancelled, nothing is delivered, and
# the server stops cleanly (no leak, no late callback).
def test_rfc7208_close_while_waiting(yubin_factory, spf_dns):
    o = spf_overrides(spf_dns)
    o["dns"]["timeout"] = "60s"
    inst = yubin_factory(o, provision=yubintest.provision_standard)
    r = inst.session()
    subj = yubintest.unique("gone")
    assert r.cmd("MAIL FROM:<user@silent.example>").code == 250
    assert r.cmd("RCPT TO:<%s>" % RCPT).code == 250
    assert r.cmd("DATA").code == 354
    r.send(yubintest.make_msg(subj) + b".\r\n")
    time.sleep(0.5)
    r.close()
    time.sleep(0.5)
    inst.stop_clean()
    assert inst.find_mail(RCPT, subj) == []
    assert "event=spf " not in inst.log_text()
