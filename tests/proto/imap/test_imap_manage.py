"""IMAP mailbox management and copying (RFC 9051 6.3.4-6.3.8, 6.4.7;
RFC 6851 MOVE; RFC 4315 COPYUID)."""

import imaplib
import smtplib

import pytest

import yubintest

PASSWORD = "manage-secret"


def _provision(inst):
    inst.add_domain("example.com")
    inst.add_user("m@example.com", PASSWORD)


@pytest.fixture(scope="module")
def srv(module_yubin_factory):
    port = yubintest.free_port()
    inst = module_yubin_factory({"imap": {"listen": "127.0.0.1:%d" % port},
                                 "limits": {"auth_fail_delay": "0"}},
                                provision=_provision)
    inst.imap_port = port
    return inst


def login(srv):
    m = imaplib.IMAP4("127.0.0.1", srv.imap_port)
    m.login("m@example.com", PASSWORD)
    return m


def deliver(srv, n, tag):
    s = smtplib.SMTP("127.0.0.1", srv.port)
    for i in range(n):
        s.sendmail("a@example.org", ["m@example.com"],
                   b"Subject: %s-%d\r\n\r\nbody %d\r\n" % (tag.encode(), i, i))
    s.quit()


def names(m, pattern="*"):
    typ, data = m.list('""', pattern)
    assert typ == "OK"
    out = {}
    for line in data:
        attrs, rest = line.decode().split(") ", 1)
        name = rest.split(" ", 1)[1].strip('"')
        out[name] = attrs.lstrip("(").split()
    return out


def test_create_makes_superiors_and_children_attributes(srv):
    m = login(srv)
    assert m.create("Projects/2026/Q1")[0] == "OK"
    n = names(m, "Projects*")
    assert set(n) == {"Projects", "Projects/2026", "Projects/2026/Q1"}
    assert "\\HasChildren" in n["Projects"]
    assert "\\HasNoChildren" in n["Projects/2026/Q1"]
    typ, data = m.create("Projects")
    assert typ == "NO" and b"ALREADYEXISTS" in data[0]
    typ, data = m.create("inbox")
    assert typ == "NO"
    m.logout()


def test_bad_names_refused(srv):
    m = login(srv)
    for bad in ["a//b", "/lead", "wild*", "pct%", "&Zz"]:
        with pytest.raises(imaplib.IMAP4.error):
            m.create(bad)
    m.logout()


def test_modified_utf7_round_trip(srv):
    m = login(srv)
    assert m.create("&AMQ-rger")[0] == "OK"   # "Ärger"
    assert "&AMQ-rger" in names(m)
    assert m.select("&AMQ-rger")[0] == "OK"
    m.logout()


def test_rename_moves_children(srv):
    m = login(srv)
    assert m.create("Old/Sub")[0] == "OK"
    assert m.rename("Old", "New")[0] == "OK"
    n = names(m, "*")
    assert "New" in n and "New/Sub" in n and "Old" not in n and "Old/Sub" not in n
    typ, data = m.rename("Missing", "X")
    assert typ == "NO" and b"NONEXISTENT" in data[0]
    typ, data = m.rename("New", "Trash")
    assert typ == "NO" and b"ALREADYEXISTS" in data[0]
    m.logout()


def test_delete(srv):
    m = login(srv)
    assert m.create("Gone")[0] == "OK"
    assert m.delete("Gone")[0] == "OK"
    assert "Gone" not in names(m)
    typ, data = m.delete("Gone")
    assert typ == "NO" and b"NONEXISTENT" in data[0]
    typ, data = m.delete("INBOX")
    assert typ == "NO"
    m.logout()


def test_subscribe_and_lsub(srv):
    m = login(srv)
    assert m.create("Subs")[0] == "OK"
    assert m.unsubscribe("Subs")[0] == "OK"
    typ, data = m.lsub('""', "Subs")
    assert data == [None]
    assert m.subscribe("Subs")[0] == "OK"
    typ, data = m.lsub('""', "Subs")
    assert len(data) == 1 and b'"Subs"' in data[0]
    m.logout()


def test_copy_and_move_with_copyuid(srv):
    deliver(srv, 3, "copymove")
    m = login(srv)
    assert m.create("Dest")[0] == "OK"
    typ, data = m.select("INBOX")
    total = int(data[0])
    typ, data = m.fetch("1:*", "(UID)")
    uids = [int(l.split()[2].rstrip(b")")) for l in data]
    typ, data = m.copy("%d:%d" % (total - 2, total - 1), "Dest")
    assert typ == "OK"
    code = data[0].decode()
    assert code.startswith("[COPYUID ")
    _, uidvalidity, src, dst = code.split("]")[0].split()
    assert src == "%d:%d" % (uids[-3], uids[-2])
    assert dst == "1:2"
    typ, st = m.status("Dest", "(MESSAGES UIDVALIDITY)")
    assert b"MESSAGES 2" in st[0] and ("UIDVALIDITY %s" % uidvalidity).encode() in st[0]
    # The copy has the same bytes.
    typ, a = m.fetch(str(total - 2), "(BODY.PEEK[])")
    # MOVE the last one: COPYUID untagged, then EXPUNGE, then OK.
    typ, data = m._simple_command("MOVE", str(total), "Dest")
    assert typ == "OK"
    assert m.untagged_responses.get("EXPUNGE") == [str(total).encode()]
    typ, data = m.select("Dest")
    assert int(data[0]) == 3
    typ, b = m.fetch("1", "(BODY.PEEK[])")
    assert a[0][1] == b[0][1]
    typ, data = m.copy("1", "NoSuchBox")
    assert typ == "NO" and b"TRYCREATE" in data[0]
    m.logout()


def test_rename_inbox_moves_mail_and_keeps_inbox(srv):
    deliver(srv, 2, "renameinbox")
    m = login(srv)
    typ, st = m.status("INBOX", "(MESSAGES)")
    before = int(st[0].split(b"MESSAGES ")[1].rstrip(b")"))
    assert before >= 2
    assert m.rename("INBOX", "Archive")[0] == "OK"
    typ, st = m.status("INBOX", "(MESSAGES)")
    assert b"MESSAGES 0" in st[0]
    typ, st = m.status("Archive", "(MESSAGES)")
    assert ("MESSAGES %d" % before).encode() in st[0]
    m.logout()
    # New mail still reaches INBOX.
    deliver(srv, 1, "afterrename")
    m = login(srv)
    typ, st = m.status("INBOX", "(MESSAGES)")
    assert b"MESSAGES 1" in st[0]
    m.logout()
