"""The rig itself: two yubin servers in their namespaces reach each other
by the names the test DNS gives them, and a message handed over on port 25
from one host to the other is stored and read over IMAP there."""

import re
import socket

import relaytest
import yubintest


def test_dns_from_both_hosts(rig):
    """Each host's config finds the other host through the rig's DNS,
    asked from inside its namespace."""
    for h in rig.hosts.values():
        inst = h.serve(start=False, provision=False)
        p = h.run([yubintest.YUBIN_BIN, "-c", inst.conf, "dns", "mx", "hogehoge.com"])
        assert (p.returncode, p.stdout) == (0, "10 mx.hogehoge.com\n"), p.stderr
        p = h.run([yubintest.YUBIN_BIN, "-c", inst.conf, "dns", "addr", "mx.example.com"])
        assert p.returncode == 0, p.stderr
        want = [rig.example.ipv4] if not rig.publish_aaaa else [rig.example.ipv6,
                                                                rig.example.ipv4]
        assert p.stdout.split() == want
        p = h.run([yubintest.YUBIN_BIN, "-c", inst.conf, "dns", "mx", "nullmx.example"])
        assert p.returncode == 1 and "null MX" in p.stderr
        p = h.run([yubintest.YUBIN_BIN, "-c", inst.conf, "dns", "addr", "nowhere.example"])
        assert p.returncode == 1 and "no address" in p.stderr
        p = h.run([yubintest.YUBIN_BIN, "-c", inst.conf, "dns", "mx", "nx.example"])
        assert p.returncode == 1 and "NXDOMAIN" in p.stderr


def test_smtp_between_hosts_then_imap(rig):
    ex = rig.example.serve()
    hg = rig.hogehoge.serve()
    assert ex.running() and hg.running()

    # As example.com's relay will: from its namespace to hogehoge's MX.
    marker = yubintest.unique("rig")
    msg = yubintest.make_msg(marker, frm="shiroyagi@example.com",
                             to="kuroyagi@hogehoge.com")
    r = rig.example.smtp_raw(rig.hogehoge.ipv4, 25)
    try:
        rep = r.cmd("EHLO " + rig.example.fqdn)
        assert rep.code == 250, rep
        rep = yubintest.send_data(r, "shiroyagi@example.com", ["kuroyagi@hogehoge.com"], msg)
        assert rep.code == 250, rep
        assert r.cmd("QUIT").code == 221
    finally:
        r.close()

    # Nothing for other domains on port 25: hogehoge's server is no open relay.
    r = rig.example.smtp_raw(rig.hogehoge.ipv4, 25)
    try:
        assert r.cmd("EHLO " + rig.example.fqdn).code == 250
        assert r.cmd("MAIL FROM:<shiroyagi@example.com>").code == 250
        rep = r.cmd("RCPT TO:<someone@example.com>")
        assert rep.code in (550, 551, 554), rep
    finally:
        r.close()

    # Read over IMAP, from the root namespace, in hogehoge's store.
    msgs = hg.fetch_inbox("kuroyagi@hogehoge.com")
    mine = [m for m in msgs if marker.encode() in m]
    assert len(mine) == 1, msgs
    # The peer's address in the trace is example's own, not loopback.
    received = re.search(rb"^Received: .*?(?=^\S)", mine[0], re.M | re.S)
    assert received is not None, mine[0][:500]
    assert rig.example.ipv4.encode() in received.group(0), received.group(0)
    # And nothing went into example.com's store.
    assert ex.mail_list("shiroyagi@example.com") == []


def test_ipv6_between_hosts(rig):
    if not rig.ipv6:
        return
    hg = rig.hogehoge.serve()
    s = rig.example.connect(rig.hogehoge.ipv6, 25)
    try:
        assert s.family == socket.AF_INET6
        assert s.recv(3) == b"220"
    finally:
        s.close()
    assert hg.running()


def test_link_down_makes_host_unreachable(rig):
    rig.hogehoge.serve()
    rig.hogehoge.link_down()
    try:
        try:
            rig.example.connect(rig.hogehoge.ipv4, 25, timeout=1).close()
            reached = True
        except OSError:
            reached = False
        assert not reached
    finally:
        rig.hogehoge.link_up()
    r = rig.example.smtp_raw(rig.hogehoge.ipv4, 25)
    r.close()


def test_cleanup_removes_namespaces():
    why = relaytest.available()
    if why is not None:
        import pytest
        pytest.skip(why)
    with relaytest.Rig() as r:
        names = list(r.namespaces)
        root_if = r.root_if
        r.example.serve()
    listed = relaytest.ip("netns", "list").stdout
    for n in names:
        assert n not in listed.split()
    assert relaytest.ip("link", "show", root_if, check=False).returncode != 0
