"""LIST-STATUS (RFC 5819) over an account with 1,000 folders: every STATUS
answer is right (the store reads the counts of all mailboxes with one
query, store_account_status, when more than a few are listed)."""

import re
import threading
import time

import imaptest
import yubintest

FOLDERS = 1000
ITEMS = "MESSAGES UNSEEN SIZE HIGHESTMODSEQ"


def create_folders(server, user, names, sessions=4):
    """CREATEs pipelined over a few connections (their commits share
    transactions), each answered OK."""
    errors = []

    def run(part):
        try:
            c = imaptest.RawIMAP(server)
            c.login(user)
            tags = []
            for name in part:
                tags.append(c.next_tag())
                c.send("%s CREATE %s\r\n" % (tags[-1], name))
            for t in tags:
                r = c.read_until_tagged(t)
                if r.status != "OK":
                    errors.append(r)
            c.close()
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)
    threads = [threading.Thread(target=run, args=(names[i::sessions],))
               for i in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]


def parse_status(line):
    m = re.match(r'^STATUS "?([^"]*)"? \((.*)\)$', line)
    assert m, line
    words = m.group(2).split()
    return m.group(1), {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}


def test_rfc5819_list_status_1000_folders(mailbox, server):
    user = mailbox.user
    names = ["F%04d" % i for i in range(FOLDERS - 10)] + \
        ["Tree/L%d" % i for i in range(10)]
    create_folders(server, user, names)
    c = mailbox.session(select=None)
    # Mail in some of them: folder k of every 97th gets k % 4 + 1
    # messages of different sizes, the first of them \Seen.
    expect = {}
    for k, name in enumerate(names):
        expect[name] = {"MESSAGES": 0, "UNSEEN": 0, "SIZE": 0}
    for k in range(0, len(names), 97):
        name = names[k]
        for j in range(k % 4 + 1):
            msg = yubintest.make_msg("%s-%d" % (name, j), body="x" * (j * 100 + k) + "\r\n")
            flags = "(\\Seen) " if j == 0 else ""
            c.send("%s APPEND %s %s{%d+}\r\n" % (c.next_tag(), name, flags, len(msg)))
            c.send(msg + b"\r\n")
            r = c.read_until_tagged("t%03d" % c.ntag)
            assert r.status == "OK", r
            e = expect[name]
            e["MESSAGES"] += 1
            e["UNSEEN"] += j != 0
            e["SIZE"] += len(msg)
    mailbox.fill(3)
    expect["INBOX"] = {"MESSAGES": 3, "UNSEEN": 3,
                       "SIZE": sum(r.size for r in mailbox.rows())}
    for name in ("Sent", "Drafts", "Trash", "Junk", "Tree"):
        expect[name] = {"MESSAGES": 0, "UNSEEN": 0, "SIZE": 0}

    started = time.monotonic()
    r = c.ok('LIST "" "*" RETURN (STATUS (%s))' % ITEMS)
    took = time.monotonic() - started
    listed = [re.match(r'^LIST \([^)]*\) "/" "?([^"]*)"?$', t).group(1)
              for t in r.lines("LIST")]
    statuses = [parse_status(t) for t in r.lines("STATUS")]
    assert sorted(listed) == sorted(expect), set(listed) ^ set(expect)
    # RFC 5819 2: each STATUS right after its mailbox's LIST.
    order = []
    for t in r.lines():
        if t.startswith("LIST "):
            order.append(("LIST", re.match(r'^LIST \([^)]*\) "/" "?([^"]*)"?$', t).group(1)))
        elif t.startswith("STATUS "):
            order.append(("STATUS", parse_status(t)[0]))
    assert order[0::2] == [("LIST", n) for n in listed]
    assert order[1::2] == [("STATUS", n) for n in listed]
    assert len(statuses) == len(expect) == FOLDERS + 6
    for name, got in statuses:
        want = dict(expect[name])
        # HIGHESTMODSEQ: as the STATUS command (another query) says.
        one = c.ok("STATUS %s (HIGHESTMODSEQ)" % imaptest.quote(name)).lines("STATUS")
        want["HIGHESTMODSEQ"] = parse_status(one[0])[1]["HIGHESTMODSEQ"]
        assert got == want, (name, got, want)
        assert list(got) == ITEMS.split(), got
    # A loose bound: it catches only a gross slowdown.
    assert took < 20, took

    # Without SIZE (no join with the messages), and a pattern.
    r = c.ok('LIST "" "Tree/%" RETURN (STATUS (MESSAGES UIDNEXT))')
    got = [parse_status(t) for t in r.lines("STATUS")]
    assert got == [("Tree/L%d" % i, {"MESSAGES": 0, "UIDNEXT": 1}) for i in range(10)], got
    # A few mailboxes are asked one by one: the same answers.
    for name in (names[97], names[194], "INBOX"):
        r = c.ok('LIST "" %s RETURN (STATUS (MESSAGES UNSEEN SIZE))' % name)
        assert [parse_status(t) for t in r.lines("STATUS")] == [(name, expect[name])], r
