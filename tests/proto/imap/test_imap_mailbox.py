"""IMAP mailbox commands (RFC 9051 6.3): LIST and LSUB (RFC 6154
special-use attributes), STATUS, SELECT and EXAMINE."""

import re

import pytest

import imaptest

SPECIAL = {"Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash", "Junk": "\\Junk"}
DEFAULT = ["INBOX", "Drafts", "Junk", "Sent", "Trash"]

LIST_RE = re.compile(r'^(LIST|LSUB) \(([^)]*)\) "/" (?:"((?:[^"\\]|\\.)*)"|(\S+))$')


def listing(r, verb="LIST"):
    """{name: [attributes]} of the LIST/LSUB responses of r."""
    out = {}
    for line in r.lines(verb):
        m = LIST_RE.match(line)
        assert m, "malformed %s response %r" % (verb, line)
        name = m.group(3) if m.group(3) is not None else m.group(4)
        assert name not in out, "%s listed twice" % name
        out[name] = m.group(2).split()
    return out


# ---- LIST / LSUB ----

def test_list_all_with_special_use(mailbox):
    c = mailbox.session(select=None)
    r = c.ok('LIST "" "*"')
    got = listing(r)
    assert sorted(got) == sorted(DEFAULT), got
    for name, attr in SPECIAL.items():
        assert attr in got[name], (name, got[name])
    # No special-use attribute on INBOX, nor a wrong one elsewhere.
    for name, attrs in got.items():
        specials = [a for a in attrs if a in SPECIAL.values()]
        assert specials == ([SPECIAL[name]] if name in SPECIAL else []), (name, attrs)


def test_list_empty_pattern_gives_the_delimiter(mailbox):
    c = mailbox.session(select=None)
    r = c.ok('LIST "" ""')
    assert r.lines("LIST") == ['LIST (\\Noselect) "/" ""'], r


def test_list_percent_stops_at_the_delimiter(mailbox):
    c = mailbox.session(select=None)
    c.ok("CREATE Work/Sub/Deep")
    got = listing(c.ok('LIST "" "%"'))
    assert sorted(got) == sorted(DEFAULT + ["Work"]), got
    got = listing(c.ok('LIST "" "*"'))
    assert sorted(got) == sorted(DEFAULT + ["Work", "Work/Sub", "Work/Sub/Deep"])
    got = listing(c.ok('LIST "" "Work/%"'))
    assert list(got) == ["Work/Sub"], got
    got = listing(c.ok('LIST "" "Work/*"'))
    assert sorted(got) == ["Work/Sub", "Work/Sub/Deep"], got


def test_list_reference_is_prefixed(mailbox):
    c = mailbox.session(select=None)
    c.ok("CREATE Work/Sub")
    got = listing(c.ok('LIST "Work/" "%"'))
    assert list(got) == ["Work/Sub"], got
    got = listing(c.ok('LIST "Work/" "*"'))
    assert list(got) == ["Work/Sub"], got


def test_list_wildcards_inside_names(mailbox):
    c = mailbox.session(select=None)
    got = listing(c.ok('LIST "" "*af*"'))
    assert sorted(got) == ["Drafts"], got
    got = listing(c.ok('LIST "" "*r*"'))
    assert sorted(got) == ["Drafts", "Trash"], got
    got = listing(c.ok('LIST "" "T%h"'))
    assert sorted(got) == ["Trash"], got
    got = listing(c.ok('LIST "" "S%"'))
    assert sorted(got) == ["Sent"], got


def test_list_inbox_is_case_insensitive(mailbox):
    """INBOX in any case is INBOX (RFC 9051 5.1, 6.3.9: INBOX is listed when
    "INBOX" matches; yubin's list_match means to fold case for it)."""
    c = mailbox.session(select=None)
    got = listing(c.ok('LIST "" "inbox"'))
    assert list(got) == ["INBOX"], got
    got = listing(c.ok('LIST "" "InBoX"'))
    assert list(got) == ["INBOX"], got
    # Other names are case-sensitive.
    assert listing(c.ok('LIST "" "sent"')) == {}


def test_list_no_match(mailbox):
    c = mailbox.session(select=None)
    r = c.ok('LIST "" "Nothing*"')
    assert r.untagged == []


def test_list_syntax(mailbox):
    c = mailbox.session(select=None)
    assert c.cmd("LIST").status == "BAD"
    assert c.cmd('LIST ""').status == "BAD"


def test_lsub(mailbox):
    c = mailbox.session(select=None)
    lsub = listing(c.ok('LSUB "" "*"'), "LSUB")
    listed = listing(c.ok('LIST "" "*"'))
    assert set(lsub) <= set(listed)
    assert "INBOX" in lsub, lsub
    c.ok("CREATE Unsubbed")
    c.ok("UNSUBSCRIBE Unsubbed")
    assert "Unsubbed" not in listing(c.ok('LSUB "" "*"'), "LSUB")
    assert "Unsubbed" in listing(c.ok('LIST "" "*"'))
    c.ok("SUBSCRIBE Unsubbed")
    assert list(listing(c.ok('LSUB "" "Unsub%"'), "LSUB")) == ["Unsubbed"]
    assert c.ok('LSUB "" ""').lines("LSUB") == ['LSUB (\\Noselect) "/" ""']


def test_list_works_while_selected(mailbox):
    c = mailbox.session()
    assert sorted(listing(c.ok('LIST "" "*"'))) == sorted(DEFAULT)
    assert c.cmd("NOOP").status == "OK"


# ---- STATUS ----

def status_items(r):
    lines = r.lines("STATUS")
    assert len(lines) == 1, r
    m = re.match(r'^STATUS (?:"([^"]*)"|(\S+)) \((.*)\)$', lines[0])
    assert m, lines[0]
    words = m.group(3).split()
    assert len(words) % 2 == 0
    return (m.group(1) if m.group(1) is not None else m.group(2),
            {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)})


def test_status_all_items(mailbox):
    mailbox.fill(3)
    c = mailbox.session()
    c.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
    c.ok("STORE 2 +FLAGS.SILENT (\\Deleted \\Seen)")
    sel = c.select()
    uidvalidity = int(re.search(r"\[UIDVALIDITY (\d+)\]", " ".join(sel.lines())).group(1))
    rows = mailbox.rows()
    name, st = status_items(c.ok("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE DELETED RECENT)"))
    assert name == "INBOX"
    assert list(st) == ["MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "SIZE",
                        "DELETED", "RECENT"]
    assert st["MESSAGES"] == 3
    assert st["UNSEEN"] == 1
    assert st["DELETED"] == 1
    assert st["RECENT"] == 0
    assert st["UIDVALIDITY"] == uidvalidity
    assert st["UIDNEXT"] == max(r.uid for r in rows) + 1
    assert st["SIZE"] == sum(r.size for r in rows)


def test_status_follows_changes(mailbox):
    c = mailbox.session(select=None)
    _, st = status_items(c.ok("STATUS INBOX (MESSAGES UIDNEXT UNSEEN)"))
    assert st["MESSAGES"] == 0 and st["UNSEEN"] == 0
    next0 = st["UIDNEXT"]
    mailbox.fill(2)
    _, st = status_items(c.ok("STATUS INBOX (MESSAGES UIDNEXT UNSEEN)"))
    assert st == {"MESSAGES": 2, "UIDNEXT": next0 + 2, "UNSEEN": 2}


def test_status_other_mailbox_and_case(mailbox):
    c = mailbox.session(select=None)
    name, st = status_items(c.ok("STATUS Sent (MESSAGES UIDNEXT)"))
    assert name == "Sent" and st["MESSAGES"] == 0 and st["UIDNEXT"] >= 1
    name, st = status_items(c.ok("STATUS inbox (MESSAGES)"))
    assert name == "INBOX"


def test_status_nonexistent(mailbox):
    c = mailbox.session(select=None)
    r = c.cmd("STATUS NoSuchBox (MESSAGES)")
    assert r.status == "NO" and r.text.startswith("NO [NONEXISTENT]"), r
    assert r.untagged == []


@pytest.mark.parametrize("args", ["INBOX", "INBOX ()", "INBOX (BOGUS)", "INBOX MESSAGES",
                                  "(MESSAGES)"])
def test_status_syntax(mailbox, args):
    c = mailbox.session(select=None)
    r = c.cmd("STATUS " + args)
    assert r.status == "BAD", r
    assert r.untagged == []


# ---- SELECT / EXAMINE ----

def select_info(r):
    """The parts of a SELECT/EXAMINE answer."""
    info = {"codes": {}}
    for line in r.lines():
        m = re.match(r"^(\d+) (EXISTS|RECENT)$", line)
        if m:
            assert m.group(2) not in info, "%s twice" % m.group(2)
            info[m.group(2)] = int(m.group(1))
            continue
        m = re.match(r"^FLAGS \((.*)\)$", line)
        if m:
            info["FLAGS"] = m.group(1).split()
            continue
        m = re.match(r"^OK \[([A-Z-]+)(?: ([^\]]*))?\]", line)
        if m:
            info["codes"][m.group(1)] = m.group(2)
            continue
        raise AssertionError("unexpected response to SELECT: %r" % line)
    return info


def test_select(mailbox):
    mailbox.fill(3)
    c = mailbox.session(select=None)
    c.ok("SELECT INBOX")
    c.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
    c.ok("UNSELECT")
    r = c.ok("SELECT INBOX")
    assert r.text.startswith("OK [READ-WRITE]"), r
    info = select_info(r)
    assert info["EXISTS"] == 3
    assert info["RECENT"] == 0
    assert sorted(info["FLAGS"]) == sorted(["\\Answered", "\\Flagged", "\\Deleted",
                                            "\\Seen", "\\Draft"])
    perm = info["codes"]["PERMANENTFLAGS"].strip("()").split()
    assert set(info["FLAGS"]) <= set(perm) and "\\*" in perm
    assert int(info["codes"]["UNSEEN"]) == 2          # message 1 is \Seen
    uids = mailbox.uids()
    assert int(info["codes"]["UIDNEXT"]) == max(uids) + 1
    assert int(info["codes"]["UIDVALIDITY"]) > 0
    # UIDVALIDITY is stable across sessions.
    c2 = mailbox.session(select=None)
    info2 = select_info(c2.ok("EXAMINE INBOX"))
    assert info2["codes"]["UIDVALIDITY"] == info["codes"]["UIDVALIDITY"]


def test_select_all_seen_has_no_unseen_code(mailbox):
    mailbox.fill(2)
    c = mailbox.session()
    c.ok("STORE 1:* +FLAGS.SILENT (\\Seen)")
    info = select_info(c.ok("SELECT INBOX"))
    assert "UNSEEN" not in info["codes"], info


def test_select_empty_mailbox(mailbox):
    c = mailbox.session(select=None)
    info = select_info(c.ok("SELECT Trash"))
    assert info["EXISTS"] == 0 and info["RECENT"] == 0
    assert "UNSEEN" not in info["codes"]
    assert int(info["codes"]["UIDNEXT"]) >= 1


def test_examine_is_read_only(mailbox):
    mailbox.fill(1)
    c = mailbox.session(select=None)
    r = c.ok("EXAMINE INBOX")
    assert r.text.startswith("OK [READ-ONLY]"), r
    info = select_info(r)
    assert info["EXISTS"] == 1


def test_select_another_mailbox_sends_closed_first(mailbox):
    mailbox.fill(2)
    c = mailbox.session()
    r = c.ok("EXAMINE Sent")
    assert r.lines()[0].startswith("OK [CLOSED]"), r
    assert [l for l in r.lines() if "[CLOSED]" in l] == [r.lines()[0]]
    info = select_info(type(r)(r.untagged[1:], r.tagged, r.tag))
    assert info["EXISTS"] == 0
    # Now Sent is selected (read-only): FETCH sees no message.
    assert c.cmd("FETCH 1 FLAGS").status == "BAD"
    r = c.ok("SELECT INBOX")
    assert r.lines()[0].startswith("OK [CLOSED]")
    assert r.text.startswith("OK [READ-WRITE]")
    assert select_info(type(r)(r.untagged[1:], r.tagged, r.tag))["EXISTS"] == 2


def test_first_select_has_no_closed(mailbox):
    c = mailbox.session(select=None)
    r = c.ok("SELECT INBOX")
    assert not [l for l in r.lines() if "[CLOSED]" in l]
    c.ok("UNSELECT")
    r = c.ok("SELECT INBOX")
    assert not [l for l in r.lines() if "[CLOSED]" in l]


def test_select_nonexistent(mailbox):
    c = mailbox.session(select=None)
    r = c.cmd("SELECT NoSuchBox")
    assert r.text.startswith("NO [NONEXISTENT]"), r
    assert c.cmd("FETCH 1 FLAGS").status == "BAD"


def test_failed_select_leaves_nothing_selected(mailbox):
    """RFC 9051 6.3.2: a failed SELECT closes the mailbox that was selected."""
    mailbox.fill(1)
    c = mailbox.session()
    r = c.cmd("SELECT NoSuchBox")
    assert r.status == "NO"
    assert [l for l in r.lines() if l.startswith("OK [CLOSED]")], r
    r = c.cmd("FETCH 1 FLAGS")
    assert r.status == "BAD", r


def test_select_inbox_any_case(mailbox):
    mailbox.fill(1)
    c = mailbox.session(select=None)
    assert select_info(c.ok("SELECT inbox"))["EXISTS"] == 1
    assert select_info(c.ok('SELECT "InBox"'))["EXISTS"] == 1


def test_select_syntax(mailbox):
    c = mailbox.session(select=None)
    assert c.cmd("SELECT").status == "BAD"
    assert c.cmd("SELECT INBOX Sent").status == "BAD"
    assert c.cmd("SELECT").untagged == []
