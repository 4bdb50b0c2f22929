"""Two IMAP sessions on one mailbox (RFC 9051 5.2, 7.4.1, 7.5.1): flag
changes, expunges and new mail made elsewhere are reported to the other
session at the right moments and with consistent sequence numbers; IDLE
(RFC 2177) reports them as they happen."""

import re
import socket
import time

import imaptest
import yubintest

# What the server may take to notice a change while idling. Generous: the
# tests never assert a tighter bound.
IDLE_WAIT = 5.0


def apply_expunges(r, view):
    gone = []
    for line in r.lines("EXPUNGE"):
        n = int(line.split()[0])
        assert 1 <= n <= len(view), "EXPUNGE %d with %d messages" % (n, len(view))
        gone.append(view.pop(n - 1))
    return gone


def uids_of(c):
    r = c.ok("FETCH 1:* UID")
    return [int(a["UID"]) for _, a in r.fetches()]


def test_flag_change_seen_on_noop(mailbox):
    mailbox.fill(3)
    a = mailbox.session()
    b = mailbox.session()
    uids = mailbox.uids()
    a.ok("STORE 2 +FLAGS (\\Flagged $Label1)")
    r = b.ok("NOOP")
    f = r.fetches()
    assert len(f) == 1, r
    n, attrs = f[0]
    assert n == 2
    assert int(attrs["UID"]) == uids[1]
    assert sorted(attrs["FLAGS"]) == ["$Label1", "\\Flagged"]
    # Reported once.
    assert b.ok("NOOP").fetches() == []
    # A silent store is still reported to the others.
    a.ok("STORE 3 FLAGS.SILENT (\\Seen)")
    r = b.ok("NOOP")
    assert [(n, x["FLAGS"]) for n, x in r.fetches()] == [(3, ["\\Seen"])], r


def test_own_changes_not_reported_twice(mailbox):
    mailbox.fill(1)
    a = mailbox.session()
    r = a.ok("STORE 1 +FLAGS (\\Flagged)")
    assert len(r.fetches()) == 1
    assert a.ok("NOOP").fetches() == []


def test_expunge_reported_on_noop_not_during_fetch(mailbox):
    mailbox.fill(4)
    a = mailbox.session()
    b = mailbox.session()
    uids = mailbox.uids()
    view_b = list(uids)
    a.ok("STORE 2,3 +FLAGS.SILENT (\\Deleted)")
    r = a.ok("EXPUNGE")
    view_a = list(uids)
    apply_expunges(r, view_a)
    assert view_a == [uids[0], uids[3]]
    # B's FETCH: no EXPUNGE (RFC 9051 7.5.1); its numbers are unchanged.
    r = b.ok("FETCH 1:* (UID)")
    assert r.lines("EXPUNGE") == [], r
    assert [n for n, _ in r.fetches() if "UID" in _][-1] == 4
    got = {n: int(x["UID"]) for n, x in r.fetches() if "UID" in x}
    assert got[1] == uids[0] and got[4] == uids[3]
    # Nor during STORE (the FETCH of the flags is fine).
    r = b.ok("STORE 4 +FLAGS (\\Answered)")
    assert r.lines("EXPUNGE") == [], r
    assert [n for n, _ in r.fetches()] == [4], r
    # Nor during UID FETCH.
    r = b.ok("UID FETCH 1:* FLAGS")
    assert r.lines("EXPUNGE") == [], r
    # NOOP brings them, with numbers that make sense in order.
    r = b.ok("NOOP")
    gone = apply_expunges(r, view_b)
    assert sorted(gone) == [uids[1], uids[2]]
    assert view_b == view_a
    assert uids_of(b) == view_a
    assert b.ok("NOOP").lines("EXPUNGE") == []


def test_fetch_of_message_expunged_elsewhere(mailbox):
    """Before B hears of the expunge, its message 1 still exists for it:
    a FETCH of it either returns the right data or fails with NO; never
    wrong bytes."""
    mailbox.fill(2)
    a = mailbox.session()
    b = mailbox.session()
    stored = mailbox.stored(mailbox.uids()[0])
    a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    a.ok("EXPUNGE")
    r = b.cmd("FETCH 1 (RFC822.SIZE BODY.PEEK[])")
    assert r.status in ("OK", "NO"), r
    assert r.lines("EXPUNGE") == []
    for n, x in r.fetches():
        assert n == 1
        if "BODY[]" in x:
            assert x["BODY[]"] == stored
        if "RFC822.SIZE" in x:
            assert int(x["RFC822.SIZE"]) == len(stored)
    r = b.ok("NOOP")
    assert r.lines("EXPUNGE") == ["1 EXPUNGE"]


def test_new_mail_seen_on_noop(mailbox):
    mailbox.fill(2)
    b = mailbox.session()
    mailbox.fill(2)
    r = b.ok("NOOP")
    assert r.lines("EXISTS") == ["4 EXISTS"], r
    uids = mailbox.uids()
    assert uids_of(b) == uids
    # UIDNEXT moved on too.
    r = b.ok("STATUS INBOX (UIDNEXT MESSAGES)")
    assert "UIDNEXT %d" % (uids[-1] + 1) in r.lines("STATUS")[0]


def test_new_mail_reported_after_fetch(mailbox):
    """New mail may be reported by any command (EXISTS is allowed during
    FETCH); once reported, the new message can be fetched."""
    mailbox.fill(1)
    b = mailbox.session()
    mailbox.fill(1)
    r = b.ok("FETCH 1 UID")
    exists = r.lines("EXISTS")
    if not exists:
        exists = b.ok("NOOP").lines("EXISTS")
    assert exists == ["2 EXISTS"]
    assert uids_of(b) == mailbox.uids()


def test_expunge_and_new_mail_together(mailbox):
    mailbox.fill(3)
    a = mailbox.session()
    b = mailbox.session()
    uids = mailbox.uids()
    view_b = list(uids)
    a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    a.ok("EXPUNGE")
    mailbox.fill(2)
    a.ok("STORE 2 +FLAGS (\\Flagged)")      # uids[2], now number 2 for A
    r = b.ok("NOOP")
    # Apply the responses in order: EXPUNGE shifts numbers, EXISTS grows.
    for resp in r.lines():
        m = re.match(r"^(\d+) (EXPUNGE|EXISTS|FETCH)", resp)
        assert m, resp
        n = int(m.group(1))
        if m.group(2) == "EXPUNGE":
            view_b.pop(n - 1)
        elif m.group(2) == "EXISTS":
            assert n >= len(view_b)
            view_b.extend([None] * (n - len(view_b)))
        else:
            uid = int(re.search(r"UID (\d+)", resp).group(1))
            assert view_b[n - 1] in (uid, None), (resp, view_b)
            if uid == uids[2]:
                assert "\\Flagged" in resp
    assert len(view_b) == 4
    now = mailbox.uids()
    assert view_b[:2] == now[:2]
    assert uids_of(b) == now


def test_store_by_b_on_message_a_expunged(mailbox):
    """B stores flags on a message A expunged (B not yet told): no EXPUNGE
    in the STORE answer, the session goes on, and NOOP reports it."""
    mailbox.fill(2)
    a = mailbox.session()
    b = mailbox.session()
    a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    a.ok("EXPUNGE")
    r = b.cmd("STORE 1:2 +FLAGS (\\Seen)")
    assert r.status in ("OK", "NO"), r
    assert r.lines("EXPUNGE") == []
    r = b.ok("NOOP")
    assert r.lines("EXPUNGE") == ["1 EXPUNGE"]
    r = b.ok("FETCH 1:* (UID FLAGS)")
    assert [(int(x["UID"]), x["FLAGS"]) for _, x in r.fetches()] == \
        [(mailbox.uids()[0], ["\\Seen"])]


def test_silent_store_stays_silent_with_expunge_pending(mailbox):
    """B's .SILENT STORE while an expunge by A is not yet reported to B:
    no FETCH for it then, nor on the NOOP that reports the expunge."""
    mailbox.fill(3)
    a = mailbox.session()
    b = mailbox.session()
    a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    a.ok("EXPUNGE")
    r = b.ok("STORE 3 +FLAGS.SILENT (\\Flagged)")
    assert r.fetches() == [] and r.lines("EXPUNGE") == [], r
    r = b.ok("NOOP")
    assert r.lines("EXPUNGE") == ["1 EXPUNGE"], r
    assert r.fetches() == [], r
    r = b.ok("FETCH 2 FLAGS")
    assert r.fetches()[0][1]["FLAGS"] == ["\\Flagged"]


def test_examine_session_sees_changes(mailbox):
    mailbox.fill(2)
    a = mailbox.session()
    ro = mailbox.session(examine=True)
    a.ok("STORE 1 +FLAGS (\\Answered)")
    a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    a.ok("EXPUNGE")
    r = ro.ok("NOOP")
    assert r.lines("EXPUNGE") == ["2 EXPUNGE"], r
    assert [(n, x["FLAGS"]) for n, x in r.fetches()] == [(1, ["\\Answered"])], r


def test_other_mailbox_changes_not_reported(mailbox):
    mailbox.fill(1)
    b = mailbox.session()
    a = mailbox.session(select="Trash")
    a.ok('APPEND Trash {%d+}\r\n%s' % (len(b"Subject: x\r\n\r\ny\r\n"),
                                       "Subject: x\r\n\r\ny\r\n"))
    r = b.ok("NOOP")
    assert r.untagged == [], r


# ---- IDLE ----

def read_until(c, pred, timeout=IDLE_WAIT):
    """Reads responses until pred(response) or timeout; returns them all
    (the last one matched) or raises."""
    got = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("not within %gs; got %r" % (timeout, got))
            c.sock.settimeout(left)
            r = c.response()
            got.append(r)
            if pred(r):
                return got
    except (socket.timeout, TimeoutError):
        raise AssertionError("not within %gs; got %r" % (timeout, got))
    finally:
        c.sock.settimeout(imaptest.IO_TIMEOUT)


def start_idle(c, tag="i1"):
    c.send(tag.encode() + b" IDLE\r\n")
    cont = c.line()
    assert cont.startswith(b"+ "), cont
    return cont


def stop_idle(c, tag="i1"):
    c.send(b"DONE\r\n")
    r = c.read_until_tagged(tag)
    assert r.status == "OK", r
    return r


def test_idle_reports_new_mail(mailbox):
    mailbox.fill(1)
    b = mailbox.session()
    assert start_idle(b) == b"+ idling\r\n"
    mailbox.fill(1)
    got = read_until(b, lambda r: r.raw == b"* 2 EXISTS")
    assert got[-1].raw == b"* 2 EXISTS", got
    mailbox.fill(2)
    got = read_until(b, lambda r: r.raw == b"* 4 EXISTS")
    r = stop_idle(b)
    assert r.lines("EXISTS") == []      # not reported twice
    assert uids_of(b) == mailbox.uids()


def test_idle_reports_flags_and_expunges(mailbox):
    mailbox.fill(3)
    a = mailbox.session()
    b = mailbox.session()
    uids = mailbox.uids()
    start_idle(b)
    a.ok("STORE 3 +FLAGS (\\Flagged)")
    got = read_until(b, lambda r: r.raw.startswith(b"* 3 FETCH"))
    f = imaptest.parse_fetch(got[-1].raw[len(b"* 3 FETCH "):])
    assert f["FLAGS"] == ["\\Flagged"] and int(f["UID"]) == uids[2]
    a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    a.ok("EXPUNGE")
    got = read_until(b, lambda r: r.raw.endswith(b" EXPUNGE"))
    assert got[-1].raw == b"* 1 EXPUNGE", got
    stop_idle(b)
    assert uids_of(b) == uids[1:]


def test_idle_reports_what_happened_before(mailbox):
    """Changes made before IDLE starts are reported at its start; the new
    message is \\Recent to this read-write IMAP4rev1 session (RFC 3501
    7.3.2)."""
    mailbox.fill(1)
    b = mailbox.session()
    mailbox.fill(1)
    b.send(b"i1 IDLE\r\n")
    got = read_until(b, lambda r: r.raw.startswith(b"+ "))
    assert [x.raw for x in got[:-1]] == [b"* 2 EXISTS", b"* 1 RECENT"], got
    stop_idle(b)


def test_idle_without_selected_mailbox(mailbox):
    c = mailbox.session(select=None)
    start_idle(c)
    assert c.nothing_pending(0.3)
    stop_idle(c)
    assert c.cmd("NOOP").status == "OK"


def test_idle_done_is_case_insensitive(mailbox):
    c = mailbox.session()
    start_idle(c)
    c.send(b"done\r\n")
    assert c.read_until_tagged("i1").status == "OK"


def test_idle_other_line_is_bad(mailbox):
    c = mailbox.session()
    start_idle(c)
    c.send(b"x NOOP\r\n")
    r = c.read_until_tagged("i1")
    assert r.status == "BAD", r
    assert c.cmd("NOOP").status == "OK"


def test_idle_reports_nothing_from_own_idle_and_other_mailbox(mailbox):
    mailbox.fill(1)
    b = mailbox.session()
    start_idle(b)
    imaptest.deliver(mailbox.server, yubintest.make_msg("other user"), rcpt=imaptest.USER)
    assert b.nothing_pending(1.5)
    stop_idle(b)


def test_silent_store_reports_a_concurrent_change_without_condstore(mailbox):
    """RFC 9051 7.5.1: B's .SILENT STORE on a message whose flags A changed
    since B last heard: B is told the flags the message has now (its own
    change and A's), or it would believe them to be its own change only."""
    mailbox.fill(2)
    a = mailbox.session()
    b = mailbox.session()
    a.ok("STORE 1 +FLAGS.SILENT (\\Flagged)")
    r = b.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
    f = [(n, sorted(x["FLAGS"])) for n, x in r.fetches()]
    assert f == [(1, ["\\Flagged", "\\Seen"])], r
    # Told once; and a .SILENT STORE nobody raced stays silent.
    assert b.ok("NOOP").fetches() == []
    r = b.ok("STORE 2 +FLAGS.SILENT (\\Seen)")
    assert r.fetches() == [], r
