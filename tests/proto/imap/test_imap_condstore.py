"""CONDSTORE and QRESYNC (RFC 7162): mod-sequences in SELECT, STATUS,
FETCH and SEARCH, conditional STORE, and quick resynchronisation with
VANISHED. Responses are checked exactly."""

import re
import threading

import imaptest


def modseq_of(c, seq):
    """The MODSEQ of message seq, by FETCH, after a NOOP (the view is
    then up to date)."""
    c.ok("NOOP")
    r = c.ok("FETCH %s (MODSEQ)" % seq)
    (n, a), = [f for f in r.fetches() if f[0] == seq and "FLAGS" not in f[1]]
    return int(a["MODSEQ"][0])


def status_hms(c, mailbox="INBOX"):
    r = c.ok("STATUS %s (HIGHESTMODSEQ)" % mailbox)
    m = re.match(r'STATUS "?\S+"? \(HIGHESTMODSEQ (\d+)\)$', r.lines("STATUS")[0])
    return int(m.group(1))


def uidvalidity(r):
    for line in r.lines():
        m = re.match(r"OK \[UIDVALIDITY (\d+)\]", line)
        if m:
            return int(m.group(1))
    raise AssertionError(r)


def hms_code(r):
    """The values of the [HIGHESTMODSEQ n] untagged OK responses of r."""
    return [int(m.group(1)) for line in r.lines()
            for m in [re.match(r"OK \[HIGHESTMODSEQ (\d+)\]", line)] if m]


def untagged(r):
    return [u.text for u in r.untagged]


def flagged_session(mailbox, n=5):
    mailbox.fill(n)
    return mailbox.session(), mailbox.uids()


# ---- capability and enabling ----

def test_capability_and_enable(mailbox, imap):
    c = imap()
    caps = c.capabilities(c.ok("CAPABILITY").lines("CAPABILITY")[0])
    assert "CONDSTORE" in caps and "QRESYNC" in caps
    c.login(mailbox.user)
    r = c.ok("ENABLE CONDSTORE")
    assert untagged(r) == ["* ENABLED CONDSTORE"]
    # QRESYNC implies CONDSTORE, which is on already: only QRESYNC is new.
    r = c.ok("ENABLE QRESYNC CONDSTORE")
    assert untagged(r) == ["* ENABLED QRESYNC"]
    r = c.ok("ENABLE QRESYNC")
    assert untagged(r) == ["* ENABLED"]
    d = imap()
    d.login(mailbox.user)
    r = d.ok("ENABLE QRESYNC CONDSTORE")
    assert untagged(r) == ["* ENABLED QRESYNC CONDSTORE"]


def test_select_highestmodseq_only_after_enabling(mailbox):
    mailbox.fill(2)
    c = mailbox.session(select=None)
    r = c.select()
    assert hms_code(r) == []
    hms = status_hms(c)
    # STATUS (HIGHESTMODSEQ) enabled CONDSTORE: with a mailbox selected,
    # the first enabling command reports its HIGHESTMODSEQ.
    r = c.ok("STATUS INBOX (HIGHESTMODSEQ)")
    assert untagged(r) == ['* STATUS "INBOX" (HIGHESTMODSEQ %d)' % hms]
    r = c.select()
    assert untagged(r)[-1] == "* OK [HIGHESTMODSEQ %d] Highest" % hms
    assert r.text == "OK [READ-WRITE] SELECT completed"
    d = mailbox.session(select=None)
    r = d.ok("EXAMINE INBOX (CONDSTORE)")
    assert hms_code(r) == [hms]
    assert r.text == "OK [READ-ONLY] EXAMINE completed"
    # the first enabling command with a mailbox selected
    e = mailbox.session()
    r = e.ok("FETCH 1 (MODSEQ)")
    assert untagged(r) == ["* OK [HIGHESTMODSEQ %d] Highest" % hms,
                           "* 1 FETCH (MODSEQ (%d))" % modseq_of(d, 1)]
    r = e.ok("FETCH 1 (MODSEQ)")
    assert len(untagged(r)) == 1


def test_select_bad_parameters(mailbox):
    c = mailbox.session(select=None)
    assert c.cmd("SELECT INBOX (FOO)").status == "BAD"
    # QRESYNC without ENABLE QRESYNC
    assert c.cmd("SELECT INBOX (QRESYNC (1 1))").status == "BAD"
    c.ok("ENABLE QRESYNC")
    for i, bad in enumerate(["(QRESYNC)", "(QRESYNC (1))", "(QRESYNC (0 1))",
                             "(QRESYNC (x 1))", "(QRESYNC (1 1 1:*))",
                             "(QRESYNC (1 1 1:5 (1:2 3)))", "(QRESYNC (1 1 1:5 (1 2) 7))",
                             "(CONDSTORE QRESYNC)"]):
        if i % 3 == 2:
            c = qresync_session(mailbox)     # max_errors = 5
        r = c.cmd("SELECT INBOX %s" % bad)
        assert r.status == "BAD", (bad, r)
    c.ok("SELECT INBOX (CONDSTORE QRESYNC (1 1 1:5 (1:2 3:4)))")


def test_status_highestmodseq_moves_with_changes(mailbox):
    c, uids = flagged_session(mailbox, 2)
    h0 = status_hms(c)
    c.ok("STORE 1 +FLAGS (\\Flagged)")
    h1 = status_hms(c)
    assert h1 > h0
    c.ok("STORE 1 +FLAGS (\\Flagged)")   # no change: no new modseq
    assert status_hms(c) == h1
    r = c.ok("STATUS INBOX (MESSAGES HIGHESTMODSEQ UIDNEXT)")
    assert r.lines("STATUS") == ['STATUS "INBOX" (MESSAGES 2 HIGHESTMODSEQ %d UIDNEXT %d)'
                                 % (h1, uids[-1] + 1)]


# ---- FETCH MODSEQ, CHANGEDSINCE ----

def test_modseq_rises_on_every_flag_change(mailbox):
    c, uids = flagged_session(mailbox, 3)
    seen = [modseq_of(c, 1)]
    for cmd in ["+FLAGS (\\Seen)", "+FLAGS ($Work)", "-FLAGS (\\Seen)", "FLAGS (\\Draft)",
                "-FLAGS ($Work \\Draft)"]:
        r = c.ok("STORE 1 %s" % cmd)
        (n, a), = r.fetches()
        assert int(a["MODSEQ"][0]) > seen[-1]
        seen.append(int(a["MODSEQ"][0]))
        assert modseq_of(c, 1) == seen[-1]
    # a change that changes nothing leaves it
    r = c.ok("STORE 1 -FLAGS (\\Seen)")
    (n, a), = r.fetches()
    assert int(a["MODSEQ"][0]) == seen[-1]
    # the others did not move
    assert modseq_of(c, 2) < seen[1]
    # FETCH BODY[] sets \Seen: a new modseq, reported with UID and MODSEQ
    r = c.ok("FETCH 2 (BODY[])")
    f = [a for n, a in r.fetches() if "FLAGS" in a]
    assert f and f[-1]["FLAGS"] == ["\\Seen"] and int(f[-1]["MODSEQ"][0]) > seen[-1]
    assert f[-1]["UID"] == str(uids[1])


def test_fetch_modseq_exact(mailbox):
    c, uids = flagged_session(mailbox, 3)
    m = [modseq_of(c, i) for i in (1, 2, 3)]
    r = c.ok("UID FETCH %d:%d (FLAGS MODSEQ)" % (uids[0], uids[1]))
    assert untagged(r) == ["* 1 FETCH (UID %d MODSEQ (%d) FLAGS ())" % (uids[0], m[0]),
                           "* 2 FETCH (UID %d MODSEQ (%d) FLAGS ())" % (uids[1], m[1])]


def test_changedsince(mailbox):
    c, uids = flagged_session(mailbox, 5)
    since = status_hms(c)
    c.ok("STORE 2 +FLAGS (\\Flagged)")
    c.ok("STORE 4 +FLAGS ($Later)")
    m2, m4 = modseq_of(c, 2), modseq_of(c, 4)
    r = c.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % since)
    assert untagged(r) == [
        "* 2 FETCH (MODSEQ (%d) FLAGS (\\Flagged))" % m2,
        "* 4 FETCH (MODSEQ (%d) FLAGS ($Later))" % m4]
    r = c.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % m2)
    assert untagged(r) == ["* 4 FETCH (UID %d MODSEQ (%d) FLAGS ($Later))"
                           % (uids[3], m4)]
    r = c.ok("UID FETCH %d (UID) (CHANGEDSINCE %d)" % (uids[1], since))
    assert untagged(r) == ["* 2 FETCH (UID %d MODSEQ (%d))" % (uids[1], m2)]
    r = c.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % m4)
    assert untagged(r) == []
    # VANISHED needs QRESYNC, UID FETCH and CHANGEDSINCE
    assert c.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)").status == "BAD"
    c = mailbox.session()           # max_errors = 5
    for bad in ["(CHANGEDSINCE)", "(CHANGEDSINCE x)", "(FOO 1)", "()",
                "(CHANGEDSINCE 1 CHANGEDSINCE 2)"]:
        assert c.cmd("FETCH 1 (FLAGS) %s" % bad).status == "BAD", bad


def test_unsolicited_fetch_carries_modseq(mailbox):
    c, uids = flagged_session(mailbox, 2)
    d = mailbox.session()
    c.ok("NOOP")
    d.ok("STORE 2 +FLAGS (\\Answered)")
    m = modseq_of(d, 2)
    r = c.ok("NOOP")
    assert untagged(r) == ["* 2 FETCH (UID %d FLAGS (\\Answered))" % uids[1]]
    c.ok("STATUS INBOX (HIGHESTMODSEQ)")
    d.ok("STORE 2 +FLAGS (\\Flagged)")
    m = modseq_of(d, 2)
    r = c.ok("NOOP")
    assert untagged(r) == ["* 2 FETCH (UID %d MODSEQ (%d) FLAGS (\\Answered \\Flagged))"
                           % (uids[1], m)]


# ---- STORE UNCHANGEDSINCE ----

def test_conditional_store_between_two_sessions(mailbox):
    mailbox.fill(3)
    uids = mailbox.uids()
    a = mailbox.session()
    b = mailbox.session()
    m = status_hms(a)
    modseq_of(b, 1)
    # B changes message 1 first, conditionally: it passes
    r = b.ok("STORE 1 (UNCHANGEDSINCE %d) +FLAGS ($Done)" % m)
    (n, f), = r.fetches()
    mb = int(f["MODSEQ"][0])
    assert untagged(r) == ["* 1 FETCH (UID %d MODSEQ (%d) FLAGS ($Done))" % (uids[0], mb)]
    assert r.text == "OK STORE completed"
    # A, with the old modseq: message 1 fails, 2 passes
    r = a.cmd("STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Seen)" % m)
    assert r.status == "OK" and r.text == "OK [MODIFIED 1] Conditional STORE failed"
    m2 = modseq_of(b, 2)
    assert untagged(r) == [
        "* 1 FETCH (UID %d MODSEQ (%d) FLAGS ($Done))" % (uids[0], mb),
        "* 2 FETCH (UID %d MODSEQ (%d))" % (uids[1], m2)]
    r = a.ok("FETCH 1:2 (FLAGS)")
    assert [x["FLAGS"] for n, x in r.fetches()] == [["$Done"], ["\\Seen"]]
    # UID STORE reports UIDs
    r = a.cmd("UID STORE %d:%d (UNCHANGEDSINCE %d) -FLAGS (\\Seen)"
              % (uids[0], uids[2], m))
    assert r.text == "OK [MODIFIED %d:%d] Conditional STORE failed" % (uids[0], uids[1])
    # 0 always fails
    r = a.cmd("STORE 3 (UNCHANGEDSINCE 0) +FLAGS.SILENT ($MDNSent)")
    assert r.text == "OK [MODIFIED 3] Conditional STORE failed"
    assert a.ok("FETCH 3 (FLAGS)").fetches()[0][1]["FLAGS"] == []
    for bad in ["(UNCHANGEDSINCE)", "(UNCHANGEDSINCE x)", "(FOO 1)",
                "(UNCHANGEDSINCE 1 UNCHANGEDSINCE 2)"]:
        assert a.cmd("STORE 1 %s +FLAGS (\\Seen)" % bad).status == "BAD", bad


def test_conditional_silent_store_answers_every_message_that_passed(mailbox):
    """RFC 7162 3.1.3: FETCH with MODSEQ for each message that passed the
    UNCHANGEDSINCE test, even with .SILENT and when nothing had to change
    (then its mod-sequence stays)."""
    c, uids = flagged_session(mailbox, 2)
    c.ok("STORE 1 +FLAGS (\\Seen)")
    m1 = modseq_of(c, 1)
    hms = status_hms(c)
    r = c.ok("STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Seen)" % hms)
    m2 = modseq_of(c, 2)
    assert m2 > hms
    assert untagged(r) == ["* 1 FETCH (UID %d MODSEQ (%d))" % (uids[0], m1),
                           "* 2 FETCH (UID %d MODSEQ (%d))" % (uids[1], m2)]
    assert r.text == "OK STORE completed"
    assert status_hms(c) == m2


def test_conditional_store_is_atomic(mailbox):
    """Two sessions race to change the same message with the same
    UNCHANGEDSINCE: exactly one wins, every time."""
    mailbox.fill(1)
    a = mailbox.session()
    b = mailbox.session()
    for round_ in range(10):
        m = modseq_of(a, 1)
        modseq_of(b, 1)
        results = {}

        def run(c, name):
            results[name] = c.cmd("STORE 1 (UNCHANGEDSINCE %d) FLAGS ($%s%d)"
                                  % (m, name, round_))
        ts = [threading.Thread(target=run, args=(a, "A")),
              threading.Thread(target=run, args=(b, "B"))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        won = [k for k, r in results.items() if r.text == "OK STORE completed"]
        lost = [k for k, r in results.items() if r.text.startswith("OK [MODIFIED 1]")]
        assert len(won) == 1 and len(lost) == 1, results
        flags = a.ok("FETCH 1 (FLAGS)").fetches()[-1][1]["FLAGS"]
        assert flags == ["$%s%d" % (won[0], round_)]


# ---- SEARCH MODSEQ ----

def test_search_modseq(mailbox):
    c, uids = flagged_session(mailbox, 4)
    since = status_hms(c)
    c.ok("STORE 2 +FLAGS (\\Draft)")
    c.ok("STORE 3 +FLAGS (\\Flagged)")
    m3 = modseq_of(c, 3)
    r = c.ok("SEARCH MODSEQ %d" % (since + 1))
    assert untagged(r) == ["* SEARCH 2 3 (MODSEQ %d)" % m3]
    r = c.ok('UID SEARCH MODSEQ "/flags/\\\\draft" all %d' % (since + 1))
    assert untagged(r) == ["* SEARCH %d %d (MODSEQ %d)" % (uids[1], uids[2], m3)]
    r = c.ok("SEARCH MODSEQ %d" % (m3 + 1))
    assert untagged(r) == ["* SEARCH"]
    r = c.ok("SEARCH NOT MODSEQ %d" % (since + 1))
    assert untagged(r)[0].startswith("* SEARCH 1 4 (MODSEQ ")
    r = c.ok("SEARCH RETURN (ALL COUNT) MODSEQ %d" % (since + 1))
    assert untagged(r) == ['* ESEARCH (TAG "%s") ALL 2:3 COUNT 2 MODSEQ %d' % (r.tag, m3)]
    r = c.ok("SEARCH RETURN (COUNT) MODSEQ %d" % (m3 + 1))
    assert untagged(r) == ['* ESEARCH (TAG "%s") COUNT 0' % r.tag]
    # without MODSEQ, no (MODSEQ n)
    r = c.ok("SEARCH 2")
    assert untagged(r) == ["* SEARCH 2"]
    for bad in ['MODSEQ', 'MODSEQ x', 'MODSEQ "/flags/\\\\seen" 5',
                'MODSEQ "/flags/\\\\seen" everyone 5', 'MODSEQ "/x" all 5']:
        assert c.cmd("SEARCH %s" % bad).status == "BAD", bad


def test_search_modseq_enables_condstore(mailbox):
    c, uids = flagged_session(mailbox, 1)
    hms = status_hms(mailbox.session())
    r = c.ok("SEARCH MODSEQ 1")
    assert untagged(r) == ["* OK [HIGHESTMODSEQ %d] Highest" % hms,
                           "* SEARCH 1 (MODSEQ %d)" % hms]


# ---- QRESYNC ----

def qresync_session(mailbox):
    c = mailbox.session(select=None)
    c.ok("ENABLE QRESYNC")
    return c


def test_resync_after_changes_elsewhere(mailbox):
    """The issue's scenario: A knows the mailbox and goes away; B changes
    flags and expunges; A comes back with QRESYNC and gets exactly the
    changes."""
    mailbox.fill(8)
    uids = mailbox.uids()
    a = qresync_session(mailbox)
    r = a.ok("SELECT INBOX")
    uv = uidvalidity(r)
    (known,) = hms_code(r)
    a.ok("LOGOUT")

    b = mailbox.session()
    b.ok("STORE 2 +FLAGS (\\Seen)")
    b.ok("STORE 5 +FLAGS (\\Flagged $Todo)")
    b.ok("STORE 3,7 +FLAGS (\\Deleted)")
    b.ok("EXPUNGE")                                 # uids[2], uids[6]
    b.ok("UID STORE %d +FLAGS (\\Answered)" % uids[3])
    b.ok("UID STORE %d +FLAGS (\\Deleted)" % uids[7])
    b.ok("UID EXPUNGE %d" % uids[7])
    b.ok("UID STORE %d -FLAGS (\\Seen)" % uids[0])   # no change: not reported
    now = status_hms(b)
    cur = mailbox.uids()
    assert cur == [uids[i] for i in (0, 1, 3, 4, 5)]
    ms = {u: modseq_of(b, cur.index(u) + 1) for u in cur}

    a = qresync_session(mailbox)
    r = a.ok("SELECT INBOX (QRESYNC (%d %d))" % (uv, known))
    tail = untagged(r)[-5:]
    assert tail == [
        "* OK [HIGHESTMODSEQ %d] Highest" % now,
        "* VANISHED (EARLIER) %d,%d:%d" % (uids[2], uids[6], uids[7]),
        "* 2 FETCH (UID %d MODSEQ (%d) FLAGS (\\Seen))" % (uids[1], ms[uids[1]]),
        "* 3 FETCH (UID %d MODSEQ (%d) FLAGS (\\Answered))" % (uids[3], ms[uids[3]]),
        "* 4 FETCH (UID %d MODSEQ (%d) FLAGS (\\Flagged $Todo))" % (uids[4], ms[uids[4]]),
    ]
    assert untagged(r)[0] == "* 5 EXISTS"
    assert r.text == "OK [READ-WRITE] SELECT completed"
    # known-uids narrow it down; seq-match data is accepted
    a2 = qresync_session(mailbox)
    r = a2.ok("EXAMINE INBOX (QRESYNC (%d %d %d:%d (1:2 %d:%d)))"
              % (uv, known, uids[0], uids[3], uids[0], uids[1]))
    assert untagged(r)[-3:] == [
        "* VANISHED (EARLIER) %d" % uids[2],
        "* 2 FETCH (UID %d MODSEQ (%d) FLAGS (\\Seen))" % (uids[1], ms[uids[1]]),
        "* 3 FETCH (UID %d MODSEQ (%d) FLAGS (\\Answered))" % (uids[3], ms[uids[3]]),
    ]
    # from the current state nothing is reported
    a3 = qresync_session(mailbox)
    r = a3.ok("SELECT INBOX (QRESYNC (%d %d))" % (uv, now))
    assert untagged(r)[-1] == "* OK [HIGHESTMODSEQ %d] Highest" % now
    # another UIDVALIDITY: the rest is ignored
    a4 = qresync_session(mailbox)
    r = a4.ok("SELECT INBOX (QRESYNC (%d %d))" % (uv + 1, known))
    assert untagged(r)[-1] == "* OK [HIGHESTMODSEQ %d] Highest" % now
    assert not any("VANISHED" in t or "FETCH" in t for t in untagged(r))


def test_resync_with_mail_that_came_and_went_while_away(mailbox):
    """RFC 7162 3.2.5.1: without known-uids the server acts as if the
    client gave 1:<UIDNEXT-1>, so mail that arrived while the client was
    away is in the answer: a FETCH for what is still there (its MODSEQ is
    above the client's), VANISHED (EARLIER) for what came and went. With
    known-uids, only those UIDs are reported."""
    mailbox.fill(4)
    uids = mailbox.uids()
    a = qresync_session(mailbox)
    r = a.ok("SELECT INBOX")
    uv = uidvalidity(r)
    (known,) = hms_code(r)
    a.ok("LOGOUT")

    mailbox.fill(2)                                 # new, new2
    new, new2 = mailbox.uids()[4:]
    b = mailbox.session()
    b.ok("UID STORE %d +FLAGS (\\Flagged)" % new)
    b.ok("UID STORE %d +FLAGS (\\Seen)" % uids[3])
    b.ok("UID STORE %d,%d +FLAGS (\\Deleted)" % (uids[1], new2))
    b.ok("EXPUNGE")
    now = status_hms(b)
    assert mailbox.uids() == [uids[0], uids[2], uids[3], new]
    m3, mnew = modseq_of(b, 3), modseq_of(b, 4)

    a = qresync_session(mailbox)
    r = a.ok("SELECT INBOX (QRESYNC (%d %d))" % (uv, known))
    assert untagged(r)[0] == "* 4 EXISTS"
    assert untagged(r)[-4:] == [
        "* OK [HIGHESTMODSEQ %d] Highest" % now,
        "* VANISHED (EARLIER) %d,%d" % (uids[1], new2),
        "* 3 FETCH (UID %d MODSEQ (%d) FLAGS (\\Seen))" % (uids[3], m3),
        "* 4 FETCH (UID %d MODSEQ (%d) FLAGS (\\Flagged))" % (new, mnew),
    ]
    # with the UIDs it knew: neither new message
    a2 = qresync_session(mailbox)
    r = a2.ok("EXAMINE INBOX (QRESYNC (%d %d %d:%d))" % (uv, known, uids[0], uids[3]))
    assert untagged(r)[-3:] == [
        "* OK [HIGHESTMODSEQ %d] Highest" % now,
        "* VANISHED (EARLIER) %d" % uids[1],
        "* 3 FETCH (UID %d MODSEQ (%d) FLAGS (\\Seen))" % (uids[3], m3),
    ]


def test_uid_fetch_vanished(mailbox):
    mailbox.fill(6)
    uids = mailbox.uids()
    a = qresync_session(mailbox)
    a.ok("SELECT INBOX")
    since = status_hms(a)
    b = mailbox.session()
    b.ok("STORE 2,6 +FLAGS (\\Deleted)")
    b.ok("EXPUNGE")
    b.ok("STORE 1 +FLAGS (\\Flagged)")
    m1 = modseq_of(b, 1)
    r = a.ok("NOOP")
    assert untagged(r) == [
        "* VANISHED %d,%d" % (uids[1], uids[5]),
        "* 1 FETCH (UID %d MODSEQ (%d) FLAGS (\\Flagged))" % (uids[0], m1)]
    # "*" reaches the last UID given out, though UID 6 is gone
    r = a.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % since)
    assert untagged(r) == [
        "* VANISHED (EARLIER) %d,%d" % (uids[1], uids[5]),
        "* 1 FETCH (UID %d MODSEQ (%d) FLAGS (\\Flagged))" % (uids[0], m1)]
    r = a.ok("UID FETCH %d:%d (FLAGS) (CHANGEDSINCE %d VANISHED)"
             % (uids[2], uids[4], since))
    assert untagged(r) == []
    assert a.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)").status == "BAD"
    assert a.cmd("UID FETCH 1:* (FLAGS) (VANISHED)").status == "BAD"


def test_expunge_reports_vanished_with_qresync(mailbox):
    mailbox.fill(5)
    uids = mailbox.uids()
    a = qresync_session(mailbox)
    a.ok("SELECT INBOX")
    a.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    r = a.ok("EXPUNGE")
    hms = status_hms(mailbox.session())
    assert untagged(r) == ["* VANISHED %d,%d" % (uids[1], uids[3])]
    assert r.text == "OK [HIGHESTMODSEQ %d] EXPUNGE completed" % hms
    a.ok("UID STORE %d +FLAGS.SILENT (\\Deleted)" % uids[4])
    r = a.ok("UID EXPUNGE %d:%d" % (uids[2], uids[4]))
    hms = status_hms(mailbox.session())
    assert untagged(r) == ["* VANISHED %d" % uids[4]]
    assert r.text == "OK [HIGHESTMODSEQ %d] UID EXPUNGE completed" % hms
    # CLOSE: no VANISHED, no HIGHESTMODSEQ (3.2.8)
    a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    r = a.ok("CLOSE")
    assert untagged(r) == [] and r.text == "OK CLOSE completed"
    assert mailbox.uids() == [uids[2]]
    # a MOVE is a VANISHED too
    mailbox.fill(1)
    a.ok("CREATE Other")
    r = a.ok("SELECT INBOX")
    cur = mailbox.uids()
    r = a.ok("UID MOVE %d Other" % cur[0])
    assert untagged(r)[-1] == "* VANISHED %d" % cur[0]
    # RFC 6851 4.4: with the mailbox's new HIGHESTMODSEQ
    hms = status_hms(mailbox.session())
    assert r.text == "OK [HIGHESTMODSEQ %d] MOVE completed" % hms
    # nothing moved: nothing to tell
    r = a.ok("UID MOVE %d Other" % cur[0])
    assert untagged(r) == [] and r.text == "OK MOVE completed"


def test_silent_store_with_condstore(mailbox):
    c, uids = flagged_session(mailbox, 2)
    modseq_of(c, 1)
    r = c.ok("STORE 1:2 +FLAGS.SILENT (\\Seen)")
    m = modseq_of(c, 1)
    assert untagged(r) == ["* 1 FETCH (UID %d MODSEQ (%d))" % (uids[0], m),
                           "* 2 FETCH (UID %d MODSEQ (%d))" % (uids[1], m)]
    # nothing changed: nothing to say
    r = c.ok("STORE 1:2 +FLAGS.SILENT (\\Seen)")
    assert untagged(r) == []
    # changed by another session since: the flags come along
    d = mailbox.session()
    d.ok("STORE 2 +FLAGS (\\Answered)")
    r = c.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
    m2 = modseq_of(d, 2)
    assert untagged(r) == ["* 2 FETCH (UID %d MODSEQ (%d) FLAGS (\\Answered \\Flagged \\Seen))"
                           % (uids[1], m2)]


def test_held_back_expunge_sends_lower_highestmodseq(mailbox):
    """RFC 7162 3.2 / 6: while an expunge cannot be told (during FETCH),
    the MODSEQs sent may pass it; a HIGHESTMODSEQ below it says where the
    client really is."""
    mailbox.fill(3)
    uids = mailbox.uids()
    a = mailbox.session()
    before = status_hms(a)
    b = mailbox.session()
    b.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    b.ok("STORE 1 +FLAGS (\\Flagged)")
    m1 = modseq_of(b, 1)
    r = a.ok("FETCH 2 (UID)")
    assert untagged(r) == [
        "* 2 FETCH (UID %d)" % uids[1],
        "* 1 FETCH (UID %d MODSEQ (%d) FLAGS (\\Flagged))" % (uids[0], m1),
        "* OK [HIGHESTMODSEQ %d] Expunges held back" % before]
    assert not r.lines("EXPUNGE")
    r = a.ok("NOOP")
    assert untagged(r) == ["* 3 EXPUNGE"]
