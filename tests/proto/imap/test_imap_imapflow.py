"""Node's imapflow (the IMAP client library many Node mail programs are
built on) against a real `yubin serve`: issue [M5] item 6.

tests/node/imapflow_driver.js does what such a program does and prints
what imapflow saw, one JSON object a line; every check is here. The
driver's imapflow (tests/node/package-lock.json, installed by
`scripts/deps.sh test` with npm ci) connects to the [imap] port with
STARTTLS required (doSTARTTLS), trusting the server's self-signed
certificate as it is (tls.ca) under the name it was made for
(mx.test.example), so the certificate is verified, not waved through. It
turns qresync on: imapflow then ENABLEs CONDSTORE and QRESYNC.

One session (imapflow): LIST; SELECT INBOX; FETCH envelope, body
structure, flags, size, internal date and the source of every message,
which must be the bytes stored (`yubin mail show`); STORE flags by UID
(add, remove, set); IDLE, during which the test delivers a message over
SMTP, which must arrive as an EXISTS while idling (RFC 2177) and then
fetch as what was stored; UID MOVE (RFC 6851) to another folder, whose
COPYUID (RFC 4315) must name the UID the message has there; \\Deleted +
UID EXPUNGE. Its mailbox state (UIDVALIDITY, HIGHESTMODSEQ) must be the
server's. It logs out.

Meanwhile another session (imaplib) changes flags (one added, one
removed, one no-op STORE), and expunges two messages (one it had flagged
first). imapflow comes back with SELECT (QRESYNC (uidvalidity modseq))
(RFC 7162 3.2.5) and must receive exactly those changes: the two UIDs in
VANISHED (EARLIER), a FETCH with the new flags and MODSEQ for each of the
two changed messages, and nothing else (no FETCH of its own).
"""

import base64
import email.utils
import imaplib
import json
import os
import re
import select
import shutil
import subprocess
import time

import pytest

import imaptest
import yubintest

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(os.path.dirname(os.path.dirname(HERE)), "node")
DRIVER = os.path.join(NODE_DIR, "imapflow_driver.js")
NODE = shutil.which("node")
PHASE_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def srv(module_yubin_factory):
    return imaptest.make_server(module_yubin_factory)


class Driver:
    """The node process: phases read from its stdout, lines to its stdin."""

    def __init__(self, cfg_path):
        self.proc = subprocess.Popen([NODE, DRIVER, cfg_path], cwd=NODE_DIR,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.buf = b""
        self.seen = []
        self.held = False

    def phase(self, name, timeout=PHASE_TIMEOUT, holds=True):
        """The next JSON line, which must be phase name. The driver waits
        after each phase (but "idling") until the test asks for the next."""
        if self.held:
            self.say("next")
            self.held = False
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            assert left > 0, "no %r from the imapflow driver within %gs%s" % (
                name, timeout, self.tail())
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 20)
                assert chunk, "the imapflow driver ended before %r%s" % (name, self.tail())
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        obj = json.loads(line)
        self.seen.append(obj["phase"])
        self.held = holds
        assert obj["phase"] == name, "imapflow driver: %r, want %r: %s%s" % (
            obj["phase"], name, json.dumps(obj)[:3000], self.tail())
        return obj

    def say(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def tail(self):
        err = b""
        if self.proc.poll() is not None:
            err = self.proc.stderr.read()
        return "\nphases so far: %s\nstderr: %s" % (self.seen, err.decode("utf-8", "replace")[-4000:])

    def finish(self):
        try:
            rc = self.proc.wait(PHASE_TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return rc, self.proc.stderr.read().decode("utf-8", "replace")


# ---- the messages ----

ATTACHMENT = bytes(range(256)) * 3


def plain_msg(user, subject, cc=None):
    extra = ["Cc: %s" % cc] if cc else []
    return yubintest.make_msg(subject, to=user, extra_headers=extra,
                              body="Plain text.\r\nSecond line.\r\n")


def mixed_msg(user, subject):
    """multipart/mixed: a text part and a base64 attachment."""
    b64 = base64.encodebytes(ATTACHMENT).replace(b"\n", b"\r\n")
    body = (b"This is a multi-part message.\r\n"
            b"--XyZ\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n"
            b"\r\n"
            b"caf\xc3\xa9 au lait\r\n"
            b"--XyZ\r\n"
            b"Content-Type: application/octet-stream; name=\"data.bin\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=\"data.bin\"\r\n"
            b"\r\n" + b64 +
            b"--XyZ--\r\n")
    return yubintest.make_msg(subject, to=user, body=body, extra_headers=[
        "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="XyZ"'])


def parts_of(msg):
    """The two parts' bodies of mixed_msg, as the server counts them."""
    body = msg.split(b"\r\n\r\n", 1)[1]
    chunks = body.split(b"--XyZ")
    text = chunks[1].split(b"\r\n\r\n", 1)[1][:-2]      # less the CRLF before --
    att = chunks[2].split(b"\r\n\r\n", 1)[1][:-2]
    return text, att


def source_of(m):
    src = m["source"]
    assert isinstance(src, dict) and "base64" in src, m
    return base64.b64decode(src["base64"])


def wire_lines(wire, src):
    return [msg for s, msg in wire if s == src]


def imap_flags(c, uid):
    """(sorted flags, MODSEQ) of uid by UID FETCH. imaplib keeps untagged
    FETCHes it was sent unasked (other sessions' changes) among the
    answers: the last one for uid is the answer."""
    typ, data = c.uid("FETCH", str(uid), "(FLAGS MODSEQ)")
    assert typ == "OK", data
    mine = [t.decode() for t in data if isinstance(t, bytes)
            and re.search(r"\bUID %d\b" % uid, t.decode())]
    assert mine, data
    flags = re.search(r"FLAGS \(([^)]*)\)", mine[-1]).group(1).split()
    modseq = int(re.search(r"MODSEQ \((\d+)\)", mine[-1]).group(1))
    return sorted(flags), modseq


def status_of(c, box="INBOX"):
    typ, data = c.status(box, "(UIDVALIDITY UIDNEXT MESSAGES HIGHESTMODSEQ)")
    assert typ == "OK", data
    return {k.decode(): int(v) for k, v in
            re.findall(rb"(UIDVALIDITY|UIDNEXT|MESSAGES|HIGHESTMODSEQ) (\d+)", data[0])}


def test_imapflow_starttls_fetch_store_idle_move_and_qresync(srv, tmp_path):
    assert NODE is not None, "node is not installed (scripts/deps.sh test)"
    assert os.path.isdir(os.path.join(NODE_DIR, "node_modules", "imapflow")), \
        "imapflow is not installed in tests/node (scripts/deps.sh test runs npm ci)"
    user = imaptest.new_user(srv, "flow")
    tag = yubintest.unique("flow")
    msgs = [
        plain_msg(user, "=?UTF-8?Q?Caf=C3=A9?= %s-1" % tag, cc="Bob <bob@example.net>"),
        mixed_msg(user, "%s-2 with attachment" % tag),
        plain_msg(user, "%s-3" % tag),
        plain_msg(user, "%s-4" % tag),
        plain_msg(user, "%s-5" % tag),
        plain_msg(user, "%s-6" % tag),
    ]
    imaptest.deliver_many(srv, msgs, rcpt=user)
    rows = srv.mail_list(user)
    assert len(rows) == len(msgs)
    uids = [r.uid for r in rows]
    stored = {u: srv.mail_show(user, "INBOX", u) for u in uids}
    for u, m in zip(uids, msgs):
        assert stored[u].endswith(m), "message %d is not stored as sent" % u
    other = imaplib.IMAP4("127.0.0.1", srv.listener_port("imap"), timeout=30)
    other.login(user, yubintest.PASSWORD)
    typ, data = other.create("Archive")
    assert typ == "OK", data
    typ, data = other.select("INBOX", readonly=True)
    assert typ == "OK", data
    store_uid, move_uid, delete_uid = uids[0], uids[1], uids[2]
    arch_before = status_of(other, "Archive")

    cfg = {"port": srv.listener_port("imap"), "user": user, "pass": yubintest.PASSWORD,
           "ca": os.path.join(srv.dir, "tls", "cert.pem"), "servername": yubintest.HOSTNAME,
           "folder": "Archive", "store_uid": store_uid, "move_uid": move_uid,
           "delete_uid": delete_uid}
    cfg_path = os.path.join(str(tmp_path), "imapflow.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    d = Driver(cfg_path)
    try:
        run_scenario(srv, d, user, msgs, uids, stored, other, tag, arch_before)
    except BaseException:
        d.proc.kill()
        raise
    finally:
        rc, err = d.finish()
    assert rc == 0, "the imapflow driver exited %r\n%s" % (rc, err[-4000:])
    other.logout()


def run_scenario(srv, d, user, msgs, uids, stored, other, tag, arch_before):
    store_uid, move_uid, delete_uid = uids[0], uids[1], uids[2]

    # ---- STARTTLS, verified certificate, login, ENABLE ----
    r = d.phase("connected")
    assert r["secure"] is True and r["authorized"] is True, r
    assert r["protocol"] in ("TLSv1.2", "TLSv1.3"), r
    assert r["authenticated"], r
    caps = set(r["capabilities"])
    assert {"IMAP4rev1", "IDLE", "UIDPLUS", "MOVE", "CONDSTORE", "QRESYNC"} <= caps, caps
    assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps, caps   # after TLS
    assert {"CONDSTORE", "QRESYNC"} <= set(r["enabled"]), r

    # ---- LIST ----
    r = d.phase("list")
    paths = {f["path"]: f for f in r["folders"]}
    assert {"INBOX", "Archive"} <= set(paths), r
    typ, data = other.list()
    assert typ == "OK"
    assert len(r["folders"]) == len(data), (r, data)
    assert all(f["delimiter"] == "/" or f["delimiter"] == "." for f in r["folders"]), r

    # ---- SELECT with CONDSTORE/QRESYNC on ----
    st = status_of(other)
    r = d.phase("open")
    box = r["mailbox"]
    assert box["path"] == "INBOX" and box["readOnly"] is False, box
    assert int(box["uidValidity"]) == st["UIDVALIDITY"], (box, st)
    assert box["uidNext"] == st["UIDNEXT"] and box["exists"] == len(msgs), (box, st)
    assert int(box["highestModseq"]) == st["HIGHESTMODSEQ"], (box, st)
    assert {"\\Seen", "\\Flagged", "\\Deleted", "\\Answered", "\\Draft"} <= set(box["flags"])
    assert "\\*" in box["permanentFlags"], box

    # ---- FETCH: envelope, body structure, flags, source ----
    r = d.phase("fetch")
    got = r["messages"]
    assert [m["uid"] for m in got] == uids and [m["seq"] for m in got] == [1, 2, 3, 4, 5, 6]
    for m in got:
        src = source_of(m)
        assert src == stored[m["uid"]], "imapflow's source of UID %d is not the stored bytes" % (
            m["uid"])
        assert m["size"] == len(src), m
        assert m["flags"] == [], m
        _, modseq = imap_flags(other, m["uid"])
        assert int(m["modseq"]) == modseq, (m["modseq"], modseq)
    env = got[0]["envelope"]
    assert env["subject"] == "Caf\u00e9 %s-1" % tag, env
    assert env["from"] == [{"name": "Alice", "address": "alice@example.org"}], env
    assert env["to"] == [{"address": user}] or env["to"] == [{"name": "", "address": user}], env
    assert env["cc"] == [{"name": "Bob", "address": "bob@example.net"}], env
    mid = re.search(rb"^Message-ID: (<[^>]+>)", msgs[0], re.M).group(1).decode()
    assert env["messageId"] == mid, env
    want_date = email.utils.parsedate_to_datetime("Sun, 22 Nov 2026 07:38:12 +0000")
    assert env["date"].startswith(want_date.strftime("%Y-%m-%dT%H:%M:%S")), env
    assert got[0]["bodyStructure"]["type"] == "text/plain", got[0]["bodyStructure"]
    assert got[0]["bodyStructure"]["size"] == len(b"Plain text.\r\nSecond line.\r\n")

    bs = got[1]["bodyStructure"]
    text, att = parts_of(msgs[1])
    assert bs["type"] == "multipart/mixed", bs
    assert bs["parameters"]["boundary"] == "XyZ", bs
    t, a = bs["childNodes"]
    assert (t["part"], t["type"], t["parameters"]["charset"], t["encoding"], t["size"]) == \
        ("1", "text/plain", "utf-8", "8bit", len(text)), t
    assert t["lineCount"] == text.count(b"\n"), t
    assert (a["part"], a["type"], a["encoding"], a["size"]) == \
        ("2", "application/octet-stream", "base64", len(att)), a
    assert a["disposition"] == "attachment" and \
        a["dispositionParameters"]["filename"] == "data.bin", a
    assert a["parameters"]["name"] == "data.bin", a
    assert base64.b64decode(att) == ATTACHMENT

    # ---- STORE ----
    r = d.phase("store")
    assert r["added"] is True and r["removed"] is True and r["set"] is True, r
    after = {m["uid"]: m for m in r["messages"]}
    for uid, want in ((store_uid, ["\\Flagged"]), (delete_uid, ["\\Answered", "\\Seen"])):
        flags, modseq = imap_flags(other, uid)
        assert flags == want and sorted(after[uid]["flags"]) == want, (uid, after[uid], flags)
        assert int(after[uid]["modseq"]) == modseq, (after[uid], modseq)
    for uid in uids[3:] + [move_uid]:
        assert after[uid]["flags"] == [], after[uid]
    assert int(after[store_uid]["modseq"]) > int(got[0]["modseq"])

    # ---- IDLE: a message delivered by SMTP meanwhile ----
    d.phase("idling", holds=False)
    new_msg = plain_msg(user, "%s-7 during IDLE" % tag)
    imaptest.deliver(srv, new_msg, rcpt=user)
    r = d.phase("idle")
    assert r["announced"] is True
    assert r["exists"]["path"] == "INBOX" and r["exists"]["count"] == len(msgs) + 1, r["exists"]
    assert r["exists"]["prevCount"] == len(msgs), r["exists"]
    new_uid = srv.mail_list(user)[-1].uid
    new_stored = srv.mail_show(user, "INBOX", new_uid)
    assert new_stored.endswith(new_msg)
    assert r["message"]["uid"] == new_uid and source_of(r["message"]) == new_stored, r["message"]
    assert r["message"]["envelope"]["subject"] == "%s-7 during IDLE" % tag
    # On the wire: IDLE, the continuation, the EXISTS while idling, DONE.
    seq = [(s, m) for s, m in r["wire"]]
    i_idle = next(i for i, (s, m) in enumerate(seq) if s == "c" and m.endswith(" IDLE"))
    i_cont = next(i for i, (s, m) in enumerate(seq) if s == "s" and m.startswith("+"))
    i_exists = next(i for i, (s, m) in enumerate(seq)
                    if s == "s" and m == "* %d EXISTS" % (len(msgs) + 1))
    i_done = next(i for i, (s, m) in enumerate(seq) if s == "c" and m == "DONE")
    assert i_idle < i_cont < i_exists < i_done, seq

    # ---- MOVE with COPYUID ----
    r = d.phase("move")
    res = r["result"]
    assert res["path"] == "INBOX" and res["destination"] == "Archive", res
    arch = srv.mail_list(user, "Archive")
    assert len(arch) == 1 and arch[0].uid == arch_before["UIDNEXT"], arch
    assert res["uidMap"] == {str(move_uid): arch[0].uid}, res
    assert srv.mail_show(user, "Archive", arch[0].uid) == stored[move_uid]
    sent = wire_lines(r["wire"], "c")
    assert len(sent) == 1 and re.match(r"^\S+ UID MOVE %d Archive$" % move_uid, sent[0]), sent
    got_lines = wire_lines(r["wire"], "s")
    assert any(re.match(r"^\* OK \[COPYUID %d %d %d\]" % (
        arch_before["UIDVALIDITY"], move_uid, arch[0].uid), l) for l in got_lines), got_lines
    assert "* VANISHED %d" % move_uid in got_lines, got_lines
    # RFC 6851 4.4: the new HIGHESTMODSEQ, the mailbox's now
    st = status_of(other)
    assert re.match(r"^\S+ OK \[HIGHESTMODSEQ %d\] " % st["HIGHESTMODSEQ"], got_lines[-1]), \
        got_lines
    assert [e[0] for e in r["events"]] == ["expunge"], r["events"]
    assert r["events"][0][1]["uid"] == move_uid and r["events"][0][1]["vanished"] is True

    # ---- \Deleted and UID EXPUNGE ----
    r = d.phase("delete")
    assert r["result"] is True, r
    sent = wire_lines(r["wire"], "c")
    assert [re.sub(r"^\S+ ", "", s) for s in sent] == [
        "UID STORE %d +FLAGS (\\Deleted)" % delete_uid,
        "UID EXPUNGE %d" % delete_uid], sent
    assert "* VANISHED %d" % delete_uid in wire_lines(r["wire"], "s"), r["wire"]
    assert delete_uid not in [x.uid for x in srv.mail_list(user)]

    # ---- the state imapflow keeps is the server's ----
    r = d.phase("away")
    st = status_of(other)
    assert int(r["uidValidity"]) == st["UIDVALIDITY"], (r, st)
    assert int(r["highestModseq"]) == st["HIGHESTMODSEQ"], (r, st)
    left = [uids[0]] + uids[3:] + [new_uid]
    assert r["exists"] == len(left) == st["MESSAGES"], (r, st)
    assert [m["uid"] for m in r["messages"]] == left, r["messages"]
    known = int(r["highestModseq"])

    # ---- meanwhile, another session changes flags and expunges ----
    typ, data = other.select("INBOX")
    assert typ == "OK", data
    u_unflag, u_seen, u_gone, u_same = uids[0], uids[3], uids[4], uids[5]
    for uid, op, flags in ((u_unflag, "-FLAGS", "(\\Flagged)"),
                           (u_seen, "+FLAGS", "(\\Seen $Work)"),
                           (u_gone, "+FLAGS", "(\\Flagged)"),
                           (u_same, "-FLAGS", "(\\Seen)"),       # no change
                           (u_gone, "+FLAGS", "(\\Deleted)"),
                           (new_uid, "+FLAGS", "(\\Deleted)")):
        typ, data = other.uid("STORE", str(uid), op + ".SILENT", flags)
        assert typ == "OK", data
    typ, data = other.expunge()
    assert typ == "OK", data
    want_flags = {}
    for uid in (u_unflag, u_seen, u_same):
        want_flags[uid] = imap_flags(other, uid)
    assert want_flags[u_unflag][0] == [] and want_flags[u_seen][0] == ["$Work", "\\Seen"]
    assert want_flags[u_same][1] <= known          # untouched since imapflow left
    st = status_of(other)
    assert st["MESSAGES"] == 3 and st["HIGHESTMODSEQ"] > known

    # ---- imapflow resynchronises with QRESYNC ----
    r = d.phase("resync")
    assert {"CONDSTORE", "QRESYNC"} <= set(r["enabled"]), r
    box = r["mailbox"]
    assert int(box["highestModseq"]) == st["HIGHESTMODSEQ"] and box["exists"] == 3, box
    vanished = [e[1] for e in r["events"] if e[0] == "expunge"]
    assert all(v["vanished"] is True and v["earlier"] is True for v in vanished), vanished
    assert sorted(v["uid"] for v in vanished) == sorted([u_gone, new_uid]), vanished
    changed = {e[1]["uid"]: e[1] for e in r["events"] if e[0] == "flags"}
    assert sorted(changed) == sorted([u_unflag, u_seen]), r["events"]
    for uid in (u_unflag, u_seen):
        assert sorted(changed[uid]["flags"]) == want_flags[uid][0], changed[uid]
        assert int(changed[uid]["modseq"]) == want_flags[uid][1], changed[uid]
    assert len(r["events"]) == 4, r["events"]
    # One SELECT with the state kept (after imapflow's LIST of the name),
    # and nothing fetched.
    sent = [re.sub(r"^\S+ ", "", s) for s in wire_lines(r["wire"], "c")]
    assert sent[-1] == "SELECT INBOX (QRESYNC (%d %d))" % (st["UIDVALIDITY"], known), sent
    assert all(s.startswith("LIST ") for s in sent[:-1]), sent
    got_lines = wire_lines(r["wire"], "s")
    assert "* VANISHED (EARLIER) %s" % ",".join(
        str(u) for u in sorted([u_gone, new_uid])) in got_lines, got_lines
    assert len([l for l in got_lines if " FETCH " in l]) == 2, got_lines
    r = d.phase("done", holds=False)
    assert r["complaints"] == [], r      # imapflow logged no warning or error
