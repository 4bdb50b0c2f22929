"""IMAP STORE / UID STORE (RFC 9051 6.4.6), EXPUNGE, UID EXPUNGE (RFC 4315
2.1), CLOSE and UNSELECT (RFC 3691)."""

import pytest

import yubintest

SYSTEM = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"]


def flags(c, seq="1:*"):
    """{seq: sorted flags} as FETCH FLAGS reports them now."""
    r = c.ok("FETCH %s FLAGS" % seq)
    return {n: sorted(a["FLAGS"]) for n, a in r.fetches()}


def echoed(r):
    """{seq: sorted flags} of the untagged FETCH responses of r."""
    out = {}
    for n, a in r.fetches():
        assert "FLAGS" in a, r
        out[n] = sorted(a["FLAGS"])
    return out


def apply_expunges(r, view):
    """Applies the "* n EXPUNGE" responses of r, in order, to view (a list
    of UIDs, index = sequence number - 1); returns the expunged UIDs."""
    gone = []
    for line in r.lines("EXPUNGE"):
        n = int(line.split()[0])
        assert 1 <= n <= len(view), "EXPUNGE %d with %d messages" % (n, len(view))
        gone.append(view.pop(n - 1))
    return gone


# ---- STORE ----

def test_store_replace_add_remove(mailbox):
    mailbox.fill(3)
    c = mailbox.session()
    r = c.ok("STORE 1 FLAGS (\\Flagged \\Answered)")
    assert echoed(r) == {1: ["\\Answered", "\\Flagged"]}
    r = c.ok("STORE 1 +FLAGS (\\Seen)")
    assert echoed(r) == {1: ["\\Answered", "\\Flagged", "\\Seen"]}
    r = c.ok("STORE 1 -FLAGS (\\Answered \\Flagged)")
    assert echoed(r) == {1: ["\\Seen"]}
    r = c.ok("STORE 1 FLAGS (\\Draft)")
    assert echoed(r) == {1: ["\\Draft"]}
    r = c.ok("STORE 1 FLAGS ()")
    assert echoed(r) == {1: []}
    assert flags(c) == {1: [], 2: [], 3: []}


def test_store_echo_carries_uid_and_right_numbers(mailbox):
    mailbox.fill(4)
    c = mailbox.session()
    uids = mailbox.uids()
    r = c.ok("STORE 2:3 +FLAGS (\\Flagged)")
    assert echoed(r) == {2: ["\\Flagged"], 3: ["\\Flagged"]}
    for n, a in r.fetches():
        if "UID" in a:
            assert int(a["UID"]) == uids[n - 1]


def test_store_all_system_flags_and_keywords(mailbox):
    mailbox.fill(1)
    c = mailbox.session()
    r = c.ok("STORE 1 FLAGS (%s $Label1 Custom)" % " ".join(SYSTEM))
    assert echoed(r) == {1: sorted(SYSTEM + ["$Label1", "Custom"])}
    r = c.ok("STORE 1 -FLAGS ($Label1 \\Deleted)")
    assert echoed(r) == {1: sorted(["\\Answered", "\\Flagged", "\\Seen", "\\Draft", "Custom"])}
    # Another session sees the same (stored, not per session).
    c2 = mailbox.session()
    assert flags(c2) == {1: sorted(["\\Answered", "\\Flagged", "\\Seen", "\\Draft", "Custom"])}


def test_keywords(mailbox):
    mailbox.fill(2)
    c = mailbox.session()
    r = c.ok("STORE 1 +FLAGS ($Label1)")
    assert echoed(r) == {1: ["$Label1"]}
    r = c.ok("STORE 1 +FLAGS ($Label2 $Label1)")
    assert echoed(r) == {1: ["$Label1", "$Label2"]}
    r = c.ok("STORE 1 -FLAGS ($Label1)")
    assert echoed(r) == {1: ["$Label2"]}
    assert flags(c) == {1: ["$Label2"], 2: []}


def test_store_flags_without_parentheses(mailbox):
    """store-att-flags allows "flag *(SP flag)" without a list."""
    mailbox.fill(1)
    c = mailbox.session()
    r = c.ok("STORE 1 +FLAGS \\Flagged $Work")
    assert echoed(r) == {1: ["$Work", "\\Flagged"]}


def test_system_flags_are_case_insensitive(mailbox):
    mailbox.fill(1)
    c = mailbox.session()
    r = c.ok("STORE 1 +FLAGS (\\seen \\FLAGGED)")
    assert echoed(r) == {1: ["\\Flagged", "\\Seen"]}


def test_store_silent(mailbox):
    mailbox.fill(3)
    c = mailbox.session()
    for cmd, want in [("STORE 1:2 +FLAGS.SILENT (\\Flagged)", ["\\Flagged"]),
                      ("STORE 1:2 FLAGS.SILENT (\\Seen $X)", ["$X", "\\Seen"]),
                      ("STORE 1:2 -FLAGS.SILENT ($X)", ["\\Seen"])]:
        r = c.ok(cmd)
        assert r.fetches() == [], (cmd, r)
        assert flags(c) == {1: want, 2: want, 3: []}, cmd
    # And no late echo on the next command either.
    r = c.ok("NOOP")
    assert r.fetches() == [], r


def test_store_that_changes_nothing(mailbox):
    """The flags stay, and a non-silent STORE returns them "as if a FETCH
    of those flags was done" (RFC 9051 6.4.6) even when nothing changed."""
    mailbox.fill(2)
    c = mailbox.session()
    c.ok("STORE 1 +FLAGS.SILENT (\\Flagged)")
    r = c.ok("STORE 1 +FLAGS (\\Flagged)")
    r2 = c.ok("STORE 2 -FLAGS (\\Flagged)")
    assert flags(c) == {1: ["\\Flagged"], 2: []}
    assert echoed(r) == {1: ["\\Flagged"]}, r
    assert echoed(r2) == {2: []}, r2


def test_uid_store(mailbox):
    mailbox.fill(4)
    c = mailbox.session()
    uids = mailbox.uids()
    r = c.ok("UID STORE %d,%d +FLAGS (\\Answered)" % (uids[1], uids[3]))
    assert echoed(r) == {2: ["\\Answered"], 4: ["\\Answered"]}
    for n, a in r.fetches():
        assert int(a["UID"]) == uids[n - 1]      # UID STORE answers with UID
    # Past the last UID: nothing, no error.
    r = c.ok("UID STORE %d +FLAGS (\\Flagged)" % (uids[-1] + 10))
    assert r.fetches() == []
    r = c.ok("UID STORE %d:* +FLAGS (\\Draft)" % (uids[-1] + 10))
    assert echoed(r) == {4: ["\\Answered", "\\Draft"]}
    assert flags(c) == {1: [], 2: ["\\Answered"], 3: [], 4: ["\\Answered", "\\Draft"]}


def test_store_in_read_only_mailbox(mailbox):
    mailbox.fill(1)
    c = mailbox.session(examine=True)
    for cmd in ["STORE 1 +FLAGS (\\Seen)", "STORE 1 FLAGS.SILENT (\\Flagged)",
                "UID STORE 1:* -FLAGS (\\Seen)"]:
        r = c.cmd(cmd)
        assert r.status == "NO" and r.text.startswith("NO [READ-ONLY]"), r
        assert r.fetches() == []
    c2 = mailbox.session()
    assert flags(c2) == {1: []}


@pytest.mark.parametrize("args", [
    "1 +FLAGS (\\Recent)",          # \Recent cannot be stored
    "1 +FLAGS (\\Bogus)",           # no such system flag
    "1 +FLAGS (bad[keyword)",
    "1 FLAGZ (\\Seen)",
    "1 +FLAGS.LOUD (\\Seen)",
    "1 +FLAGS",
    "1",
    "x +FLAGS (\\Seen)",
    "0 +FLAGS (\\Seen)",
    "1 +FLAGS ((\\Seen))",
    '1 +FLAGS ("\\\\Seen")',
])
def test_bad_store(mailbox, args):
    mailbox.fill(1)
    c = mailbox.session()
    r = c.cmd("STORE " + args)
    assert r.status == "BAD", r
    assert r.fetches() == []
    assert flags(c) == {1: []}


def test_store_beyond_exists_is_bad(mailbox):
    """RFC 9051 9 (seq-number): a message number greater than the number
    of messages is answered BAD, as FETCH does."""
    mailbox.fill(2)
    c = mailbox.session()
    r = c.cmd("STORE 3 +FLAGS (\\Seen)")
    assert r.status == "BAD", r
    r = c.cmd("STORE 1:5 +FLAGS (\\Seen)")
    assert r.status == "BAD", r
    assert flags(c) == {1: [], 2: []}


# ---- EXPUNGE ----

def test_expunge(mailbox):
    mailbox.fill(5)
    c = mailbox.session()
    view = mailbox.uids()
    uids = list(view)
    c.ok("STORE 2,4,5 +FLAGS.SILENT (\\Deleted)")
    r = c.ok("EXPUNGE")
    gone = apply_expunges(r, view)
    assert sorted(gone) == [uids[1], uids[3], uids[4]]
    assert view == [uids[0], uids[2]]
    assert r.fetches() == []
    # The session's numbers follow: 2 messages, right UIDs.
    r = c.ok("FETCH 1:* UID")
    assert [int(a["UID"]) for _, a in r.fetches()] == view
    assert c.cmd("FETCH 3 UID").status == "BAD"
    # Gone for good.
    assert mailbox.uids() == view
    for u in gone:
        with pytest.raises(yubintest.CliError):
            mailbox.stored(u)
    c2 = mailbox.session()
    r = c2.ok("FETCH 1:* UID")
    assert [int(a["UID"]) for _, a in r.fetches()] == view


def test_expunge_nothing_deleted(mailbox):
    mailbox.fill(2)
    c = mailbox.session()
    r = c.ok("EXPUNGE")
    assert r.lines("EXPUNGE") == []
    assert len(mailbox.uids()) == 2


def test_expunge_all(mailbox):
    mailbox.fill(3)
    c = mailbox.session()
    view = mailbox.uids()
    c.ok("STORE 1:* +FLAGS.SILENT (\\Deleted)")
    r = c.ok("EXPUNGE")
    apply_expunges(r, view)
    assert view == []
    assert mailbox.uids() == []
    assert c.cmd("FETCH 1 UID").status == "BAD"
    # New mail after that gets a new UID.
    mailbox.fill(1)
    r = c.ok("NOOP")
    assert r.lines("EXISTS") == ["1 EXISTS"]


def test_uid_expunge_only_given_uids(mailbox):
    mailbox.fill(4)
    c = mailbox.session()
    uids = mailbox.uids()
    view = list(uids)
    c.ok("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
    # uids[3] is listed but not \Deleted: it stays.
    r = c.ok("UID EXPUNGE %d,%d" % (uids[1], uids[3]))
    assert apply_expunges(r, view) == [uids[1]]
    assert mailbox.uids() == [uids[0], uids[2], uids[3]]
    assert flags(c) == {1: ["\\Deleted"], 2: ["\\Deleted"], 3: []}
    r = c.ok("UID EXPUNGE %d:*" % uids[2])
    assert apply_expunges(r, view) == [uids[2]]
    assert mailbox.uids() == [uids[0], uids[3]]


def test_uid_expunge_syntax(mailbox):
    mailbox.fill(1)
    c = mailbox.session()
    assert c.cmd("UID EXPUNGE").status == "BAD"
    assert c.cmd("UID EXPUNGE x").status == "BAD"
    assert c.cmd("UID EXPUNGE 1 2").status == "BAD"
    assert len(mailbox.uids()) == 1


def test_expunge_read_only_removes_nothing(mailbox):
    mailbox.fill(2)
    c = mailbox.session()
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    ro = mailbox.session(examine=True)
    r = ro.cmd("EXPUNGE")
    assert r.status in ("OK", "NO"), r
    assert r.lines("EXPUNGE") == []
    assert len(mailbox.uids()) == 2


# ---- CLOSE / UNSELECT ----

def test_close_expunges_silently(mailbox):
    mailbox.fill(3)
    c = mailbox.session()
    uids = mailbox.uids()
    c.ok("STORE 1,3 +FLAGS.SILENT (\\Deleted)")
    r = c.ok("CLOSE")
    assert r.untagged == [], r
    assert mailbox.uids() == [uids[1]]
    # Back in the authenticated state.
    assert c.cmd("FETCH 1 UID").status == "BAD"
    assert c.cmd("CLOSE").status == "BAD"
    c.select()


def test_close_after_examine_expunges_nothing(mailbox):
    mailbox.fill(2)
    c = mailbox.session()
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    ro = mailbox.session(examine=True)
    r = ro.ok("CLOSE")
    assert r.untagged == []
    assert len(mailbox.uids()) == 2


def test_unselect_does_not_expunge(mailbox):
    mailbox.fill(2)
    c = mailbox.session()
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    r = c.ok("UNSELECT")
    assert r.untagged == []
    assert len(mailbox.uids()) == 2
    assert c.cmd("FETCH 1 UID").status == "BAD"
    c.select()
    assert flags(c) == {1: ["\\Deleted"], 2: []}


def test_select_does_not_expunge(mailbox):
    """Selecting another mailbox is not CLOSE (RFC 9051 6.3.2)."""
    mailbox.fill(2)
    c = mailbox.session()
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    c.ok("SELECT Sent")
    assert len(mailbox.uids()) == 2
