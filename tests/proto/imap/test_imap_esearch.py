"""SEARCH result options (RFC 9051 6.4.4, RFC 4731 ESEARCH) and the saved
search result "$" (RFC 9051 6.4.4.1, RFC 5182 SEARCHRES)."""

import imaplib

import pytest

import imaptest


@pytest.fixture
def five(mailbox):
    """A session on an INBOX of five messages; 2 and 4 flagged, 5 seen.
    Returns (session, uids)."""
    mailbox.fill(5)
    c = mailbox.session()
    c.ok("STORE 2,4 +FLAGS.SILENT (\\Flagged)")
    c.ok("STORE 5 +FLAGS.SILENT (\\Seen)")
    return c, mailbox.uids()


def test_capabilities(imap):
    c = imap()
    caps = set(imaptest.parse_caps(c.greeting.text))
    assert {"ESEARCH", "SEARCHRES"} <= caps, caps


def test_return_min_max_all_count(five):
    c, uids = five
    r = c.cmd("SEARCH RETURN (MIN MAX ALL COUNT) FLAGGED", tag="e1")
    assert r.status == "OK", r
    assert r.lines() == ['ESEARCH (TAG "e1") MIN 2 MAX 4 ALL 2,4 COUNT 2'], r
    r = c.cmd("SEARCH RETURN (COUNT) ALL", tag="e2")
    assert r.lines() == ['ESEARCH (TAG "e2") COUNT 5'], r


def test_return_empty_list_is_all_as_ranges(five):
    c, uids = five
    r = c.cmd("SEARCH RETURN () UNSEEN", tag="e1")
    assert r.lines() == ['ESEARCH (TAG "e1") ALL 1:4'], r


def test_uid_search_return(five):
    c, uids = five
    r = c.cmd("UID SEARCH RETURN (MIN MAX) FLAGGED", tag="u1")
    assert r.lines() == ['ESEARCH (TAG "u1") UID MIN %d MAX %d' % (uids[1], uids[3])], r


def test_no_match_still_answers(five):
    """MIN, MAX and ALL are left out when nothing matches, COUNT is not,
    and the ESEARCH response is always sent."""
    c, uids = five
    r = c.cmd("SEARCH RETURN (MIN MAX ALL COUNT) DELETED", tag="n1")
    assert r.lines() == ['ESEARCH (TAG "n1") COUNT 0'], r
    r = c.cmd("UID SEARCH RETURN (ALL) DELETED", tag="n2")
    assert r.lines() == ['ESEARCH (TAG "n2") UID'], r


def test_plain_search_stays_rev1(five):
    c, uids = five
    r = c.ok("SEARCH FLAGGED")
    assert r.lines() == ["SEARCH 2 4"], r


@pytest.mark.parametrize("line", [
    "SEARCH RETURN (BOGUS) ALL",
    "SEARCH RETURN MIN ALL",
    "SEARCH RETURN",
    "SEARCH RETURN (MIN)",
    "SEARCH RETURN ((MIN)) ALL",
    'SEARCH RETURN ("MIN") ALL',
])
def test_bad_return_options(five, line):
    c, uids = five
    r = c.cmd(line)
    assert r.status == "BAD", r
    assert r.untagged == [], r


def test_save_then_dollar_everywhere(five):
    c, uids = five
    r = c.cmd("SEARCH RETURN (SAVE) FLAGGED", tag="s1")
    assert r.status == "OK" and r.untagged == [], r       # SAVE alone: no ESEARCH
    r = c.ok("FETCH $ (UID)")
    assert [(n, int(a["UID"])) for n, a in r.fetches()] == [(2, uids[1]), (4, uids[3])]
    r = c.ok("UID FETCH $ (FLAGS)")
    assert [n for n, a in r.fetches()] == [2, 4]
    r = c.ok("SEARCH $ UNSEEN")
    assert r.lines() == ["SEARCH 2 4"], r
    r = c.ok("UID SEARCH UID $")
    assert r.lines() == ["SEARCH %d %d" % (uids[1], uids[3])], r
    r = c.ok("STORE $ +FLAGS (\\Answered)")
    assert sorted(n for n, a in r.fetches()) == [2, 4], r
    r = c.ok("UID STORE $ -FLAGS.SILENT (\\Answered)")
    assert r.fetches() == [], r
    r = c.ok("COPY $ Trash")
    assert "COPYUID" in r.text, r
    r = c.ok("UID COPY $ Trash")
    assert "COPYUID" in r.text, r


def test_dollar_follows_expunge_and_move(five):
    c, uids = five
    c.ok("SEARCH RETURN (SAVE) FLAGGED")                  # 2 and 4
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    r = c.ok("FETCH $ (UID)")                              # now 1 and 3
    assert [(n, int(a["UID"])) for n, a in r.fetches()] == [(1, uids[1]), (3, uids[3])]
    r = c.ok("MOVE $ Trash")
    assert sorted(r.lines("EXPUNGE")) == ["1 EXPUNGE", "2 EXPUNGE"], r
    # The moved messages are gone: "$" matches nothing, without error.
    r = c.ok("FETCH $ (UID)")
    assert r.fetches() == []
    r = c.ok("UID MOVE $ Trash")
    assert r.lines("EXPUNGE") == []


def test_save_min_max_keeps_only_those(five):
    c, uids = five
    c.ok("SEARCH RETURN (SAVE MIN) UNSEEN")
    assert c.ok("SEARCH $").lines() == ["SEARCH 1"]
    c.ok("SEARCH RETURN (SAVE MIN MAX) UNSEEN")
    assert c.ok("SEARCH $").lines() == ["SEARCH 1 4"]
    r = c.cmd("SEARCH RETURN (SAVE MIN COUNT) UNSEEN", tag="m1")
    assert r.lines() == ['ESEARCH (TAG "m1") MIN 1 COUNT 4'], r
    assert c.ok("SEARCH $").lines() == ["SEARCH 1 2 3 4"]


def test_dollar_is_empty_at_first_and_after_select(five):
    c, uids = five
    r = c.ok("FETCH $ FLAGS")                              # empty, not an error
    assert r.fetches() == []
    c.ok("SEARCH RETURN (SAVE) ALL")
    assert len(c.ok("FETCH $ FLAGS").fetches()) == 5
    c.ok("SELECT INBOX")
    assert c.ok("FETCH $ FLAGS").fetches() == []


def test_failed_searches_and_dollar(five):
    """BAD leaves "$" alone; NO for a SAVE empties it; a SEARCH without
    SAVE does not touch it (RFC 9051 6.4.4.1)."""
    c, uids = five
    c.ok("SEARCH RETURN (SAVE) FLAGGED")
    assert c.cmd("SEARCH RETURN (SAVE) BOGUS").status == "BAD"
    assert c.ok("SEARCH $").lines() == ["SEARCH 2 4"]
    c.ok("SEARCH SEEN")
    assert c.ok("SEARCH $").lines() == ["SEARCH 2 4"]
    r = c.cmd("SEARCH RETURN (SAVE) CHARSET KOI8-R ALL")
    assert r.status == "NO" and "BADCHARSET" in r.text, r
    assert c.ok("SEARCH $").lines() == ["SEARCH"]


def test_dollar_only_alone(five):
    c, uids = five
    c.ok("SEARCH RETURN (SAVE) FLAGGED")
    for line in ("FETCH $,1 FLAGS", "FETCH 1:$ FLAGS", "STORE $$ +FLAGS (\\Seen)"):
        assert c.cmd(line).status == "BAD", line


def test_message_numbers_beyond_exists_are_bad(five):
    c, uids = five
    for line in ("SEARCH 6", "SEARCH 1:9", "COPY 6 Trash", "MOVE 3:7 Trash",
                 "STORE 0 +FLAGS (\\Seen)"):
        r = c.cmd(line)
        assert r.status == "BAD", (line, r)


def test_with_imaplib(mailbox):
    mailbox.fill(3)
    m = imaplib.IMAP4("127.0.0.1", mailbox.server.listener_port("imap"))
    try:
        m.login(mailbox.user, imaptest.PASSWORD)
        m.select("INBOX")
        typ, data = m._simple_command("SEARCH", "RETURN", "(MIN MAX COUNT SAVE)", "ALL")
        assert typ == "OK", data
        typ, data = m._untagged_response(typ, data, "ESEARCH")
        assert data[0].endswith(b" MIN 1 MAX 3 COUNT 3"), data
        typ, data = m.fetch("$", "(UID)")
        assert typ == "OK" and len(data) == 3, data
    finally:
        m.logout()
