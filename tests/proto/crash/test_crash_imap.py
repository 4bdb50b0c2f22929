"""Crash safety of IMAP changes, measured ([M8] item 1, the IMAP half).

Several IMAP clients, all logged in as one account, APPEND, STORE, EXPUNGE
and MOVE while the server is killed with SIGKILL at random moments and
restarted, again and again. Messages come in two kinds: "keep" messages
are never deleted (they may be flagged and moved from INBOX to Archive),
"del" messages may be flagged \\Deleted and expunged. At the end, with
the server stopped cleanly and started again:

- every "keep" APPEND that got OK is in INBOX or Archive exactly once
  (never lost, never duplicated by a MOVE cut short), byte for byte what
  was sent;
- a "keep" APPEND whose outcome the client could not learn, and every
  "del" message, is there at most once; nothing that was never sent is;
- a \\Flagged that a STORE reported (untagged FETCH, then OK) is still
  set, wherever the message went;
- a UID, once reported by APPENDUID, is never given to another message
  in that mailbox (UIDVALIDITY does not change: nothing here renames);
- `PRAGMA integrity_check` and `foreign_key_check` are clean, and the
  log has no sanitizer report.

Short form (10 kills) in `make test`; `make stress` runs STRESS_KILLS
(default 200) for this test too. STRESS_SEED replays the kill times and
each client's choices.
"""

import collections
import hashlib
import os
import random
import re
import signal
import socket
import sqlite3
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "imap"))

import imaptest  # noqa: E402
import yubintest  # noqa: E402

KILLS = int(os.environ.get("STRESS_KILLS") or 10)
CLIENTS = int(os.environ.get("STRESS_CLIENTS") or 3)
SEED_ENV = os.environ.get("STRESS_SEED") or None
USER = imaptest.USER
IO_TIMEOUT = 15.0
SUBJ_RE = re.compile(rb"Subject: crash-imap (\S+)")

ACKED, UNKNOWN = "acked", "unknown"


def make_message(seed, mid):
    rng = random.Random("%s/%s" % (seed, mid))
    size = int(300 * 100 ** rng.random())         # 300 B .. 30 KB
    body = b"".join(b"%s line %d\r\n" % (mid.encode(), i) for i in range(size // 20))
    return (b"From: <c@client.test.example>\r\nTo: <%s>\r\nSubject: crash-imap %s\r\n"
            b"Date: Sun, 22 Nov 2026 07:38:12 +0000\r\n\r\n" % (USER.encode(), mid.encode())
            + body)


class Run:
    def __init__(self, inst, seed):
        self.inst = inst
        self.seed = seed
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.appends = {}             # mid -> [status, sha]
        self.flagged = set()          # keep mids a STORE reported \\Flagged
        self.uids = {}                # (mailbox, uid) -> mid, from APPENDUID / COPYUID
        self.uid_clash = []
        self.counts = collections.Counter()
        self.failures = []

    def note(self, what):
        with self.lock:
            self.counts[what] += 1

    def saw_uid(self, mailbox, uid, mid):
        with self.lock:
            old = self.uids.setdefault((mailbox, uid), mid)
            if old != mid:
                self.uid_clash.append((mailbox, uid, old, mid))


def append(run, c, rng, n, idx):
    kind = "keep" if rng.random() < 0.7 else "del"
    mid = "%s-c%d-%04d-%s" % (run.seed, idx, n, kind)
    msg = make_message(run.seed, mid)
    with run.lock:
        run.appends[mid] = [UNKNOWN, hashlib.sha256(msg).hexdigest()]
    tag = c.next_tag()
    c.send(b"%s APPEND INBOX {%d+}\r\n" % (tag.encode(), len(msg)) + msg + b"\r\n")
    r = c.read_until_tagged(tag)
    if r.status != "OK":
        run.note("append %s" % r.status)
        return None
    with run.lock:
        run.appends[mid][0] = ACKED
    m = re.search(r"\[APPENDUID (\d+) (\d+)\]", r.text)
    assert m, r
    run.saw_uid("INBOX", int(m.group(2)), mid)
    return mid, int(m.group(2))


def fetch_subjects(c, uids):
    r = c.cmd("UID FETCH %s (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"
              % ",".join(str(u) for u in uids))
    out = {}
    for _seq, f in r.fetches():
        hdr = f.get("BODY[HEADER.FIELDS (SUBJECT)]", b"")
        m = SUBJ_RE.search(hdr if isinstance(hdr, bytes) else b"")
        if m:
            out[int(f["UID"])] = (m.group(1).decode(), f.get("FLAGS", []))
    return r.status, out


def client(run, idx):
    rng = random.Random("%s/client/%d" % (run.seed, idx))
    n = 0
    mine = []                          # (mid, uid in INBOX) of acked appends
    while not run.stop.is_set():
        try:
            c = imaptest.RawIMAP(run.inst, timeout=IO_TIMEOUT)
        except (OSError, EOFError, AssertionError):
            run.note("connect failed")
            time.sleep(0.05)
            continue
        try:
            c.login()
            c.select()
            for _ in range(rng.randint(5, 40)):
                if run.stop.is_set():
                    break
                op = rng.random()
                if op < 0.5 or not mine:
                    n += 1
                    got = append(run, c, rng, n, idx)
                    if got:
                        mine.append(got)
                    continue
                mid, uid = mine[rng.randrange(len(mine))]
                if op < 0.65 and mid.endswith("keep"):
                    r = c.cmd("UID STORE %d +FLAGS (\\Flagged)" % uid)
                    if r.status == "OK" and any(f.get("UID") == str(uid)
                                                for _s, f in r.fetches()):
                        with run.lock:
                            run.flagged.add(mid)
                elif op < 0.85 and mid.endswith("del"):
                    c.cmd("UID STORE %d +FLAGS.SILENT (\\Deleted)" % uid)
                    c.cmd("UID EXPUNGE %d" % uid)
                    mine.remove((mid, uid))
                elif mid.endswith("keep"):
                    r = c.cmd("UID MOVE %d Archive" % uid)
                    m = re.search(r"\[COPYUID \d+ (\d+) (\d+)\]",
                                  b" ".join(u.raw for u in r.untagged).decode("latin-1")
                                  + " " + r.text)
                    if r.status == "OK" and m:
                        assert int(m.group(1)) == uid, r
                        run.saw_uid("Archive", int(m.group(2)), mid)
                    if r.status == "OK":
                        mine.remove((mid, uid))
                run.note("op")
            c.cmd("LOGOUT")
        except (OSError, EOFError, socket.timeout):
            run.note("session cut")
        except Exception as e:  # noqa: BLE001 - a broken client fails the test
            run.failures.append("client %d: %r" % (idx, e))
            return
        finally:
            c.close()


def kill_loop(run, rng):
    inst = run.inst
    for i in range(KILLS):
        time.sleep(rng.uniform(1.0, 2.5))
        assert inst.proc.poll() is None, "seed %d: died on its own\n%s" % (run.seed, inst.log())
        assert inst.stop(signal.SIGKILL) == -signal.SIGKILL
        inst.start()


def test_sigkill_during_imap_changes(yubin_factory):
    seed = int(SEED_ENV) if SEED_ENV else random.SystemRandom().randrange(1, 2**31)
    print("imap crash test: seed=%d kills=%d clients=%d (replay: STRESS_SEED=%d)"
          % (seed, KILLS, CLIENTS, seed))
    inst = yubin_factory(imaptest.imap_overrides(max_connections_per_ip="0"),
                         provision=yubintest.provision_standard)
    c = imaptest.RawIMAP(inst)
    c.login()
    c.ok("CREATE Archive")
    c.close()
    run = Run(inst, seed)
    threads = [threading.Thread(target=client, args=(run, i), daemon=True)
               for i in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        kill_loop(run, random.Random("%s/killer" % seed))
        time.sleep(1.0)                  # some traffic after the last restart
    finally:
        run.stop.set()
        for t in threads:
            t.join(IO_TIMEOUT + 5)
    assert not any(t.is_alive() for t in threads), "seed %d: a client hangs" % seed
    assert not run.failures, "seed %d: %r" % (seed, run.failures)
    inst.stop_clean()

    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(inst.data_dir, "yubin.db"), uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        db.close()

    inst.start()
    found = collections.defaultdict(list)     # mid -> [(mailbox, uid, flags)]
    c = imaptest.RawIMAP(inst)
    c.login()
    for mailbox in ("INBOX", "Archive"):
        r = c.ok("SELECT %s" % mailbox)
        r = c.cmd("UID SEARCH ALL")
        uids = [int(x) for x in r.lines("SEARCH")[0].split()[1:]] if r.lines("SEARCH") else []
        for i in range(0, len(uids), 200):
            status, subj = fetch_subjects(c, uids[i:i + 200])
            assert status == "OK"
            for uid, (mid, flags) in subj.items():
                found[mid].append((mailbox, uid, flags))
                if (mailbox, uid) in run.uids and run.uids[(mailbox, uid)] != mid:
                    run.uid_clash.append((mailbox, uid, run.uids[(mailbox, uid)], mid))
        # byte for byte: a sample of what is there
        for uid, (mid, _f) in list(subj.items())[:20] if uids else []:
            r = c.cmd("UID FETCH %d (BODY.PEEK[])" % uid)
            body = r.fetches()[0][1]["BODY[]"]
            assert hashlib.sha256(body).hexdigest() == run.appends[mid][1], mid
    c.close()
    inst.stop_clean()

    problems = []
    for mid, places in found.items():
        if mid not in run.appends:
            problems.append("%s is stored but was never sent" % mid)
        elif len(places) > 1:
            problems.append("DUPLICATE: %s is in %r" % (mid, places))
    status = collections.Counter(s for s, _sha in run.appends.values())
    for mid, (st, _sha) in run.appends.items():
        if st == ACKED and mid.endswith("keep") and not found.get(mid):
            problems.append("LOST: %s got OK for APPEND and is gone" % mid)
        if mid in run.flagged and found.get(mid) and \
                "\\Flagged" not in found[mid][0][2]:
            problems.append("FLAG LOST: %s was reported \\Flagged: %r" % (mid, found[mid]))
    for clash in run.uid_clash:
        problems.append("UID REUSED: %s uid %d was %s, now %s" % clash)
    print("imap crash test: seed=%d kills=%d appends=%r flagged=%d stored=%d ops=%r"
          % (seed, KILLS, dict(status), len(run.flagged), len(found), dict(run.counts)))
    assert not problems, "seed %d:\n%s" % (seed, "\n".join(problems[:50]))
    assert status[ACKED] > 0
