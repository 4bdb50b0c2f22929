"""IMAP SEARCH and UID SEARCH (RFC 9051 6.4.4) over a fixed set of
messages with known flags, sizes, dates and headers."""

import imaplib
import smtplib

import pytest

import yubintest

PASSWORD = "search-secret"

MESSAGES = [
    # (subject, from, date header, body)
    ("Lunch plans", "Shiro <shiroyagi@example.org>", "Mon, 2 Mar 2026 10:00:00 +0900", "Sushi at noon?"),
    ("Quarterly report", "boss@corp.example", "Tue, 3 Mar 2026 23:30:00 -0500", "Numbers are UP this quarter."),
    ("Re: Lunch plans", "kuro@example.net", "Wed, 4 Mar 2026 12:00:00 +0000", "Yes, sushi please."),
    ("No date here", "nodate@example.org", None, "x" * 5000),
]


def _provision(inst):
    inst.add_domain("example.com")
    inst.add_user("se@example.com", PASSWORD)


@pytest.fixture(scope="module")
def box(module_yubin_factory):
    port = yubintest.free_port()
    inst = module_yubin_factory({"imap": {"listen": "127.0.0.1:%d" % port},
                                 "limits": {"auth_fail_delay": "0"}},
                                provision=_provision)
    s = smtplib.SMTP("127.0.0.1", inst.port)
    for subj, frm, date, body in MESSAGES:
        hdr = "Subject: %s\r\nFrom: %s\r\nTo: se@example.com\r\n" % (subj, frm)
        if date:
            hdr += "Date: %s\r\n" % date
        s.sendmail("a@example.org", ["se@example.com"], (hdr + "\r\n" + body + "\r\n").encode())
    s.quit()
    m = imaplib.IMAP4("127.0.0.1", port)
    m.login("se@example.com", PASSWORD)
    m.select("INBOX")
    # Flags: 1 seen, 2 flagged+$Work, 3 deleted.
    m.store("1", "+FLAGS", "(\\Seen)")
    m.store("2", "+FLAGS", "(\\Flagged $Work)")
    m.store("3", "+FLAGS", "(\\Deleted)")
    yield m
    m.logout()


def search(m, *keys, uid=False):
    if uid:
        typ, data = m.uid("SEARCH", *keys)
    else:
        typ, data = m.search(None, *keys)
    assert typ == "OK"
    return [int(x) for x in data[0].split()]


@pytest.mark.parametrize("keys,want", [
    (("ALL",), [1, 2, 3, 4]),
    (("SEEN",), [1]),
    (("UNSEEN",), [2, 3, 4]),
    (("FLAGGED",), [2]),
    (("DELETED",), [3]),
    (("UNDELETED",), [1, 2, 4]),
    (("KEYWORD", "$work"), [2]),
    (("UNKEYWORD", "$Work"), [1, 3, 4]),
    (("SUBJECT", "lunch"), [1, 3]),
    (("FROM", "BOSS"), [2]),
    (("TO", "se@example.com"), [1, 2, 3, 4]),
    (("HEADER", "Date", '""'), [1, 2, 3]),
    (("BODY", "SUSHI"), [1, 3]),
    (("TEXT", "quarterly"), [2]),
    (("LARGER", "4000"), [4]),
    (("SMALLER", "4000"), [1, 2, 3]),
    (("SENTON", "3-Mar-2026"), [2]),
    (("SENTBEFORE", "4-Mar-2026"), [1, 2]),
    (("SENTSINCE", "3-Mar-2026", "NOT", "SENTON", "3-Mar-2026", "HEADER", "Date", '""'), [3]),
    (("OR", "SEEN", "FLAGGED"), [1, 2]),
    (("NOT", "OR", "SEEN", "FLAGGED"), [3, 4]),
    (("(SUBJECT lunch UNSEEN)",), [3]),
    (("2:3",), [2, 3]),
    (("*",), [4]),
    (("NEW",), []),
])
def test_search_keys(box, keys, want):
    assert search(box, *keys) == want


def test_uid_search_returns_uids(box):
    typ, data = box.fetch("1:*", "(UID)")
    uids = [int(l.split()[2].rstrip(b")")) for l in data]
    assert search(box, "SUBJECT", "lunch", uid=True) == [uids[0], uids[2]]
    assert search(box, "UID", "%d" % uids[1], uid=True) == [uids[1]]


def test_search_charset(box):
    typ, data = box.search("UTF-8", "SUBJECT", "report")
    assert typ == "OK" and data[0].split() == [b"2"]
    typ, data = box.search("KOI8-R", "ALL")
    assert typ == "NO" and b"BADCHARSET" in data[0]


@pytest.mark.parametrize("keys", [("BOGUS",), ("SINCE", "32-Foo-2026"), ("LARGER", "x"), ("OR", "SEEN"), ()])
def test_search_bad_syntax(box, keys):
    with pytest.raises(imaplib.IMAP4.error):
        box.search(None, *keys) if keys else box._simple_command("SEARCH")
