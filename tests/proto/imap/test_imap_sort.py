"""SORT and THREAD (RFC 5256), SORT=DISPLAY (RFC 5957), ESORT (RFC 5267),
WITHIN (RFC 5032) and "$" with SORT (RFC 5182), on a fixed set of fifteen
messages whose expected results were worked out by hand from the RFCs'
algorithms (the reasoning is in the comments below).

The messages are APPENDed with known internal dates, after one message
that is expunged at once, so that UIDs are the sequence numbers plus one.

    seq  Subject (raw)                  base subject   reply  sent date (UTC)
    1    Project plan                   Project plan   no     01-05 10:00
    2    Re: Project plan               Project plan   yes    01-05 11:00
    3    Re: [list] Fwd: Project plan   Project plan   yes    01-05 12:00 (09:00 -0300)
    4    Budget (fwd)                   Budget         yes    none: internal 01-01 04:00
    5    =?UTF-8?Q?Caf=C3=A9?= menu     Cafe menu      no     01-06 08:00
    6    [fwd: Budget]                  Budget         yes    01-06 08:00
    7    Re: Budget                     Budget         yes    01-06 09:00
    8    Loop A                         Loop A         no     01-07 10:00
    9    Loop B                         Loop B         no     01-07 11:00
    10   Re: Lost thread                Lost thread    yes    01-08 10:00
    11   Re: Lost thread                Lost thread    yes    01-08 09:00
    12   Lost thread                    Lost thread    no     01-08 12:00
    13   RE: =?utf-8?b?...?= (Cafe menu) Cafe menu     yes    01-06 07:00
    14   Project plan                   Project plan   no     01-05 10:00
    15   "  Re:   re: Fw: Agenda  "     Agenda         yes    01-09 10:00

(Cafe is "Café" in the messages.) 3: "Re:" is a subj-leader, then
"[list] Fwd:" is one too (*subj-blob subj-refwd). 4: "(fwd)" is a
subj-trailer. 6: "[fwd:" ... "]" is removed by step (6). 15: the runs of
spaces become one, leading "Re: ", "re: ", "Fw: " are leaders and the
trailing space a trailer.

References (Message-ID: references):
    1 a1: -        2 a2: a1       3 a3: a1 a2     4 b1: -
    5 c1: -        6 "b2"@x (quoted: the same as b2@x): In-Reply-To b1
    7 b3: b2       8 l1: l2       9 l2: l1 (a loop)
    10 m2: m0 m1 (m0 and m1 are in no message)   11 m3: m0 m1
    12 m4: -       13 c2: -       14 a1 again (a duplicate)
    15 no Message-ID: z9 (in no message)
"""

import os
import sqlite3

import pytest

import imaptest

# (subject, from, to, cc, date, message-id, references, in-reply-to,
#  internal date)
MESSAGES = [
    ("Project plan", "Carol <carol@x.org>", "dave@x.org", None,
     "Mon, 05 Jan 2026 10:00:00 +0000", "<a1@x>", None, None, "01-Jan-2026 01:00:00 +0000"),
    ("Re: Project plan", "Bob <bob@x.org>", "Carol <carol@x.org>", "zed@x.org",
     "Mon, 05 Jan 2026 11:00:00 +0000", "<a2@x>", "<a1@x>", None, "01-Jan-2026 02:00:00 +0000"),
    ("Re: [list] Fwd: Project plan", "alice@x.org", "list@x.org", None,
     "Mon, 05 Jan 2026 09:00:00 -0300", "<a3@x>", "<a1@x> <a2@x>", None,
     "01-Jan-2026 00:30:00 +0000"),
    ("Budget (fwd)", None, "list@x.org", None,
     None, "<b1@x>", None, None, "01-Jan-2026 04:00:00 +0000"),
    ("=?UTF-8?Q?Caf=C3=A9?= menu", "=?UTF-8?Q?Zo=C3=AB?= <zoe@y.org>", "\"Zed\" <aaron@x.org>",
     None, "Tue, 06 Jan 2026 08:00:00 +0000", "<c1@x>", None, None,
     "01-Jan-2026 05:00:00 +0000"),
    ("[fwd: Budget]", "\"Dave\" <Dave@x.org>", "undisclosed-recipients:;", None,
     "Tue, 06 Jan 2026 08:00:00 +0000", "<\"b2\"@x>", None, "<b1@x> (sent by Bob)",
     "01-Jan-2026 06:00:00 +0000"),
    ("Re: Budget", "eve@x.org", "bob@x.org", "Amy <amy@x.org>, bob@x.org",
     "Tue, 06 Jan 2026 09:00:00 +0000", "<b3@x>", "<b2@x>", None, "01-Jan-2026 07:00:00 +0000"),
    ("Loop A", "bob@x.org", "\"Bob\" <bob@x.org>, other@x.org", None,
     "Wed, 07 Jan 2026 10:00:00 +0000", "<l1@x>", "<l2@x>", None, "01-Jan-2026 08:00:00 +0000"),
    ("Loop B", "\"Ann\" <ann@x.org>", None, None,
     "Wed, 07 Jan 2026 11:00:00 +0000", "<l2@x>", "<l1@x>", None, "01-Jan-2026 09:00:00 +0000"),
    ("Re: Lost thread", "carol@x.org", "list@x.org", None,
     "Thu, 08 Jan 2026 10:00:00 +0000", "<m2@x>", "<m0@x>\r\n <m1@x>", None,
     "01-Jan-2026 10:00:00 +0000"),
    ("Re: Lost thread", "frank@x.org", "list@x.org", "mike@x.org",
     "Thu, 08 Jan 2026 09:00:00 +0000", "<m3@x>", "<m0@x> <m1@x>", None,
     "01-Jan-2026 11:00:00 +0000"),
    ("Lost thread", "Alice <alice@x.org>", "list@x.org", None,
     "Thu, 08 Jan 2026 12:00:00 +0000", "<m4@x>", None, None, "01-Jan-2026 12:00:00 +0000"),
    ("RE: =?utf-8?b?Q2Fmw6kgbWVudQ==?=", "eve@x.org", "zoe@y.org", None,
     "Tue, 06 Jan 2026 07:00:00 +0000", "<c2@x>", None, None, "01-Jan-2026 13:00:00 +0000"),
    ("Project plan", "carol@x.org", "dave@x.org", None,
     "Mon, 05 Jan 2026 10:00:00 +0000", "<a1@x>", None, None, "01-Jan-2026 14:00:00 +0000"),
    ("  Re:   re: Fw: Agenda  ", "\"Gus\" <gus@x.org>", "Carol <carol@x.org>, dave@x.org", None,
     "Fri, 09 Jan 2026 10:00:00 +0000", None, "<z9@x>", None, "01-Jan-2026 15:00:00 +0000"),
]


def build(subject, frm, to, cc, date, mid, refs, irt):
    head = []
    if frm:
        head.append("From: " + frm)
    if to:
        head.append("To: " + to)
    if cc:
        head.append("Cc: " + cc)
    head.append("Subject: " + subject)
    if date:
        head.append("Date: " + date)
    if mid:
        head.append("Message-ID: " + mid)
    if refs:
        head.append("References: " + refs)
    if irt:
        head.append("In-Reply-To: " + irt)
    return ("\r\n".join(head) + "\r\n\r\nBody.\r\n").encode()


def append(c, msg, date=None):
    d = ' "%s"' % date if date else ""
    r = c.cmd(b'APPEND INBOX ()' + d.encode() + b' {%d+}\r\n' % len(msg) + msg)
    assert r.status == "OK", r


@pytest.fixture(scope="module")
def box(server):
    """An INBOX with the fifteen messages; returns (user, uids)."""
    user = imaptest.new_user(server, "sort")
    c = imaptest.RawIMAP(server)
    c.login(user)
    c.select("INBOX")
    append(c, build("scratch", "x@x.org", None, None, None, None, None, None))
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    for m in MESSAGES:
        append(c, build(*m[:8]), m[8])
    c.close()
    return user


@pytest.fixture
def c(box, imap):
    s = imap()
    s.login(box)
    s.select("INBOX")
    return s


def sort(c, args, uid=False):
    r = c.cmd(("UID " if uid else "") + "SORT " + args)
    assert r.status == "OK", r
    lines = r.lines("SORT")
    assert len(lines) == 1, r
    return [int(x) for x in lines[0].split()[1:]]


def thread(c, args):
    r = c.cmd("THREAD " + args)
    assert r.status == "OK", r
    lines = r.lines("THREAD")
    assert len(lines) == 1, r
    return lines[0][len("THREAD "):] if lines[0] != "THREAD" else ""


def test_capabilities(imap):
    caps = set(imaptest.parse_caps(imap().greeting.text))
    assert {"SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES",
            "ESORT", "WITHIN"} <= caps, caps


def test_sort_subject(c):
    # By base subject (ASCII case map: "CAFé MENU" < "LOOP A" < "LOOP B"
    # < "LOST THREAD": 'O' < 'S'), ties by sequence number.
    assert sort(c, "(SUBJECT) UTF-8 ALL") == [15, 4, 6, 7, 5, 13, 8, 9, 10, 11, 12, 1, 2, 3, 14]


def test_sort_date(c):
    # 4 has no Date: its internal date (01-01 04:00) is its sent date. 3
    # is 09:00 -0300, 12:00 UTC, after 2. 1 and 14, 5 and 6 have the
    # same date: by sequence number.
    assert sort(c, "(DATE) UTF-8 ALL") == [4, 1, 14, 2, 3, 13, 5, 6, 7, 8, 9, 11, 10, 12, 15]
    # REVERSE reverses the date only, not the sequence-number tie-break.
    assert sort(c, "(REVERSE DATE) utf-8 ALL") == [15, 12, 10, 11, 9, 8, 7, 5, 6, 13, 3, 2,
                                                   1, 14, 4]


def test_sort_arrival(c):
    # Internal dates rise with the sequence except 3's (00:30).
    assert sort(c, "(ARRIVAL) UTF-8 ALL") == [3, 1, 2] + list(range(4, 16))
    assert sort(c, "(REVERSE ARRIVAL) UTF-8 ALL") == list(range(15, 3, -1)) + [2, 1, 3]


def test_sort_addresses(c):
    # FROM: the local part of the first From address; 4 has no From: "".
    # alice 3 12, ann 9, bob 2 8, carol 1 10 14, Dave 6, eve 7 13, frank
    # 11, gus 15, zoe 5.
    assert sort(c, "(FROM) UTF-8 ALL") == [4, 3, 12, 9, 2, 8, 1, 10, 14, 6, 7, 13, 11, 15, 5]
    # TO: 6 (a group, no address) and 9 (no To) first; aaron 5, bob 7 8,
    # carol 2 15, dave 1 14, list 3 4 10 11 12, zoe 13.
    assert sort(c, "(TO) UTF-8 ALL") == [6, 9, 5, 7, 8, 2, 15, 1, 14, 3, 4, 10, 11, 12, 13]
    # CC: the twelve without Cc, then amy 7, mike 11, zed 2.
    assert sort(c, "(CC) UTF-8 ALL") == [1, 3, 4, 5, 6, 8, 9, 10, 12, 13, 14, 15, 7, 11, 2]


def test_sort_display(c):
    # RFC 5957: the display name, else mailbox@host. "Alice" (12) before
    # "alice@x.org" (3), "Bob" (2) before "bob@x.org" (8), "Carol" (1)
    # before "carol@x.org" (10 14), "Zoë" (5, decoded) last.
    assert sort(c, "(DISPLAYFROM) UTF-8 ALL") == [4, 12, 3, 9, 2, 8, 1, 10, 14, 6, 7, 13, 11,
                                                  15, 5]
    # "" 6 9; "Bob" 8; "bob@x.org" 7; "Carol" 2 15; "dave@x.org" 1 14;
    # "list@x.org" 3 4 10 11 12; "Zed" 5 (not aaron); "zoe@y.org" 13.
    assert sort(c, "(DISPLAYTO) UTF-8 ALL") == [6, 9, 8, 7, 2, 15, 1, 14, 3, 4, 10, 11, 12, 5,
                                                13]


def test_sort_size_and_several_keys(c):
    r = c.ok("FETCH 1:* RFC822.SIZE")
    sizes = {seq: int(items["RFC822.SIZE"]) for seq, items in r.fetches()}
    assert sort(c, "(SIZE) UTF-8 ALL") == sorted(sizes, key=lambda s: (sizes[s], s))
    assert sort(c, "(REVERSE SIZE) UTF-8 ALL") == sorted(sizes, key=lambda s: (-sizes[s], s))
    # Subject, then the latest first: Budget 7 6 4, Cafe 5 13, Lost 12 10
    # 11, Project 3 2 then 1 and 14 (same date: by sequence number).
    assert sort(c, "(SUBJECT REVERSE DATE) UTF-8 ALL") == [15, 7, 6, 4, 5, 13, 8, 9, 12, 10, 11,
                                                           3, 2, 1, 14]


def test_sort_with_search_keys_and_uid(c):
    assert sort(c, "(DATE) US-ASCII SUBJECT budget") == [4, 6, 7]
    assert sort(c, "(REVERSE DATE) UTF-8 SUBJECT budget", uid=True) == [8, 7, 5]
    assert sort(c, "(SUBJECT) UTF-8 TEXT \"not in any message\"") == []
    assert sort(c, "(DATE) UTF-8 OR FROM alice FROM ann 2:12") == [3, 9, 12]


def test_sort_charset_and_syntax(c, box, imap):
    r = c.cmd("SORT (DATE) KOI8-R ALL")
    assert r.status == "NO" and "[BADCHARSET" in r.text, r
    r = c.cmd("THREAD REFERENCES ISO-8859-1 ALL")
    assert r.status == "NO" and "[BADCHARSET" in r.text, r
    bad = ["SORT (DATE) ALL", "SORT (DATE FOO) UTF-8 ALL", "SORT () UTF-8 ALL",
           "SORT (REVERSE) UTF-8 ALL", "SORT DATE UTF-8 ALL", "THREAD FOO UTF-8 ALL",
           "THREAD REFERENCES UTF-8", "SORT RETURN (FOO) (DATE) UTF-8 ALL"]
    for i in range(0, len(bad), 3):
        # A new session every few: too many BADs end one (max_errors).
        s = imap()
        s.login(box)
        s.select("INBOX")
        for line in bad[i:i + 3]:
            assert s.cmd(line).status == "BAD", line


def test_esort(c):
    r = c.cmd("SORT RETURN (MIN MAX ALL COUNT) (DATE) UTF-8 ALL", tag="e1")
    assert r.status == "OK", r
    # MIN and MAX are the first and last in sort order; ALL is in sort
    # order with ranges only where the numbers rise (RFC 5267 3.2).
    assert r.lines() == ['ESEARCH (TAG "e1") MIN 4 MAX 15 ALL 4,1,14,2:3,13,5:9,11,10,12,15'
                         ' COUNT 15'], r
    r = c.cmd("UID SORT RETURN (MIN MAX) (SUBJECT) UTF-8 ALL", tag="e2")
    assert r.lines() == ['ESEARCH (TAG "e2") UID MIN 16 MAX 15'], r
    r = c.cmd("SORT RETURN () (REVERSE DATE) UTF-8 SUBJECT budget", tag="e3")
    assert r.lines() == ['ESEARCH (TAG "e3") ALL 7,6,4'], r
    r = c.cmd("SORT RETURN (COUNT) (DATE) UTF-8 DELETED", tag="e4")
    assert r.lines() == ['ESEARCH (TAG "e4") COUNT 0'], r


def test_esort_save(c):
    # SAVE alone answers nothing; "$" holds what was found.
    r = c.cmd("SORT RETURN (SAVE) (DATE) UTF-8 SUBJECT budget")
    assert r.status == "OK" and r.lines("ESEARCH") == [], r
    assert c.ok("SEARCH $").lines("SEARCH") == ["SEARCH 4 6 7"]
    # "$" as SORT's search key.
    assert sort(c, "(REVERSE DATE) UTF-8 $") == [7, 6, 4]
    # SAVE with MIN alone keeps the first in sort order: 11 (the earliest
    # of 10, 11, 12).
    r = c.cmd("SORT RETURN (SAVE MIN) (DATE) UTF-8 SUBJECT lost", tag="s2")
    assert r.lines() == ['ESEARCH (TAG "s2") MIN 11'], r
    assert c.ok("SEARCH $").lines("SEARCH") == ["SEARCH 11"]
    # A SORT SAVE refused for its charset empties "$".
    assert c.cmd("SORT RETURN (SAVE) (DATE) KOI8-R ALL").status == "NO"
    assert c.ok("SEARCH $").lines("SEARCH") == ["SEARCH"]


# ORDEREDSUBJECT: sorted by base subject and sent date, one thread per
# subject whose first message is the parent of all the others (siblings,
# in date order), the threads by the date of their first message:
#   Budget: 4 (01-01) with 6 and 7        -> (4 (6)(7))
#   Project plan: 1 (01-05 10:00; 14 has the same date but comes later in
#     the mailbox), then 14, 2, 3          -> (1 (14)(2)(3))
#   Cafe menu: 13 (07:00) then 5 (08:00)  -> (13 5)   one child: no nesting
#   Loop A (8), Loop B (9)
#   Lost thread: 11 (09:00), 10, 12       -> (11 (10)(12))
#   Agenda: (15)
ORDEREDSUBJECT = "(4 (6)(7))(1 (14)(2)(3))(13 5)(8)(9)(11 (10)(12))(15)"

# REFERENCES, step by step:
# (1) 1 is a1. 2 (a2) is a child of a1. 3: the link a1-a2 is there; 3 is a
#     child of a2. 4 is b1. 6 has no References: its In-Reply-To's first
#     msg-id, b1, is its parent; its Message-ID <"b2"@x> normalises to
#     b2@x, so 7 (refs b2) is 6's child. 8 (l1) gets a dummy parent l2; 9
#     is l2 and takes that dummy (so 8 is 9's child); 9's parent would be
#     l1, which is 8, its own child: a loop, so 9 has no parent. 10: dummy
#     m0 is the parent of dummy m1, the parent of 10; 11 is m1's child
#     too. 14 repeats a1: it gets a unique id and no link. 15 has no
#     Message-ID and a dummy parent z9.
# (2) The roots: 1, 4, 5, 9, dummy m0, 12, 13, 14, dummy z9.
# (3) Dummy m1 goes (its children 10 and 11 come up to m0, which stays:
#     two children at the top); dummy z9 goes (15 alone comes up).
# (4) By date: 4 (01-01, internal date), 1, 14 (same date, later), 13,
#     5, 9, the m dummy (its first child 11, 01-08 09:00), 12, 15.
# (5) Subject table: Budget 4; Project plan 1 (14 is no reply); Cafe menu
#     13, then 5 (13 is a reply, 5 is not); Loop B 9; Lost thread the
#     dummy; Agenda 15. Merging: 14 and 1 are both non-replies: a new
#     dummy holds both; 13 (a reply) becomes a child of 5; 12 a child of
#     the Lost thread dummy.
# (6) Siblings by date: the dummy's 1 then 14, the m dummy's 11, 10, 12;
#     at the top 4, dummy(1, 14), 5, 9, dummy(11, 10, 12), 15.
REFERENCES = "(4 6 7)((1 2 3)(14))(5 13)(9 8)((11)(10)(12))(15)"


def test_thread_orderedsubject(c):
    assert thread(c, "ORDEREDSUBJECT UTF-8 ALL") == ORDEREDSUBJECT


def test_thread_references(c):
    assert thread(c, "REFERENCES UTF-8 ALL") == REFERENCES


def test_thread_searched_subset_and_uid(c):
    # Only the messages found: with 2 not searched, it is a dummy between
    # 1 and 3, pruned: 3 becomes 1's child.
    assert thread(c, "REFERENCES UTF-8 1,3") == "(1 3)"
    # 10 and 11 alone share the dummy m1 (and m0): "((11)(10))".
    assert thread(c, "REFERENCES UTF-8 10:11") == "((11)(10))"
    r = c.ok("UID THREAD REFERENCES UTF-8 SUBJECT budget")
    assert r.lines("THREAD") == ["THREAD (5 7 8)"], r
    assert thread(c, "ORDEREDSUBJECT US-ASCII DELETED") == ""


def test_within(c, box, server, imap):
    # All fifteen arrived in January: older than a day, none younger.
    assert c.ok("SEARCH OLDER 86400").lines("SEARCH") == [
        "SEARCH " + " ".join(str(i) for i in range(1, 16))]
    assert c.ok("SEARCH YOUNGER 86400").lines("SEARCH") == ["SEARCH"]
    assert c.cmd("SEARCH OLDER 0").status == "BAD"
    assert c.cmd("SEARCH YOUNGER x").status == "BAD"
    # A message appended now (internal date: now) in another account.
    user = imaptest.new_user(server, "within")
    d = imap()
    d.login(user)
    d.select("INBOX")
    append(d, build("old", "a@x.org", None, None, None, None, None, None),
           "01-Jan-2020 00:00:00 +0000")
    append(d, build("new", "a@x.org", None, None, None, None, None, None))
    assert d.ok("SEARCH YOUNGER 3600").lines("SEARCH") == ["SEARCH 2"]
    assert d.ok("SEARCH OLDER 3600").lines("SEARCH") == ["SEARCH 1"]
    assert d.ok("SEARCH NOT YOUNGER 3600").lines("SEARCH") == ["SEARCH 1"]
    assert sort(d, "(REVERSE ARRIVAL) UTF-8 YOUNGER 300000000") == [2, 1]


def test_rows_from_before_are_parsed(c, box, server):
    """Messages without stored sort fields (delivered by an older
    version) give the same results: their files are parsed."""
    db = sqlite3.connect(os.path.join(server.data_dir, "yubin.db"), timeout=10)
    with db:
        n = db.execute("DELETE FROM message_sort").rowcount
    db.close()
    assert n >= 15
    assert thread(c, "REFERENCES UTF-8 ALL") == REFERENCES
    assert thread(c, "ORDEREDSUBJECT UTF-8 ALL") == ORDEREDSUBJECT
    assert sort(c, "(DATE) UTF-8 ALL") == [4, 1, 14, 2, 3, 13, 5, 6, 7, 8, 9, 11, 10, 12, 15]
    assert sort(c, "(DISPLAYFROM) UTF-8 ALL") == [4, 12, 3, 9, 2, 8, 1, 10, 14, 6, 7, 13, 11,
                                                  15, 5]
