"""QUOTA (RFC 9208): one quota root "" per account with STORAGE (KiB) and
MESSAGE; usage counts every mailbox entry (prefix + body file, as FETCH
RFC822.SIZE says); APPEND and COPY that would go over are NO [OVERQUOTA];
MOVE stays in the root; SETQUOTA is the administrator's (NO)."""

import re

import imaptest
import yubintest
from imaptest import RawIMAP


def session(server, user):
    c = RawIMAP(server)
    c.login(user, imaptest.PASSWORD)
    return c


def quota(server, user, size, messages=None):
    args = ["user", "quota", user, size] + ([messages] if messages else [])
    server.cli_ok(*args)


def usage(server, user):
    row = server.lines("user", "quota", user)[1].split("\t")
    return int(row[1]), int(row[3])


def sizes(c):
    r = c.ok("FETCH 1:* RFC822.SIZE")
    return [int(f["RFC822.SIZE"]) for _, f in r.fetches()]


def append(c, mailbox, msg):
    tag = c.next_tag()
    c.send(b"%s APPEND %s {%d+}\r\n" % (tag.encode(), mailbox.encode(), len(msg)) + msg + b"\r\n")
    return c.read_until_tagged(tag)


def test_capabilities(server):
    user = imaptest.new_user(server, "qc")
    c = session(server, user)
    caps = set(imaptest.parse_caps(c.ok("CAPABILITY").lines()[0]))
    assert {"QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE"} <= caps
    c.close()


def test_no_limits_no_root(server):
    user = imaptest.new_user(server, "qn")
    c = session(server, user)
    r = c.ok("GETQUOTAROOT INBOX")
    assert r.lines() == ['QUOTAROOT "INBOX"']
    r = c.cmd('GETQUOTA ""')
    assert r.status == "NO"
    c.close()


def test_getquotaroot_usage_matches_fetch(server):
    user = imaptest.new_user(server, "qu")
    imaptest.deliver_many(server, [yubintest.make_msg("m%d" % i, to=user, body="x" * 3000)
                                   for i in range(3)], rcpt=user)
    quota(server, user, "10M", "100")
    c = session(server, user)
    c.select()
    total = sum(sizes(c))
    assert usage(server, user) == (total, 3)
    r = c.ok("GETQUOTAROOT INBOX")
    assert r.lines() == ['QUOTAROOT "INBOX" ""',
                         'QUOTA "" (STORAGE %d 10240 MESSAGE 3 100)' % ((total + 1023) // 1024)]
    r = c.ok('GETQUOTA ""')
    assert r.lines() == ['QUOTA "" (STORAGE %d 10240 MESSAGE 3 100)' % ((total + 1023) // 1024)]
    assert c.cmd('GETQUOTA "other"').status == "NO"
    assert c.cmd("GETQUOTAROOT Nonexistent").status == "NO"
    r = c.cmd('SETQUOTA "" (STORAGE 1)')
    assert r.status == "NO"
    # Only the limited resources are reported.
    quota(server, user, "none", "100")
    assert c.ok('GETQUOTA ""').lines() == ['QUOTA "" (MESSAGE 3 100)']
    c.close()


def test_append_copy_move_over_quota(server):
    user = imaptest.new_user(server, "qa")
    quota(server, user, "20K", "4")
    c = session(server, user)
    c.ok("CREATE Other")
    small = yubintest.make_msg("small", to=user, body="y" * 4000)
    assert append(c, "INBOX", small).status == "OK"
    assert append(c, "INBOX", small).status == "OK"
    # Too big for what is left of 20K.
    big = yubintest.make_msg("big", to=user, body="z" * 15000)
    r = append(c, "INBOX", big)
    assert r.status == "NO" and "[OVERQUOTA]" in r.text, r
    assert usage(server, user) == (2 * len(small), 2)
    c.select()
    # COPY of both: 4 messages, 16K of 20K: fits.
    c.ok("COPY 1:2 Other")
    assert usage(server, user) == (4 * len(small), 4)
    # A fifth message is over the MESSAGE limit.
    r = c.cmd("COPY 1 Other")
    assert r.status == "NO" and "[OVERQUOTA]" in r.text, r
    r = append(c, "Other", yubintest.make_msg("tiny", to=user))
    assert r.status == "NO" and "[OVERQUOTA]" in r.text, r
    # MOVE never adds.
    c.ok("MOVE 1 Other")
    assert usage(server, user) == (4 * len(small), 4)
    # EXPUNGE gives room back.
    c.ok("STORE 1 +FLAGS (\\Deleted)")
    c.ok("EXPUNGE")
    assert usage(server, user) == (3 * len(small), 3)
    tiny = yubintest.make_msg("tiny", to=user)
    assert append(c, "INBOX", tiny).status == "OK"
    # DELETE of a mailbox too (it held 3).
    c.ok("UNSELECT")
    c.ok("DELETE Other")
    assert usage(server, user) == (len(tiny), 1)
    c.close()


def test_usage_counts_every_path(server):
    """Delivery, APPEND, COPY, MOVE, EXPUNGE and DELETE keep the counters
    equal to what FETCH RFC822.SIZE adds up to."""
    user = imaptest.new_user(server, "qp")
    imaptest.deliver_many(server, [yubintest.make_msg("d%d" % i, to=user, body="a" * (100 * i))
                                   for i in range(5)], rcpt=user)
    c = session(server, user)
    c.ok("CREATE B")
    c.select()
    c.ok("COPY 1:3 B")
    c.ok("MOVE 4 B")
    c.ok("STORE 1 +FLAGS (\\Deleted)")
    c.ok("EXPUNGE")
    inbox = sizes(c)
    c.select("B")
    b = sizes(c)
    assert usage(server, user) == (sum(inbox) + sum(b), len(inbox) + len(b))
    c.close()
