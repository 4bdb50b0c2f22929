"""LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), special-use selection
(RFC 6154), STATUS SIZE/DELETED/APPENDLIMIT (RFC 9051 6.3.11, RFC 7889),
ENABLE IMAP4rev2 / UTF8=ACCEPT names (RFC 9051 appendix A, RFC 6855) and
\\Recent for IMAP4rev1 sessions (RFC 3501 2.3.2)."""

import imaplib
import re

import pytest

import imaptest

@pytest.fixture
def tree(mailbox):
    """Folders: INBOX Drafts Junk Sent Trash, Work, Work/A, Work/B; only
    Work/B of the Work tree is subscribed, and Junk is not."""
    c = mailbox.session(select=None)
    for name in ("Work/A", "Work/B"):
        c.ok("CREATE %s" % name)
    for name in ("Work", "Work/A", "Junk"):
        c.ok("UNSUBSCRIBE %s" % name)
    return c


def lines(r):
    return r.lines()


def test_capabilities(imap):
    c = imap()
    c.login()
    caps = set(imaptest.parse_caps(c.ok("CAPABILITY").lines("CAPABILITY")[0]))
    assert {"IMAP4REV1", "IMAP4REV2", "LIST-EXTENDED", "LIST-STATUS", "MULTIAPPEND",
            "UTF8=ACCEPT", "STATUS=SIZE"} <= caps, caps
    limits = [x for x in caps if x.startswith("APPENDLIMIT=")]
    assert len(limits) == 1 and int(limits[0].split("=")[1]) > 0, caps


def test_list_subscribed_selection(tree):
    r = tree.ok('LIST (SUBSCRIBED) "" "*"')
    assert lines(r) == [
        'LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"',
        'LIST (\\HasNoChildren \\Drafts \\Subscribed) "/" "Drafts"',
        'LIST (\\HasNoChildren \\Sent \\Subscribed) "/" "Sent"',
        'LIST (\\HasNoChildren \\Trash \\Subscribed) "/" "Trash"',
        'LIST (\\HasNoChildren \\Subscribed) "/" "Work/B"',
    ], r


def test_list_return_subscribed(tree):
    r = tree.ok('LIST "" "Work*" RETURN (SUBSCRIBED CHILDREN)')
    assert lines(r) == [
        'LIST (\\HasChildren) "/" "Work"',
        'LIST (\\HasNoChildren) "/" "Work/A"',
        'LIST (\\HasNoChildren \\Subscribed) "/" "Work/B"',
    ], r


def test_recursivematch_childinfo(tree):
    r = tree.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    assert lines(r) == [
        'LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"',
        'LIST (\\HasNoChildren \\Drafts \\Subscribed) "/" "Drafts"',
        'LIST (\\HasNoChildren \\Sent \\Subscribed) "/" "Sent"',
        'LIST (\\HasNoChildren \\Trash \\Subscribed) "/" "Trash"',
        'LIST (\\HasChildren) "/" "Work" ("CHILDINFO" ("SUBSCRIBED"))',
    ], r
    # The child matches the pattern too: no CHILDINFO is needed.
    r = tree.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "Work*"')
    assert lines(r) == ['LIST (\\HasNoChildren \\Subscribed) "/" "Work/B"'], r


def test_special_use_selection(tree):
    r = tree.ok('LIST (SPECIAL-USE) "" "*"')
    assert lines(r) == [
        'LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
        'LIST (\\HasNoChildren \\Junk) "/" "Junk"',
        'LIST (\\HasNoChildren \\Sent) "/" "Sent"',
        'LIST (\\HasNoChildren \\Trash) "/" "Trash"',
    ], r
    r = tree.ok('LIST (REMOTE) "" "Junk" RETURN (SPECIAL-USE)')
    assert lines(r) == ['LIST (\\HasNoChildren \\Junk) "/" "Junk"'], r


def test_multiple_patterns(tree):
    r = tree.ok('LIST "" ("INBOX" "Work/%" "Sent" "Work/%")')
    assert lines(r) == [
        'LIST (\\HasNoChildren) "/" "INBOX"',
        'LIST (\\HasNoChildren \\Sent) "/" "Sent"',
        'LIST (\\HasNoChildren) "/" "Work/A"',
        'LIST (\\HasNoChildren) "/" "Work/B"',
    ], r
    r = tree.ok('LIST "Work/" ("A" "B")')
    assert [l.rsplit(" ", 1)[1] for l in lines(r)] == ['"Work/A"', '"Work/B"'], r


def test_list_status(mailbox, tree):
    mailbox.fill(2)
    tree.ok('LIST "" INBOX')
    r = tree.ok('LIST "" ("INBOX" "Work") RETURN (STATUS (MESSAGES UNSEEN SIZE))')
    got = lines(r)
    assert got[0] == 'LIST (\\HasNoChildren) "/" "INBOX"', r
    m = re.match(r'^STATUS "INBOX" \(MESSAGES 2 UNSEEN 2 SIZE (\d+)\)$', got[1])
    assert m and int(m.group(1)) == sum(r.size for r in mailbox.rows()), r
    assert got[2:] == ['LIST (\\HasChildren) "/" "Work"',
                       'STATUS "Work" (MESSAGES 0 UNSEEN 0 SIZE 0)'], r
    # A mailbox listed only for CHILDINFO has no STATUS (RFC 5819 3).
    r = tree.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "Work" RETURN (STATUS (MESSAGES))')
    assert lines(r) == ['LIST (\\HasChildren) "/" "Work" ("CHILDINFO" ("SUBSCRIBED"))'], r


@pytest.mark.parametrize("args", [
    '(BOGUS) "" "*"',
    '(RECURSIVEMATCH) "" "*"',
    '(REMOTE RECURSIVEMATCH) "" "*"',
    '"" "*" RETURN (BOGUS)',
    '"" "*" RETURN (STATUS)',
    '"" "*" RETURN (STATUS ())',
    '"" "*" RETURN (STATUS (BOGUS))',
    '"" "*" RETURN',
    '"" "*" RETURN CHILDREN',
    '"" "*" EXTRA (CHILDREN)',
    '"" ()',
    '"" ("a" ("b"))',
    '("SUBSCRIBED") "" "*"',
    '(SUBSCRIBED) ""',
])
def test_bad_extended_list(tree, args):
    r = tree.cmd("LIST " + args)
    assert r.status == "BAD", r
    assert r.untagged == [], r


def test_lsub_takes_no_extensions(tree):
    assert tree.cmd('LSUB (SUBSCRIBED) "" "*"').status == "BAD"
    assert tree.cmd('LSUB "" ("a" "b")').status == "BAD"


def test_list_extended_with_imaplib(mailbox, tree):
    m = imaplib.IMAP4("127.0.0.1", mailbox.server.listener_port("imap"))
    try:
        m.login(mailbox.user, imaptest.PASSWORD)
        typ, data = m._simple_command("LIST", "(SUBSCRIBED)", '""', '"Work/*"', "RETURN",
                                      "(STATUS (MESSAGES))")
        assert typ == "OK"
        assert m.untagged_responses["LIST"] == [b'(\\HasNoChildren \\Subscribed) "/" "Work/B"']
        assert m.untagged_responses["STATUS"] == [b'"Work/B" (MESSAGES 0)']
    finally:
        m.logout()


# ---- STATUS ----

def test_status_size_deleted_appendlimit(mailbox):
    mailbox.fill(2)
    c = mailbox.session(select=None)
    caps = set(imaptest.parse_caps(c.ok("CAPABILITY").lines("CAPABILITY")[0]))
    limit = [x.split("=")[1] for x in caps if x.startswith("APPENDLIMIT=")][0]
    size = sum(r.size for r in mailbox.rows())
    r = c.ok("STATUS INBOX (SIZE DELETED APPENDLIMIT MESSAGES SIZE)")
    assert r.lines() == ['STATUS "INBOX" (SIZE %d DELETED 0 APPENDLIMIT %s MESSAGES 2)'
                         % (size, limit)], r


# ---- \Recent (IMAP4rev1) ----

def test_recent_once_per_mailbox(mailbox):
    mailbox.fill(2)
    c = mailbox.session(select=None)
    assert c.ok("STATUS INBOX (RECENT)").lines() == ['STATUS "INBOX" (RECENT 0)']
    a = mailbox.session()
    mailbox.fill(2)
    assert c.ok("STATUS INBOX (RECENT)").lines() == ['STATUS "INBOX" (RECENT 2)']
    r = a.ok("NOOP")                                   # a is told first: they are a's
    assert r.lines() == ["4 EXISTS", "2 RECENT"], r
    assert a.ok("SEARCH RECENT").lines() == ["SEARCH 3 4"]
    assert a.ok("SEARCH NEW").lines() == ["SEARCH 3 4"]
    assert a.ok("SEARCH OLD").lines() == ["SEARCH 1 2"]
    a.ok("STORE 3 +FLAGS (\\Seen)")
    assert a.ok("SEARCH NEW").lines() == ["SEARCH 4"]
    assert a.ok("STATUS INBOX (RECENT)").lines() == ['STATUS "INBOX" (RECENT 2)']
    # Nobody else gets them.
    assert c.ok("STATUS INBOX (RECENT)").lines() == ['STATUS "INBOX" (RECENT 0)']
    b = mailbox.session()
    r = b.select()
    assert "0 RECENT" in r.lines(), r
    assert b.ok("SEARCH RECENT").lines() == ["SEARCH"]


def test_recent_read_only_sessions_do_not_take(mailbox):
    mailbox.fill(1)
    a = mailbox.session()
    mailbox.fill(1)
    ro = mailbox.session(examine=True)
    r = ro.ok("SEARCH RECENT")
    assert r.lines() == ["SEARCH 2"], r
    r = a.ok("NOOP")
    assert r.lines() == ["2 EXISTS", "1 RECENT"], r
    r = mailbox.session(select=None).select()
    assert "0 RECENT" in r.lines(), r


def test_recent_in_store_echo(mailbox):
    mailbox.fill(1)
    a = mailbox.session()
    mailbox.fill(1)
    a.ok("NOOP")
    r = a.ok("STORE 2 +FLAGS (\\Flagged)")
    assert r.lines() == ["2 FETCH (UID %d FLAGS (\\Flagged \\Recent))" % mailbox.uids()[1]], r


# ---- IMAP4rev2 and UTF-8 ----

def test_utf8_accept_names(mailbox):
    c = mailbox.session(select=None)
    c.ok("CREATE &ZeVnLIqe-")                           # 日本語 in modified UTF-7
    r = c.ok('LIST "" "&ZeVnLIqe-"')
    assert r.lines() == ['LIST (\\HasNoChildren) "/" "&ZeVnLIqe-"'], r
    assert c.ok("ENABLE UTF8=ACCEPT").lines() == ["ENABLED UTF8=ACCEPT"]
    r = c.ok('LIST "" "日本*"'.encode())
    assert [u.raw for u in r.untagged] == ['* LIST (\\HasNoChildren) "/" "日本語"'.encode()], r
    r = c.ok('STATUS "日本語" (MESSAGES)'.encode())
    assert [u.raw for u in r.untagged] == ['* STATUS "日本語" (MESSAGES 0)'.encode()], r
    r = c.ok('CREATE "A&B"')                            # "&" is itself now
    r = c.ok('LIST "" "A&B"')
    assert r.lines() == ['LIST (\\HasNoChildren) "/" "A&B"'], r
    assert c.cmd(b'CREATE "\xff\xfe"').status == "BAD"
    other = mailbox.session(select=None)               # rev1: modified UTF-7
    assert other.ok('LIST "" "A&-B"').lines() == ['LIST (\\HasNoChildren) "/" "A&-B"']


def test_rev2_session(mailbox):
    mailbox.fill(3)
    c = mailbox.session(select=None)
    assert c.ok("ENABLE IMAP4rev2").lines() == ["ENABLED IMAP4rev2"]
    r = c.select()
    got = r.lines()
    assert "3 EXISTS" in got and not any("RECENT" in x for x in got), r
    assert 'LIST () "/" "INBOX"' in got, r
    assert not any(x.startswith("OK [UNSEEN") for x in got), r
    r = c.cmd("SEARCH 2:3", tag="r1")
    assert r.lines() == ['ESEARCH (TAG "r1") ALL 2:3'], r
    r = c.cmd("UID SEARCH DELETED", tag="r2")
    assert r.lines() == ['ESEARCH (TAG "r2") UID'], r
    mailbox.fill(1)
    r = c.ok("NOOP")
    assert r.lines() == ["4 EXISTS"], r                 # no RECENT
    r = c.ok("STORE 4 +FLAGS (\\Flagged)")
    assert r.lines() == ["4 FETCH (UID %d FLAGS (\\Flagged))" % mailbox.uids()[3]], r
    # UTF-8 names came with it.
    c.ok('CREATE "Ünïcode"'.encode())
    assert c.ok('LIST "" "Ü*"').untagged[0].raw == '* LIST (\\HasNoChildren) "/" "Ünïcode"'.encode()
