"""IMAP FETCH and UID FETCH (RFC 9051 6.4.5, 7.5.2; RFC 3501 6.4.5) of the
non-MIME items: UID, FLAGS, INTERNALDATE, RFC822.SIZE, FAST, RFC822*,
BODY[] / BODY.PEEK[] with HEADER, TEXT, HEADER.FIELDS(.NOT) and partial
ranges; the implicit \\Seen; sequence sets.

Every byte is checked against the message as stored (`yubin mail show`).
ENVELOPE, BODY, BODYSTRUCTURE and numbered sections wait for the MIME
work and are not tested here."""

import imaplib
import re

import pytest

import imaptest
import yubintest

DATE_RE = re.compile(r"^(\d\d| \d)-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-"
                     r"(\d{4}) (\d\d):(\d\d):(\d\d) ([+-]\d{4})$")
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

BODY = (b"First line.\r\n"
        b".A line starting with a dot.\r\n"
        b"\r\n"
        b"Subject: not a header, this is the body\r\n"
        b"Last line.\r\n")
EXTRA = ("X-Folded: first part\r\n\tsecond part\r\n  third part",
         "Cc: bob@example.net",
         "X-Empty:",
         "subject-like: lower case name")


def header_fields(header):
    """[(name, bytes of the whole field incl. folds and CRLF)] of a header
    block (which ends with the empty line)."""
    out = []
    for line in header.split(b"\r\n")[:-2]:
        if line[:1] in (b" ", b"\t"):
            name, data = out[-1]
            out[-1] = (name, data + line + b"\r\n")
        else:
            out.append((line.split(b":", 1)[0].decode(), line + b"\r\n"))
    return out


def split_message(stored):
    end = stored.index(b"\r\n\r\n") + 4
    return stored[:end], stored[end:]


class _One:
    def __init__(self, server, user):
        self.server = server
        self.user = user


@pytest.fixture(scope="module")
def one(server):
    """A mailbox with one known message, EXAMINEd (nothing changes it) by
    one session shared by the module: (mailbox, session, stored bytes,
    `mail list` row)."""
    user = imaptest.new_user(server, "one")
    subject = yubintest.unique("fetch")
    msg = yubintest.make_msg(subject, to=user, body=BODY, extra_headers=EXTRA)
    imaptest.deliver(server, msg, rcpt=user)
    (row,) = server.mail_list(user)
    stored = server.mail_show(user, "INBOX", row.uid)
    assert stored.endswith(msg), "the stored message is not what was sent"
    c = imaptest.RawIMAP(server)
    c.login(user)
    c.select(examine=True)
    yield _One(server, user), c, stored, row
    c.close()


def fetch1(c, items, seq="1"):
    """FETCH of one message; returns (its attributes merged, the result)."""
    r = c.ok("FETCH %s %s" % (seq, items))
    f = r.fetches()
    assert f, r
    merged = {}
    for n, attrs in f:
        assert n == int(seq)
        merged.update(attrs)
    return merged, r


# ---- the simple items ----

def test_uid_flags_internaldate_size(one):
    mb, c, stored, row = one
    a, r = fetch1(c, "(UID FLAGS INTERNALDATE RFC822.SIZE)")
    assert len(r.fetches()) == 1
    assert list(a) == ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE"]
    assert int(a["UID"]) == row.uid
    assert a["FLAGS"] == []
    assert int(a["RFC822.SIZE"]) == len(stored) == row.size
    m = DATE_RE.match(a["INTERNALDATE"].decode())
    assert m, a["INTERNALDATE"]
    # The same instant as `mail list` (UTC there).
    d, mon, y, hh, mm, ss, zone = m.groups()
    assert zone == "+0000"
    assert "%s-%02d-%02dT%s:%s:%sZ" % (y, MONTHS.index(mon) + 1, int(d), hh, mm, ss) == row.date


def test_single_item_without_parentheses(one):
    mb, c, stored, row = one
    a, _ = fetch1(c, "RFC822.SIZE")
    assert a == {"RFC822.SIZE": str(len(stored))}
    a, _ = fetch1(c, "UID")
    assert a == {"UID": str(row.uid)}


def test_fast(one):
    mb, c, stored, row = one
    a, _ = fetch1(c, "FAST")
    assert sorted(a) == ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]
    assert int(a["RFC822.SIZE"]) == len(stored)


def test_uid_fetch_always_includes_uid(one):
    mb, c, stored, row = one
    r = c.ok("UID FETCH %d FLAGS" % row.uid)
    (f,) = r.fetches()
    assert f[0] == 1 and f[1]["UID"] == str(row.uid) and f[1]["FLAGS"] == []


# ---- body sections, byte for byte ----

def test_body_peek_whole_message(one):
    mb, c, stored, row = one
    a, r = fetch1(c, "BODY.PEEK[]")
    assert list(a) == ["BODY[]"]
    assert a["BODY[]"] == stored
    assert len(r.fetches()) == 1          # no \Seen change


def test_rfc822_size_is_length_of_body(one):
    mb, c, stored, row = one
    a, _ = fetch1(c, "(RFC822.SIZE BODY.PEEK[])")
    assert int(a["RFC822.SIZE"]) == len(a["BODY[]"])


def test_body_header_and_text(one):
    mb, c, stored, row = one
    header, text = split_message(stored)
    a, _ = fetch1(c, "(BODY.PEEK[HEADER] BODY.PEEK[TEXT])")
    assert a["BODY[HEADER]"] == header
    assert a["BODY[TEXT]"] == text
    assert text == BODY
    assert a["BODY[HEADER]"] + a["BODY[TEXT]"] == stored


def test_header_fields(one):
    mb, c, stored, row = one
    header, _ = split_message(stored)
    fields = header_fields(header)
    want = b"".join(d for n, d in fields if n.lower() in ("subject", "x-folded")) + b"\r\n"
    a, _ = fetch1(c, "BODY.PEEK[HEADER.FIELDS (SUBJECT X-FOLDED)]")
    assert a == {"BODY[HEADER.FIELDS (SUBJECT X-FOLDED)]": want}
    # The folded field comes whole, folds and all.
    assert b"X-Folded: first part\r\n\tsecond part\r\n  third part\r\n" in want
    # Names match case-insensitively; a missing field gives just the CRLF.
    a, _ = fetch1(c, "BODY.PEEK[HEADER.FIELDS (cc X-NOT-THERE)]")
    assert list(a.values()) == [b"Cc: bob@example.net\r\n\r\n"]
    a, _ = fetch1(c, "BODY.PEEK[HEADER.FIELDS (X-NOT-THERE)]")
    assert list(a.values()) == [b"\r\n"]
    # "subject" does not match "subject-like" (whole names only).
    a, _ = fetch1(c, "BODY.PEEK[HEADER.FIELDS (SUBJECT-LIKE)]")
    assert list(a.values()) == [b"subject-like: lower case name\r\n\r\n"]
    # An empty field.
    a, _ = fetch1(c, "BODY.PEEK[HEADER.FIELDS (X-EMPTY)]")
    assert list(a.values()) == [b"X-Empty:\r\n\r\n"]


def test_header_fields_not(one):
    mb, c, stored, row = one
    header, _ = split_message(stored)
    fields = header_fields(header)
    drop = ("received", "subject", "x-folded", "return-path")
    want = b"".join(d for n, d in fields if n.lower() not in drop) + b"\r\n"
    a, _ = fetch1(c, "BODY.PEEK[HEADER.FIELDS.NOT (RECEIVED SUBJECT X-FOLDED RETURN-PATH)]")
    assert list(a) == ["BODY[HEADER.FIELDS.NOT (RECEIVED SUBJECT X-FOLDED RETURN-PATH)]"]
    assert list(a.values())[0] == want
    assert b"Delivered-To:" in want and b"Received:" not in want


def test_rfc822_items(one):
    mb, c, stored, row = one
    header, text = split_message(stored)
    a, _ = fetch1(c, "RFC822.HEADER")
    assert a == {"RFC822.HEADER": header}
    a, _ = fetch1(c, "RFC822.TEXT")
    assert a["RFC822.TEXT"] == text
    a, _ = fetch1(c, "RFC822")
    assert a["RFC822"] == stored


@pytest.mark.parametrize("item,name,part", [
    ("BODY.PEEK[]<0.10>", "BODY[]<0>", lambda s, h, t: s[:10]),
    ("BODY.PEEK[]<7.20>", "BODY[]<7>", lambda s, h, t: s[7:27]),
    ("BODY.PEEK[TEXT]<5.7>", "BODY[TEXT]<5>", lambda s, h, t: t[5:12]),
    ("BODY.PEEK[HEADER]<0.1>", "BODY[HEADER]<0>", lambda s, h, t: h[:1]),
    # count past the end: what there is
    ("BODY.PEEK[TEXT]<10.100000>", "BODY[TEXT]<10>", lambda s, h, t: t[10:]),
    # origin past the end: the empty string
    ("BODY.PEEK[]<100000.10>", "BODY[]<100000>", lambda s, h, t: b""),
    ("BODY.PEEK[HEADER.FIELDS (CC)]<2.5>", "BODY[HEADER.FIELDS (CC)]<2>",
     lambda s, h, t: b"Cc: bob@example.net\r\n\r\n"[2:7]),
])
def test_partial(one, item, name, part):
    mb, c, stored, row = one
    header, text = split_message(stored)
    a, _ = fetch1(c, item)
    assert list(a) == [name]
    assert a[name] == part(stored, header, text)


def test_several_sections_in_one_fetch(one):
    mb, c, stored, row = one
    header, text = split_message(stored)
    a, r = fetch1(c, "(UID BODY.PEEK[HEADER] RFC822.SIZE BODY.PEEK[TEXT] BODY.PEEK[]<0.4>)")
    assert len(r.fetches()) == 1
    assert a["BODY[HEADER]"] == header and a["BODY[TEXT]"] == text
    assert a["BODY[]<0>"] == stored[:4]
    assert int(a["RFC822.SIZE"]) == len(stored)


def test_literal_framing_is_exact(one):
    """The raw response: "{n}" CRLF and exactly n bytes, then the rest of
    the line (no extra CRLF inside or after the literal)."""
    mb, c, stored, row = one
    c.send(b"x1 FETCH 1 (BODY.PEEK[TEXT] RFC822.SIZE)\r\n")
    line = c.line()
    m = re.match(rb"^\* 1 FETCH \((RFC822\.SIZE \d+ )?BODY\[TEXT\] \{(\d+)\}\r\n$", line)
    assert m, line
    assert int(m.group(2)) == len(BODY)
    assert c.read_exact(len(BODY)) == BODY
    size = b"RFC822.SIZE %d" % len(stored)
    if m.group(1):
        assert m.group(1) == size + b" "
        assert c.line() == b")\r\n"
    else:
        assert c.line() == b" " + size + b")\r\n"
    assert c.line().startswith(b"x1 OK")


def test_imaplib_fetch_rfc822(one):
    mb, c, stored, row = one
    m = imaplib.IMAP4("127.0.0.1", mb.server.listener_port("imap"))
    try:
        m.login(mb.user, imaptest.PASSWORD)
        m.select("INBOX", readonly=True)
        typ, data = m.fetch("1", "(RFC822)")
        assert typ == "OK"
        assert data[0][1] == stored
        typ, data = m.uid("FETCH", str(row.uid), "(BODY.PEEK[HEADER.FIELDS (CC)])")
        assert data[0][1] == b"Cc: bob@example.net\r\n\r\n"
    finally:
        m.logout()


# ---- the implicit \Seen ----

def flags_of(c, seq):
    """The flags of a message as the server reports them now."""
    a, _ = fetch1(c, "FLAGS", seq=str(seq))
    return a["FLAGS"]


def seen_responses(r, seq):
    """FETCH responses of r for seq that carry FLAGS with \\Seen."""
    return [a for n, a in r.fetches() if n == seq and "\\Seen" in a.get("FLAGS", [])]


PEEK_ITEMS = ["BODY.PEEK[]", "BODY.PEEK[HEADER]", "BODY.PEEK[TEXT]", "RFC822.HEADER",
              "RFC822.SIZE", "BODY.PEEK[]<0.5>", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]",
              "BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT)]", "FAST", "UID", "FLAGS"]
SEEN_ITEMS = ["BODY[]", "BODY[HEADER]", "BODY[TEXT]", "RFC822", "RFC822.TEXT",
              "BODY[]<0.5>", "BODY[HEADER.FIELDS (SUBJECT)]",
              "BODY[HEADER.FIELDS.NOT (SUBJECT)]", "(BODY.PEEK[] BODY[TEXT])"]


def test_peek_items_do_not_set_seen(mailbox):
    mailbox.fill(1)
    c = mailbox.session()
    for item in PEEK_ITEMS:
        r = c.ok("FETCH 1 %s" % item)
        assert not seen_responses(r, 1), (item, r)
        assert flags_of(c, 1) == [], item
    # Nor for another session.
    c2 = mailbox.session()
    assert flags_of(c2, 1) == []


def test_body_items_set_seen(mailbox):
    r"""Item i is fetched from message i: only that one becomes \Seen, and
    the change is announced before the tagged OK."""
    n = len(SEEN_ITEMS)
    mailbox.fill(n + 1)
    c = mailbox.session()
    for i, item in enumerate(SEEN_ITEMS, 1):
        r = c.ok("FETCH %d %s" % (i, item))
        assert seen_responses(r, i), (item, r)
        assert [m for m, _ in r.fetches() if m != i] == [], (item, r)
        assert flags_of(c, i) == ["\\Seen"], item
    assert flags_of(c, n + 1) == []
    c2 = mailbox.session()
    r = c2.ok("FETCH 1:* FLAGS")
    assert [a["FLAGS"] for _, a in r.fetches()] == [["\\Seen"]] * n + [[]]


def test_seen_with_flags_requested(mailbox):
    """FETCH (FLAGS BODY[]): the last FLAGS reported include \\Seen."""
    mailbox.fill(1)
    c = mailbox.session()
    r = c.ok("FETCH 1 (FLAGS BODY[])")
    last = [a["FLAGS"] for n, a in r.fetches() if "FLAGS" in a][-1]
    assert "\\Seen" in last, r


def test_seen_of_a_range(mailbox):
    mailbox.fill(3)
    c = mailbox.session()
    c.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
    r = c.ok("FETCH 1:3 BODY[TEXT]")
    for n in (1, 2, 3):
        assert seen_responses(r, n), (n, r)
    assert sorted(flags_of(c, 2)) == ["\\Flagged", "\\Seen"]


def test_examine_never_sets_seen(mailbox):
    mailbox.fill(1)
    c = mailbox.session(examine=True)
    r = c.ok("FETCH 1 (BODY[] RFC822 RFC822.TEXT BODY[TEXT])")
    assert not seen_responses(r, 1), r
    assert flags_of(c, 1) == []
    c2 = mailbox.session()
    assert flags_of(c2, 1) == []


# ---- sequence sets ----

@pytest.fixture(scope="module")
def five(server):
    """Five messages, INBOX selected in one session shared by the tests
    that change nothing."""
    user = imaptest.new_user(server, "five")
    imaptest.deliver_many(server, [yubintest.make_msg("five-%d" % i, to=user)
                                   for i in range(5)], rcpt=user)
    c = imaptest.RawIMAP(server)
    c.login(user)
    c.select()
    yield user, c, [r.uid for r in server.mail_list(user)]
    c.close()


@pytest.fixture
def five_fresh(five, server, imap):
    """The five messages in a session of its own (for tests that make
    errors: max_errors is 5)."""
    user, _, uids = five
    c = imap()
    c.login(user)
    c.select()
    return user, c, uids


def seqs(c, set_, uid=False):
    r = c.ok("%sFETCH %s (UID)" % ("UID " if uid else "", set_))
    out = [n for n, _ in r.fetches()]
    assert len(out) == len(set(out)), "a message twice: %r" % r
    for n, a in r.fetches():
        assert "UID" in a
    return sorted(out)


@pytest.mark.parametrize("set_,want", [
    ("1", [1]), ("1:*", [1, 2, 3, 4, 5]), ("2:4", [2, 3, 4]), ("4:2", [2, 3, 4]),
    ("*", [5]), ("*:4", [4, 5]), ("5:*", [5]), ("1,3,5", [1, 3, 5]),
    ("1:2,4:*", [1, 2, 4, 5]), ("3,1", [1, 3]), ("1:3,2:4", [1, 2, 3, 4]),
    ("*:1", [1, 2, 3, 4, 5]),
])
def test_sequence_sets(five, set_, want):
    mb, c, uids = five
    assert seqs(c, set_) == want


def test_fetch_uids_match_sequence(five):
    mb, c, uids = five
    r = c.ok("FETCH 1:* (UID)")
    assert [(n, int(a["UID"])) for n, a in r.fetches()] == list(enumerate(uids, 1))


@pytest.mark.parametrize("set_", ["6", "1:6", "6:*", "0", "0:3", "1,7", "a", "1:", ":2",
                                  "1,,2", "-1", "1.5", "4294967296"])
def test_bad_sequence_sets(five_fresh, set_):
    mb, c, uids = five_fresh
    r = c.cmd("FETCH %s (UID)" % set_)
    assert r.status == "BAD", r
    assert r.untagged == [], r


def test_uid_sets(five):
    mb, c, uids = five

    def want(*idx):
        return [i + 1 for i in idx]
    assert seqs(c, "1:*", uid=True) == [1, 2, 3, 4, 5]
    assert seqs(c, "%d" % uids[2], uid=True) == want(2)
    assert seqs(c, "%d:%d" % (uids[3], uids[1]), uid=True) == want(1, 2, 3)
    assert seqs(c, "*", uid=True) == want(4)
    assert seqs(c, "%d,%d" % (uids[0], uids[4]), uid=True) == want(0, 4)
    # Past the last UID: nothing, and no error.
    assert seqs(c, "%d" % (uids[-1] + 1), uid=True) == []
    assert seqs(c, "%d:%d" % (uids[-1] + 1, uids[-1] + 100), uid=True) == []
    # n:* with n past the last UID still means the last message (RFC 9051 6.4.9).
    assert seqs(c, "%d:*" % (uids[-1] + 100), uid=True) == want(4)
    r = c.ok("UID FETCH %d:* FLAGS" % (uids[-1] + 100))
    assert [int(a["UID"]) for n, a in r.fetches()] == [uids[-1]]


def test_uid_sets_with_gaps(mailbox):
    mailbox.fill(5)
    c = mailbox.session()
    uids = mailbox.uids()
    c.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    r = c.ok("UID FETCH %d:%d (FLAGS)" % (uids[0], uids[4]))
    assert [(n, int(a["UID"])) for n, a in r.fetches()] == \
        [(1, uids[0]), (2, uids[2]), (3, uids[4])]
    r = c.ok("UID FETCH %d FLAGS" % uids[1])
    assert r.fetches() == []


@pytest.mark.parametrize("set_", ["0", "a", "1:", "1,,2"])
def test_bad_uid_sets(five_fresh, set_):
    mb, c, uids = five_fresh
    r = c.cmd("UID FETCH %s (UID)" % set_)
    assert r.status == "BAD", r


def test_empty_mailbox(mailbox):
    c = mailbox.session()
    assert c.cmd("FETCH 1:* FLAGS").status == "BAD"
    assert c.cmd("FETCH 1 FLAGS").status == "BAD"
    r = c.ok("UID FETCH 1:* FLAGS")
    assert r.fetches() == []


def test_star_in_empty_mailbox_is_bad(mailbox):
    """RFC 9051 9 (seq-number): a message number beyond EXISTS is an
    error, "This includes "*" if the selected mailbox is empty"."""
    c = mailbox.session()
    r = c.cmd("FETCH * FLAGS")
    assert r.status == "BAD", r


# ---- bad FETCH commands ----

@pytest.mark.parametrize("args", [
    "1 (BOGUS)", "1 (UID BOGUS)", "1 BOGUS", "1", "1 ()", "1 (BODY[BOGUS])",
    "1 BODY[", "1 BODY.PEEK[]<10>", "1 BODY.PEEK[]<1.0>", "1 BODY.PEEK[]<a.b>",
    "1 BODY.PEEK[HEADER.FIELDS ()]", "1 BODY.PEEK[HEADER.FIELDS]", "1 BODY.FOO[]",
    "1 BODY[]X", "1 (FLAGS) extra",
])
def test_bad_fetch(five_fresh, args):
    mb, c, uids = five_fresh
    r = c.cmd("FETCH " + args)
    assert r.status == "BAD", r
    assert r.untagged == [], r
    # Nothing was marked \Seen by the failed command.
    assert flags_of(c, 1) == []


# ---- large responses ----

def test_large_fetch_and_pipelined_command(mailbox):
    """Responses larger than the server's output buffer come whole, in
    order, and a command pipelined behind the FETCH waits its turn."""
    big = (b"z" * 998 + b"\r\n") * 300          # ~300 KB each
    mailbox.fill(4, body=big)
    c = mailbox.session()
    stored = [mailbox.stored(u) for u in mailbox.uids()]
    c.send(b"a FETCH 1:* (RFC822.SIZE BODY.PEEK[])\r\nb NOOP\r\n")
    r = c.read_until_tagged("a")
    assert r.status == "OK"
    got = r.fetches()
    assert [n for n, _ in got] == [1, 2, 3, 4]
    for (n, a), s in zip(got, stored):
        assert a["BODY[]"] == s
        assert int(a["RFC822.SIZE"]) == len(s)
    assert c.read_until_tagged("b").status == "OK"
