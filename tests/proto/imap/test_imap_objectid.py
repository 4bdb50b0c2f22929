"""OBJECTID (RFC 8474): MAILBOXID on CREATE, SELECT/EXAMINE, STATUS and
LIST-STATUS; EMAILID and THREADID in FETCH and SEARCH; the ids a COPY or
MOVE keeps. And MOVE under QRESYNC (RFC 6851 4.4 / RFC 7162 3.2.10)."""

import imaplib
import re

import imaptest
import yubintest

MAILBOXID = re.compile(r"^F[0-9a-f]{24}$")
EMAILID = re.compile(r"^M[0-9A-F]{16}$")
THREADID = re.compile(r"^T[0-9A-F]{16}$")


def mailboxid_code(text):
    m = re.search(r"\[MAILBOXID \(([^)]*)\)\]", text)
    assert m, text
    return m.group(1)


def status_mailboxid(c, name):
    r = c.ok("STATUS %s (MAILBOXID)" % imaptest.quote(name))
    lines = r.lines("STATUS")
    assert len(lines) == 1, r
    m = re.match(r'^STATUS "?%s"? \(MAILBOXID \(([^)]*)\)\)$' % re.escape(name), lines[0])
    assert m, lines
    return m.group(1)


def ids(c, items="EMAILID THREADID"):
    """seq -> {ITEM: objectid} for every message of the selected mailbox."""
    out = {}
    for seq, f in c.ok("FETCH 1:* (%s)" % items).fetches():
        out[seq] = {k: v[0] for k, v in f.items()}
    return out


def test_3_capability(mailbox):
    c = mailbox.session(select=None)
    caps = set(imaptest.parse_caps(c.ok("CAPABILITY").lines("CAPABILITY")[0]))
    assert {"OBJECTID", "SAVEDATE", "PREVIEW"} <= caps, caps


def test_4_mailboxid_create_select_status_rename(mailbox):
    c = mailbox.session(select=None)
    foo = mailboxid_code(c.ok("CREATE foo").text)
    bar = mailboxid_code(c.ok("CREATE bar").text)
    assert MAILBOXID.match(foo) and MAILBOXID.match(bar) and foo != bar
    # 4.1: a failed CREATE has none.
    r = c.cmd("CREATE foo")
    assert r.status == "NO" and "MAILBOXID" not in r.text, r
    # 4.2: SELECT and EXAMINE say it in an untagged OK.
    for verb in ("SELECT", "EXAMINE"):
        r = c.ok("%s foo" % verb)
        codes = [mailboxid_code(t) for t in r.lines("OK") if "MAILBOXID" in t]
        assert codes == [foo], r
    c.ok("UNSELECT")
    # 4.3: STATUS, and the same through LIST-STATUS.
    assert status_mailboxid(c, "foo") == foo
    inbox = status_mailboxid(c, "INBOX")
    assert MAILBOXID.match(inbox) and inbox not in (foo, bar)
    r = c.ok('LIST "" "*" RETURN (STATUS (MAILBOXID))')
    listed = dict(re.match(r'^STATUS "?([^"]*)"? \(MAILBOXID \(([^)]*)\)\)$', t).groups()
                  for t in r.lines("STATUS"))
    assert listed["foo"] == foo and listed["bar"] == bar and listed["INBOX"] == inbox, r
    assert len(set(listed.values())) == len(listed), listed
    # 4: a rename keeps it (children too); a new mailbox under an old
    # name gets a new one.
    c.ok("CREATE foo/child")
    child = status_mailboxid(c, "foo/child")
    c.ok("RENAME foo renamed")
    assert status_mailboxid(c, "renamed") == foo
    assert status_mailboxid(c, "renamed/child") == child
    c.ok("DELETE bar")
    again = mailboxid_code(c.ok("CREATE bar").text)
    assert MAILBOXID.match(again) and again not in (foo, bar, inbox, child)
    assert status_mailboxid(c, "bar") == again


def test_4_inbox_rename_makes_a_new_mailbox(mailbox):
    """RFC 8474 4 / RFC 9051 6.3.6: renaming INBOX creates a mailbox (a new
    MAILBOXID) and moves the messages; INBOX keeps its own."""
    mailbox.fill(2)
    c = mailbox.session(select=None)
    inbox = status_mailboxid(c, "INBOX")
    c.ok("SELECT INBOX")
    before = ids(c)
    c.ok("UNSELECT")
    c.ok("RENAME INBOX Old")
    old = status_mailboxid(c, "Old")
    assert old != inbox and status_mailboxid(c, "INBOX") == inbox
    c.ok("SELECT Old")
    # 5.1: the messages keep their EMAILID (the same content).
    assert ids(c) == before


def message(subject, msgid, frm="alice@example.org", to="bob@example.com", extra=()):
    """A message with the Message-ID given (make_msg makes its own)."""
    head = ["From: <%s>" % frm, "To: <%s>" % to, "Subject: %s" % subject,
            "Date: Sun, 22 Nov 2026 07:38:12 +0000", "Message-ID: %s" % msgid]
    head.extend(extra)
    return ("\r\n".join(head) + "\r\n\r\nBody of %s.\r\n" % subject).encode()


def deliver(server, user, subject, msgid, extra=()):
    imaptest.deliver(server, message(subject, msgid, to=user, extra=extra), rcpt=user)


def test_5_1_emailid_fetch_copy_move_search(mailbox, server):
    mailbox.fill(3)
    c = mailbox.session()
    c.ok("CREATE Other")
    got = ids(c, "EMAILID")
    assert sorted(got) == [1, 2, 3]
    emails = [got[i]["EMAILID"] for i in (1, 2, 3)]
    assert all(EMAILID.match(e) for e in emails) and len(set(emails)) == 3, emails
    # Immutable: asked again, by UID, with other items.
    r = c.ok("UID FETCH 1:* (EMAILID FLAGS)")
    assert [f["EMAILID"] for _, f in r.fetches()] == [[e] for e in emails], r
    # 5.1: the copy and the moved message keep it.
    c.ok("COPY 1 Other")
    c.ok("MOVE 2 Other")
    c.ok("SELECT Other")
    assert [v["EMAILID"] for _, v in sorted(ids(c, "EMAILID").items())] == emails[:2]
    # 6: SEARCH EMAILID, exact and case-sensitive.
    assert c.ok("SEARCH EMAILID %s" % emails[1]).lines("SEARCH") == ["SEARCH 2"]
    assert c.ok("SEARCH EMAILID %s" % emails[1].lower()).lines("SEARCH") == ["SEARCH"]
    assert c.ok("UID SEARCH NOT EMAILID %s" % emails[0]).lines("SEARCH") == ["SEARCH 2"]
    c.ok("SELECT INBOX")
    assert c.ok("SEARCH EMAILID %s" % emails[2]).lines("SEARCH") == ["SEARCH 2"]
    assert c.ok("SEARCH EMAILID %s" % emails[1]).lines("SEARCH") == ["SEARCH"]
    # 7: objectid = 1*255(ALPHA / DIGIT / "_" / "-")
    for bad in ('"M1.2"', '""', "M" * 256):
        assert c.cmd("SEARCH EMAILID %s" % bad).status == "BAD"


def test_5_2_threadid_from_references(mailbox, server):
    user = mailbox.user
    root = "<root-%s@example.org>" % yubintest.unique("t")
    reply = "<reply-%s@example.org>" % yubintest.unique("t")
    deliver(server, user, "Root", root)
    deliver(server, user, "Re: Root", reply, ["References: %s" % root])
    deliver(server, user, "Re: Re: Root", "<third-%s@example.org>" % yubintest.unique("t"),
            ["In-Reply-To: %s" % reply])
    deliver(server, user, "Unrelated", "<other-%s@example.org>" % yubintest.unique("t"))
    c = mailbox.session()
    got = ids(c)
    threads = [got[i]["THREADID"] for i in (1, 2, 3, 4)]
    emails = [got[i]["EMAILID"] for i in (1, 2, 3, 4)]
    assert all(THREADID.match(t) for t in threads), threads
    assert threads[0] == threads[1] == threads[2] != threads[3], threads
    # 5.2: never the value of an EMAILID.
    assert not set(threads) & set(emails)
    assert c.ok("SEARCH THREADID %s" % threads[0]).lines("SEARCH") == ["SEARCH 1 2 3"]
    assert c.ok("UID SEARCH THREADID %s" % threads[3]).lines("SEARCH") == ["SEARCH 4"]
    assert c.ok("SEARCH THREADID T0000000000000000").lines("SEARCH") == ["SEARCH"]
    # A copy APPENDed to Sent (same Message-ID) joins the thread; the
    # ids of a copy are those of its original (5.2: same EMAILID, same
    # THREADID).
    sent = message("Root", root, frm=user)
    m = imaplib.IMAP4("127.0.0.1", server.listener_port("imap"), timeout=10)
    try:
        m.login(user, imaptest.PASSWORD)
        typ, data = m.append("Sent", None, None, sent)
        assert typ == "OK", data
        m.select("Sent")
        typ, data = m.fetch("1", "(THREADID EMAILID)")
        assert typ == "OK", data
        raw = data[0].decode()
        assert "THREADID (%s)" % threads[0] in raw, raw
        assert re.search(r"EMAILID \(M[0-9A-F]{16}\)", raw) and emails[0] not in raw, raw
    finally:
        m.logout()


def test_move_under_qresync_says_vanished(mailbox):
    """RFC 6851 4.4, RFC 7162 3.2.10: with QRESYNC enabled, a MOVE tells
    of the messages it took away with VANISHED, never EXPUNGE."""
    mailbox.fill(4)
    c = mailbox.session(select=None)
    c.ok("ENABLE QRESYNC")
    c.ok("CREATE Dest")
    c.ok("SELECT INBOX")
    uids = [int(f["UID"]) for _, f in c.ok("FETCH 1:* (UID)").fetches()]
    r = c.ok("UID MOVE %d:%d Dest" % (uids[1], uids[2]))
    assert r.lines("EXPUNGE") == [], r
    assert r.lines("VANISHED") == ["VANISHED %d:%d" % (uids[1], uids[2])], r
    assert any("COPYUID" in t for t in r.lines("OK")), r
    assert [int(f["UID"]) for _, f in c.ok("FETCH 1:* (UID)").fetches()] == [uids[0], uids[3]]
    # Without QRESYNC: EXPUNGE.
    d = mailbox.session()
    r = d.ok("MOVE 1 Dest")
    assert r.lines("EXPUNGE") == ["1 EXPUNGE"] and r.lines("VANISHED") == [], r
    # The first session learns of it with VANISHED too.
    r = c.ok("NOOP")
    assert r.lines("VANISHED") == ["VANISHED %d" % uids[0]] and r.lines("EXPUNGE") == [], r
