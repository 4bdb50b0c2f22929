"""Crash safety of SMTP delivery, measured (M8 item 1).

Several clients stream SMTP deliveries while the server is killed with
SIGKILL at random moments and restarted, again and again. At the end:

- every message that got `250` after its final dot is in each of its local
  recipients' INBOX exactly once, and has exactly one queue row for its
  remote recipient (an alias target in another domain);
- a message whose outcome the client could not learn (connection reset, EOF
  or timeout after the final dot) is stored completely for all its
  recipients or not at all: never for some recipients only, never twice;
- a message the server never saw the end of, or refused, is not stored;
- every stored message is byte for byte what was sent, after the trace
  fields we add (Return-Path, Delivered-To, Received);
- `PRAGMA integrity_check` is ok, foreign keys hold, every body file a row
  names exists, every messages row is used, and no body file is left that
  no row names (the writer renames a body into msg/ before its transaction
  commits, so a kill in between leaves one: start-up must remove it; see
  NO_ORPHANS);
- data_dir/tmp holds nothing from before a (re)start, and once the server
  serves again, msg/ holds no body file from before the kill that no row
  names;
- the server never died on its own, always restarted, stopped cleanly with
  SIGTERM at the end, and its log has no sanitizer report.

SIGKILL tests a process crash, not a power cut: the page cache survives.

Short form (20 kills) in `make test`; `make stress` runs 200. Knobs:
STRESS_KILLS (number of kills), STRESS_SEED (replay the kill times and
each client's choices; thread timing still varies), STRESS_CLIENTS
(default 4). On failure the installation is copied to
/tmp/yubin-crash-SEED-* and the seed is in the message.
"""

import base64
import collections
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import sys
import tempfile
import threading
import time

from yubintest import RawSMTP, dot_stuff, free_port, split_stored

KILLS = int(os.environ.get("STRESS_KILLS") or 20)
CLIENTS = int(os.environ.get("STRESS_CLIENTS") or 4)
SEED_ENV = os.environ.get("STRESS_SEED") or None
# A body file that no row names is left by a kill between the writer's
# rename into msg/ and its COMMIT (store_writer.c: prepare, then the
# transaction); start-up removes such files before it serves (store.c,
# store_clean_tmp). So any of them fails the test, after each restart and at
# the end. STRESS_NO_ORPHANS=0 only lists them in the report (each must
# still be a complete message that was in flight at a kill), to look at a
# build without the sweep.
NO_ORPHANS = os.environ.get("STRESS_NO_ORPHANS", "1") != "0"

DOMAIN = "example.com"
USERS = ["u%d@%s" % (i, DOMAIN) for i in range(1, 5)]
REMOTE = "far@remote.example"
# RCPT address -> (local mailboxes it reaches, remote recipients).
RCPTS = {
    "u1@example.com": ({"u1@example.com"}, set()),
    "u2@example.com": ({"u2@example.com"}, set()),
    "u3@example.com": ({"u3@example.com"}, set()),
    "u4@example.com": ({"u4@example.com"}, set()),
    "grp@example.com": ({"u1@example.com"}, {REMOTE}),
    "all@example.com": ({"u2@example.com", "u3@example.com"}, set()),
}
ALIASES = [("grp@example.com", "u1@example.com"), ("grp@example.com", REMOTE),
           ("all@example.com", "u2@example.com"), ("all@example.com", "u3@example.com")]

IO_TIMEOUT = 15.0
SUBJECT_RE = re.compile(rb"^Subject: crash (\S+)\r$", re.M)

# What a client knows about one message it tried to send.
NOT_SENT = "not-sent"   # failed before the whole final dot reached the kernel
REJECTED = "rejected"   # a reply other than 250 after the final dot
ACKED = "acked"         # 250 after the final dot
UNKNOWN = "unknown"     # reset, EOF or timeout after the final dot


class Attempt:
    __slots__ = ("id", "sender", "rcpts", "locals", "remotes", "size", "sha",
                 "status", "reply", "error", "t_start", "t_end", "epoch")

    def __init__(self, mid, sender, rcpts, msg, epoch):
        self.id = mid
        self.sender = sender
        self.rcpts = rcpts
        self.locals = set().union(*(RCPTS[r][0] for r in rcpts))
        self.remotes = set().union(*(RCPTS[r][1] for r in rcpts))
        self.size = len(msg)
        self.sha = hashlib.sha256(msg).hexdigest()
        self.status = NOT_SENT
        self.reply = None
        self.error = None
        self.t_start = time.time()
        self.t_end = None
        self.epoch = epoch

    def __repr__(self):
        return ("<%s %s rcpts=%s size=%d reply=%r error=%s epoch=%d>"
                % (self.id, self.status, ",".join(self.rcpts), self.size,
                   self.reply, self.error, self.epoch))


def make_message(seed, mid, sender, rcpts):
    """The message for id mid: deterministic in (seed, mid), CRLF lines,
    1 KB to 200 KB, some lines starting with dots (DATA transparency)."""
    rng = random.Random("%s/%s" % (seed, mid))
    size = int(1024 * 200 ** rng.random())          # log-uniform 1 KB .. 200 KB
    raw = base64.b64encode(rng.randbytes(size * 3 // 4 + 3))
    lines = []
    for i in range(0, len(raw), 76):
        line = raw[i:i + 76]
        r = rng.random()
        if r < 0.03:
            line = b"." + line
        elif r < 0.04:
            line = b"."
        elif r < 0.05:
            line = b""
        lines.append(line)
    head = [b"From: <%s>" % sender.encode(),
            b"To: " + b", ".join(r.encode() for r in rcpts),
            b"Subject: crash %s" % mid.encode(),
            b"Date: Sun, 22 Nov 2026 07:38:12 +0000",
            b"Message-ID: <%s@crash.test.example>" % mid.encode()]
    body = [b"id: " + mid.encode()] + lines + [b"end " + mid.encode()]
    return b"\r\n".join(head) + b"\r\n\r\n" + b"\r\n".join(body) + b"\r\n"


class Run:
    """Shared state of one crash run."""

    def __init__(self, inst, seed):
        self.inst = inst
        self.seed = seed
        self.lock = threading.Lock()
        self.attempts = {}
        self.stop = threading.Event()
        self.epoch = 0               # bumped at each kill
        self.kill_times = []
        self.errors = []             # protocol surprises, reported at the end
        self.counts = collections.Counter()
        self.client_failures = []

    def note(self, what):
        with self.lock:
            self.counts[what] += 1

    def error(self, text):
        with self.lock:
            self.errors.append(text)


def expect(r, line, code, run, what):
    rep = r.cmd(line)
    if rep.code != code:
        run.note("%s %d" % (what, rep.code))
        if rep.code >= 500:
            run.error("%s: %r -> %r" % (what, line, rep))
        return False
    return True


def client(run, idx):
    rng = random.Random("%s/client/%d" % (run.seed, idx))
    n = 0
    port = run.inst.port
    while not run.stop.is_set():
        try:
            r = RawSMTP("127.0.0.1", port, timeout=IO_TIMEOUT)
        except OSError:
            run.note("connect refused")
            time.sleep(0.02)
            continue
        try:
            rep = r.reply()
            if rep.code != 220:
                run.note("greeting %d" % rep.code)
                continue
            if not expect(r, "EHLO c%d.client.test.example" % idx, 250, run, "EHLO"):
                continue
            for _ in range(rng.randint(1, 3)):
                if run.stop.is_set():
                    break
                n += 1
                mid = "%d-c%d-%05d" % (run.seed, idx, n)
                sender = "c%d@client.test.example" % idx
                rcpts = rng.sample(sorted(RCPTS), rng.choice((1, 1, 1, 2, 3)))
                msg = make_message(run.seed, mid, sender, rcpts)
                with run.lock:
                    a = Attempt(mid, sender, rcpts, msg, run.epoch)
                    run.attempts[mid] = a
                if not send_one(run, r, a, msg):
                    break
            else:
                try:
                    r.cmd("QUIT")
                except (OSError, EOFError):
                    pass
        except (OSError, EOFError) as e:
            run.note("session error %s" % type(e).__name__)
        except Exception as e:  # noqa: BLE001 - a broken client fails the test
            run.client_failures.append("client %d: %r" % (idx, e))
            return
        finally:
            r.close()


def send_one(run, r, a, msg):
    """One transaction; returns True when the session can go on."""
    if not expect(r, "MAIL FROM:<%s>" % a.sender, 250, run, "MAIL"):
        return False
    for rcpt in a.rcpts:
        if not expect(r, "RCPT TO:<%s>" % rcpt, 250, run, "RCPT"):
            return False
    if not expect(r, "DATA", 354, run, "DATA"):
        return False
    data = dot_stuff(msg)
    # Until sendall returns, the server cannot have the whole CR LF . CR LF:
    # an error here means the message was never complete (NOT_SENT).
    split = random.Random(a.id).randint(1, len(data) - 1)
    r.send(data[:split])
    r.send(data[split:])
    with run.lock:
        a.status = UNKNOWN
    try:
        rep = r.reply()
    except socket.timeout:
        a.error = "timeout"
        a.t_end = time.time()
        run.note("timeout after dot")
        raise
    except (OSError, EOFError) as e:
        a.error = type(e).__name__
        a.t_end = time.time()
        raise
    with run.lock:
        a.reply = rep.code
        a.t_end = time.time()
        a.status = ACKED if rep.code == 250 else REJECTED
    if rep.code != 250:
        run.note("final %d" % rep.code)
        if rep.code >= 500:
            run.error("final reply for %s: %r" % (a.id, rep))
        return False
    return True


def provision(inst):
    inst.add_domain(DOMAIN)
    for u in USERS:
        inst.add_user(u)
    for source, target in ALIASES:
        inst.add_alias(source, target)


def tmp_leftovers(inst, before):
    """Files in data_dir/tmp last written before `before` (epoch seconds)."""
    tmp = os.path.join(inst.data_dir, "tmp")
    out = []
    for name in os.listdir(tmp):
        try:
            st = os.stat(os.path.join(tmp, name))
        except FileNotFoundError:
            continue
        if st.st_mtime < before:
            out.append((name, st.st_mtime))
    return out


def orphan_leftovers(inst, before):
    """Body files last written before `before` (epoch seconds) that no
    messages row names, read while the server runs (WAL: a reader does not
    disturb it). Every file from before a kill was written by the killed
    server, so its row was committed before the kill or never will be."""
    old = []
    for path in inst.msg_files():
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        if st.st_mtime < before:
            old.append(os.path.relpath(path, inst.data_dir))
    if not old:
        return []
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(inst.data_dir, "yubin.db"),
                         uri=True, timeout=30)
    try:
        named = {body for (body,) in db.execute("SELECT body FROM messages")}
    finally:
        db.close()
    return sorted(rel for rel in old if rel not in named)


def kill_loop(run, rng, kills):
    inst = run.inst
    for i in range(kills):
        time.sleep(rng.uniform(0.05, 0.5))
        rc = inst.proc.poll()
        assert rc is None, ("seed %d: yubin serve died on its own (exit %r) before "
                            "kill %d\n%s" % (run.seed, rc, i + 1, inst.log()))
        t = time.time()
        with run.lock:
            run.kill_times.append(t)
            run.epoch += 1
        rc = inst.stop(signal.SIGKILL)
        assert rc == -signal.SIGKILL, "seed %d: kill %d: exit %r" % (run.seed, i + 1, rc)
        # Reaped: every file written before now is the killed server's. The
        # margin covers the coarse clock the kernel stamps files with.
        dead = time.time() - 0.01
        inst.start()                 # raises if it does not come back
        # Whatever was in tmp/ at the kill is gone once the server serves.
        left = tmp_leftovers(inst, t + 0.05)
        assert not left, ("seed %d: after restart %d, data_dir/tmp still holds "
                          "files from before the kill: %r" % (run.seed, i + 1, left))
        if NO_ORPHANS:
            left = orphan_leftovers(inst, dead)
            assert not left, ("seed %d: after restart %d, msg/ still holds body files "
                              "from before the kill that no row names: %r"
                              % (run.seed, i + 1, left))


def body_id(data):
    m = SUBJECT_RE.search(data[:4096])
    return m.group(1).decode() if m else None


def check_store(run):
    """Every check on the stopped server's data; returns a report dict."""
    inst = run.inst
    attempts = run.attempts
    problems = []
    report = {}

    def problem(text):
        problems.append(text)

    # ---- cross-check through the CLI (before Python touches the db) ----
    cli_count = {}
    for u in USERS:
        rows = inst.mail_list(u)
        cli_count[u] = collections.Counter(
            r.subject[len("crash "):] for r in rows if r.subject.startswith("crash "))
    queue_out = inst.queue_list().splitlines()
    cli_queue = sum(1 for line in queue_out[1:]
                    if len(line.split("\t")) >= 5 and line.split("\t")[4] == REMOTE)

    # ---- the database, read-only, with the server stopped ----
    db_path = os.path.join(inst.data_dir, [n for n in os.listdir(inst.data_dir)
                                           if n.endswith(".db")][0])
    db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
    try:
        ic = db.execute("PRAGMA integrity_check").fetchall()
        report["integrity_check"] = ic
        if ic != [("ok",)]:
            problem("PRAGMA integrity_check: %r" % ic)
        fk = db.execute("PRAGMA foreign_key_check").fetchall()
        if fk:
            problem("PRAGMA foreign_key_check: %r" % fk[:20])

        messages = {}
        for mid_row, qid, body, size in db.execute(
                "SELECT id, queue_id, body, size FROM messages"):
            messages[mid_row] = (qid, body, size)
        mail = db.execute(
            "SELECT a.localpart || '@' || d.name, b.name, m.uid, m.message_id, m.prefix"
            " FROM mail m JOIN mailboxes b ON b.id = m.mailbox_id"
            " JOIN accounts a ON a.id = b.account_id"
            " JOIN domains d ON d.id = a.domain_id").fetchall()
        queue = db.execute("SELECT message_id, recipient FROM queue").fetchall()
    finally:
        db.close()

    # ---- each body file: complete, and what was sent ----
    body_of = {}                      # messages.id -> (test id, file bytes)
    ids_in_rows = collections.Counter()
    for rowid, (qid, body, size) in messages.items():
        path = os.path.join(inst.data_dir, body)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            problem("messages row %d (%s) names a missing body file %s: %s"
                    % (rowid, qid, body, e))
            continue
        if os.path.basename(body) != qid:
            problem("messages row %d: queue id %s but file %s" % (rowid, qid, body))
        if size != len(data):
            problem("messages row %d (%s): size %d but the file has %d bytes"
                    % (rowid, qid, size, len(data)))
        mid = check_body(problem, attempts, data, "file " + body, prefix_fields=0)
        if mid is not None:
            if (" id %s" % qid).encode() not in data.split(b"\r\n\r\n", 1)[0]:
                problem("%s: its Received field does not name queue id %s" % (body, qid))
            ids_in_rows[mid] += 1
        body_of[rowid] = mid
    for mid, n in ids_in_rows.items():
        if n > 1:
            problem("%s stored as %d messages rows (duplicate): %r" % (mid, n, attempts.get(mid)))

    # ---- mailbox entries ----
    got_local = collections.Counter()          # (id, address) -> entries
    referenced = set()
    for address, mailbox, uid, message_id, prefix in mail:
        referenced.add(message_id)
        if message_id not in messages:
            problem("mail row %s/%s/%d names no messages row" % (address, mailbox, uid))
            continue
        mid = body_of.get(message_id)
        if mid is None:
            continue
        if mailbox != "INBOX":
            problem("%s delivered to %s %s (want INBOX)" % (mid, address, mailbox))
        a = attempts.get(mid)
        prefix = bytes(prefix)
        want = b"Return-Path: <%s>\r\n" % a.sender.encode() if a else b""
        if not prefix.startswith(want) or b"\r\nDelivered-To: " not in prefix:
            problem("%s in %s: bad trace prefix %r" % (mid, address, prefix))
        got_local[(mid, address)] += 1
    # The CLI view must agree with the database.
    for u in USERS:
        db_view = collections.Counter({mid: n for (mid, addr), n in got_local.items()
                                       if addr == u})
        if +db_view != +cli_count[u]:
            problem("`yubin mail list %s` disagrees with the database" % u)

    # ---- queue rows ----
    got_remote = collections.Counter()
    for message_id, rcpt in queue:
        referenced.add(message_id)
        mid = body_of.get(message_id)
        if mid is None:
            if message_id not in messages:
                problem("queue row for %s names no messages row" % rcpt)
            continue
        got_remote[(mid, rcpt)] += 1
    if cli_queue != sum(n for (mid, r), n in got_remote.items() if r == REMOTE):
        problem("`yubin queue list` disagrees with the database")
    for rowid in messages:
        if rowid not in referenced:
            problem("messages row %d (%s) is referenced by no mail or queue row"
                    % (rowid, messages[rowid][0]))

    # ---- per message: exactly once, or (unknown) all or nothing ----
    stored_ids = {mid for (mid, _a) in got_local} | {mid for (mid, _r) in got_remote}
    status = collections.Counter(a.status for a in attempts.values())
    unknown_stored = 0
    for mid, a in attempts.items():
        places = [("mbox", u) for u in sorted(a.locals)] + [("queue", r) for r in sorted(a.remotes)]
        have = {p: (got_local[(mid, p[1])] if p[0] == "mbox" else got_remote[(mid, p[1])])
                for p in places}
        extra = sorted(addr for (m, addr) in got_local if m == mid and addr not in a.locals) + \
            sorted(rr for (m, rr) in got_remote if m == mid and rr not in a.remotes)
        if extra:
            problem("%s delivered to recipients it was not sent to: %r (%r)" % (mid, extra, a))
        dup = {p: n for p, n in have.items() if n > 1}
        if dup:
            problem("%s stored more than once: %r (%r)" % (mid, dup, a))
        if a.status == ACKED:
            missing = [p for p, n in have.items() if n == 0]
            if missing:
                problem("LOST: %s got 250 but is missing from %r (%r)" % (mid, missing, a))
        elif a.status == UNKNOWN:
            present = [p for p, n in have.items() if n > 0]
            if present and len(present) != len(places):
                problem("HALF-VISIBLE: %s (outcome unknown) is in %r but not in %r (%r)"
                        % (mid, present, [p for p in places if p not in present], a))
            if present:
                unknown_stored += 1
        else:   # NOT_SENT, REJECTED
            if mid in stored_ids or ids_in_rows.get(mid):
                problem("%s is stored but was %s (%r)" % (mid, a.status, a))
    for mid in stored_ids:
        if mid not in attempts:
            problem("stored message %r was never sent" % mid)

    # ---- body files no row names ----
    msg_dir = os.path.join(inst.data_dir, "msg")
    on_disk = {os.path.relpath(p, inst.data_dir) for p in inst.msg_files()}
    named = {body for (_q, body, _s) in messages.values()}
    orphans = []
    for rel in sorted(on_disk - named):
        path = os.path.join(inst.data_dir, rel)
        with open(path, "rb") as f:
            data = f.read()
        mid = check_body(problem, attempts, data, "orphan " + rel, prefix_fields=0)
        a = attempts.get(mid)
        mtime = os.stat(path).st_mtime
        after = [i + 1 for i, k in enumerate(run.kill_times) if k >= mtime - 0.01]
        kill = after[0] if after else None
        orphans.append((rel, mid, a.status if a else None, len(data), kill,
                        round(run.kill_times[kill - 1] - mtime, 3) if kill else None))
        if a is None or a.status != UNKNOWN:
            problem("orphan body %s is message %s, which was %s: only a message in "
                    "flight at a kill may leave one" % (rel, mid, a.status if a else "never sent"))
        if kill is None:
            problem("orphan body %s was written after the last kill" % rel)
        elif NO_ORPHANS:
            problem("orphan body %s (message %s, left by kill %d): no row names it"
                    % (rel, mid, kill))
    tmp_files = os.listdir(os.path.join(inst.data_dir, "tmp"))
    if tmp_files:
        problem("data_dir/tmp not empty after a clean start and stop: %r" % tmp_files)

    report.update(
        attempts=len(attempts), status=dict(status), unknown_stored=unknown_stored,
        unknown_absent=status[UNKNOWN] - unknown_stored,
        mail_rows=len(mail), queue_rows=len(queue), messages_rows=len(messages),
        body_files=len(on_disk), orphans=orphans, msg_dir=msg_dir)
    return problems, report


def check_body(problem, attempts, data, where, prefix_fields):
    """data is a body file (our Received field, then the message as sent).
    Returns the test id it carries, or None after reporting a problem."""
    fields, rest = split_stored(data)
    if [f.split(b":", 1)[0].lower() for f in fields] != [b"received"]:
        problem("%s: trace fields %r (want one Received)" % (where, fields))
    mid = body_id(rest)
    a = attempts.get(mid) if mid else None
    if a is None:
        problem("%s: not a message we sent (id %r), %d bytes: %r..."
                % (where, mid, len(data), data[:300]))
        return None
    sha = hashlib.sha256(rest).hexdigest()
    if sha != a.sha or len(rest) != a.size:
        sent = make_message_for(a)
        at = next((i for i in range(min(len(sent), len(rest))) if sent[i] != rest[i]),
                  min(len(sent), len(rest)))
        problem("TRUNCATED/CORRUPT: %s holds %s with %d bytes, sent %d; first "
                "difference at byte %d (%r)" % (where, mid, len(rest), a.size, at, a))
    return mid


_SEED = [None]


def make_message_for(a):
    return make_message(_SEED[0], a.id, a.sender, a.rcpts)


def keep_evidence(inst, seed):
    dst = tempfile.mkdtemp(prefix="yubin-crash-%d-" % seed, dir="/tmp")
    shutil.copytree(inst.dir, os.path.join(dst, "instance"), symlinks=True)
    return os.path.join(dst, "instance")


def test_sigkill_during_smtp_delivery(yubin_factory):
    seed = int(SEED_ENV) if SEED_ENV else random.SystemRandom().randrange(1, 2**31)
    _SEED[0] = seed
    print("crash test: seed=%d kills=%d clients=%d (replay: STRESS_SEED=%d)"
          % (seed, KILLS, CLIENTS, seed))
    sys.stdout.flush()
    # The remote recipient's queue rows must stay for the checks: the
    # outbound queue goes to a smarthost nobody listens on (a temporary
    # failure) and retries only in an hour.
    inst = yubin_factory(provision=provision, overrides={
        "limits": {"max_connections_per_ip": "0"},
        "relay": {"smarthost": "127.0.0.1:%d" % free_port(),
                  "smarthost_tls": "opportunistic"},
        "queue": {"retry_min": "1h", "retry_max": "1h"}})
    run = Run(inst, seed)
    rng = random.Random("%s/killer" % seed)
    threads = [threading.Thread(target=client, args=(run, i), daemon=True)
               for i in range(CLIENTS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    try:
        try:
            time.sleep(0.5)              # some traffic before the first kill
            kill_loop(run, rng, KILLS)
            # Traffic after the last restart: recovery must leave a server
            # that takes mail.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with run.lock:
                    after = sum(1 for a in run.attempts.values()
                                if a.epoch == run.epoch and a.status == ACKED)
                if after >= 2 * CLIENTS:
                    break
                time.sleep(0.05)
            assert after > 0, "seed %d: no message accepted after the last restart" % seed
        finally:
            run.stop.set()
            for t in threads:
                t.join(IO_TIMEOUT + 5)
        assert not any(t.is_alive() for t in threads), "seed %d: a client hangs" % seed
        assert not run.client_failures, "seed %d: %r" % (seed, run.client_failures)
        assert inst.running(), "seed %d: yubin serve died on its own\n%s" % (seed, inst.log())
        inst.stop_clean()            # exit 0 after SIGTERM, no sanitizer report
        inst.start()                 # a clean start empties tmp/
        inst.stop_clean()
        problems, report = check_store(run)
        if run.errors:
            problems.extend("unexpected reply: " + e for e in run.errors)
    except BaseException:
        print("crash test seed=%d failed; evidence in %s" % (seed, keep_evidence(inst, seed)))
        raise
    elapsed = time.monotonic() - t0
    print("crash test: seed=%d kills=%d in %.1fs; messages: %r; unknown stored=%d "
          "absent=%d; rows: messages=%d mail=%d queue=%d; body files=%d; "
          "orphan body files=%d; replies: %r"
          % (seed, len(run.kill_times), elapsed, report["status"], report["unknown_stored"],
             report["unknown_absent"], report["messages_rows"], report["mail_rows"],
             report["queue_rows"], report["body_files"], len(report["orphans"]),
             dict(run.counts)))
    for o in report["orphans"]:
        print("  orphan body file %s: message %s (%s), %d bytes, left by kill %s "
              "(%ss after its last write)" % o)
    if problems:
        where = keep_evidence(inst, seed)
        raise AssertionError("seed %d: %d problem(s); evidence in %s\n%s"
                             % (seed, len(problems), where, "\n".join(problems[:50])))
    assert report["status"].get(ACKED, 0) > 0
    assert len(run.kill_times) == KILLS
