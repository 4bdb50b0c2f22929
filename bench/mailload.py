#!/usr/bin/env python3
"""Load generators for `make bench`: deterministic test messages, an SMTP
populator, and asyncio IMAP and POP3 clients (workload, POP3 drain, IDLE
holder). Standard library only. Every random choice comes from a seeded
random.Random, so two servers get the same messages and the same commands.

  mailload.py imap  --port P --users u0,u1,... --seconds S --seed N
  mailload.py pop3  --port P --users ...
  mailload.py idle  --port P --users ... --conns N
  mailload.py smtp  --port P --users ... --count N --seed N   (populate)

Each prints one JSON line with its figures (idle: "READY ..." first, then
waits for stdin to close).
"""

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import sys
import time

DOMAIN = "example.com"
PASSWORD = "bench-password"
LIMIT = 64 * 1024 * 1024

WORDS = ("mail server queue delivery mailbox message header body folder "
         "invoice meeting report budget schedule travel project review "
         "draft update notice reminder family photo holiday weekend garden "
         "kitchen recipe train station ticket concert library museum river "
         "mountain coffee bicycle market winter summer autumn spring yubin "
         "postman letter stamp parcel address envelope harbour lighthouse").split()
NAMES = ["Aiko Tanaka", "Bruno Costa", "Chen Wei", "Dana Levi", "Emil Novak",
         "Fatima Zahra", "Goran Ilic", "Hana Sato", "Ivan Petrov", "Julia Roth",
         "Kofi Mensah", "Lena Berg", "Mateo Ruiz", "Nora Quinn", "Omar Haddad"]


def gen_messages(seed, n):
    """n RFC 5322 messages (bytes, CRLF), the same for a given seed: mostly
    text/plain of a few KB, some multipart/alternative, some with a base64
    attachment, sizes from about 1 KB to 64 KB."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        name = rnd.choice(NAMES)
        addr = name.lower().replace(" ", ".") + "@sender.test"
        subj = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(3, 7)))
        size = min(64 * 1024, int(rnd.lognormvariate(8.2, 0.8)))
        words = []
        total = 0
        while total < size:
            line = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(6, 12)))
            words.append(line)
            total += len(line) + 2
        text = "\r\n".join(words) + "\r\n"
        day = 1 + i % 28
        head = ("From: %s <%s>\r\nTo: bench@%s\r\nSubject: %s\r\n"
                "Date: Tue, %02d Nov 2026 %02d:%02d:00 +0000\r\n"
                "Message-ID: <bench-%d-%d@sender.test>\r\nMIME-Version: 1.0\r\n"
                % (name, addr, DOMAIN, subj, day, i % 24, i % 60, seed, i))
        kind = rnd.random()
        if kind < 0.7:
            msg = head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text
        elif kind < 0.85:
            b = "alt-%d" % i
            msg = (head + 'Content-Type: multipart/alternative; boundary="%s"\r\n\r\n'
                   "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s"
                   "--%s\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>%s</p>\r\n"
                   "--%s--\r\n" % (b, b, text, b, text[:2000].rsplit("\r\n", 1)[0], b))
        else:
            b = "mix-%d" % i
            blob = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(2000, 20000)))
            import base64
            enc = base64.encodebytes(blob).decode().replace("\n", "\r\n")
            msg = (head + 'Content-Type: multipart/mixed; boundary="%s"\r\n\r\n'
                   "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s"
                   "--%s\r\nContent-Type: application/octet-stream; name=\"f%d.bin\"\r\n"
                   "Content-Disposition: attachment; filename=\"f%d.bin\"\r\n"
                   "Content-Transfer-Encoding: base64\r\n\r\n%s--%s--\r\n"
                   % (b, b, text, b, i, i, enc, b))
        out.append(msg.encode())
    return out


def percentile(sorted_vals, p):
    if not sorted_vals:
        return 0.0
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * (len(sorted_vals) - 1)))))
    return sorted_vals[k]


# ---------------------------------------------------------------- SMTP

async def smtp_session(port, msgs, rcpts):
    r, w = await asyncio.open_connection("127.0.0.1", port, limit=LIMIT)

    async def reply():
        while True:
            line = await r.readline()
            if not line:
                raise RuntimeError("SMTP connection closed")
            if line[3:4] != b"-":
                return line

    async def cmd(text, want):
        w.write(text + b"\r\n")
        line = await reply()
        if not line.startswith(want):
            raise RuntimeError("SMTP %r -> %r" % (text, line))

    if not (await reply()).startswith(b"220"):
        raise RuntimeError("no SMTP greeting")
    await cmd(b"EHLO bench.client.test", b"250")
    for m in msgs:
        await cmd(b"MAIL FROM:<bench@sender.test>", b"250")
        for a in rcpts:
            await cmd(b"RCPT TO:<%s>" % a.encode(), b"250")
        await cmd(b"DATA", b"354")
        body = b"\r\n".join((b"." + l if l.startswith(b".") else l) for l in m.split(b"\r\n"))
        w.write(body + b".\r\n")
        line = await reply()
        if not line.startswith(b"250"):
            raise RuntimeError("SMTP DATA -> %r" % line)
    await cmd(b"QUIT", b"221")
    w.close()


async def smtp_populate(port, users, msgs, sessions=8):
    """Sends every message once, to all users (at most 100 per transaction)."""
    rcpts = ["%s@%s" % (u, DOMAIN) for u in users]
    groups = [rcpts[i:i + 100] for i in range(0, len(rcpts), 100)]
    jobs = []
    for g in groups:
        for s in range(sessions):
            part = msgs[s::sessions]
            if part:
                jobs.append(smtp_session(port, part, g))
    await asyncio.gather(*jobs)


# ---------------------------------------------------------------- IMAP

class Imap:
    def __init__(self):
        self.n = 0
        self.exists = 0

    async def connect(self, port):
        self.r, self.w = await asyncio.open_connection("127.0.0.1", port, limit=LIMIT)
        line = await self.r.readline()
        if not line.startswith(b"* OK"):
            raise RuntimeError("IMAP greeting %r" % line)

    async def line(self):
        """One response line, with any literals it carries read in."""
        line = await self.r.readline()
        if not line:
            raise RuntimeError("IMAP connection closed")
        while line.endswith(b"}\r\n"):
            i = line.rfind(b"{")
            n = int(line[i + 1:-3].rstrip(b"+"))
            line += await self.r.readexactly(n)
            line += await self.r.readline()
        return line

    async def cmd(self, text, literal=None):
        self.n += 1
        tag = b"a%d" % self.n
        if literal is not None:
            self.w.write(tag + b" " + text + b" {%d+}\r\n" % len(literal) + literal + b"\r\n")
        else:
            self.w.write(tag + b" " + text + b"\r\n")
        untagged = []
        while True:
            line = await self.line()
            if line.startswith(tag + b" "):
                if line[len(tag) + 1:len(tag) + 3] != b"OK":
                    raise RuntimeError("IMAP %r -> %r" % (text[:60], line[:200]))
                return untagged
            if line.startswith(b"* "):
                parts = line.split(b" ", 3)
                if len(parts) >= 3 and parts[1].isdigit():
                    if parts[2].startswith(b"EXISTS"):
                        self.exists = int(parts[1])
                    elif parts[2].startswith(b"EXPUNGE"):
                        self.exists -= 1
                untagged.append(line)

    async def login(self, user):
        await self.cmd(b"LOGIN %s@%s %s" % (user.encode(), DOMAIN.encode(), PASSWORD.encode()))


async def imap_client(port, user, seed, deadline_box, lat, append_msgs):
    rnd = random.Random(seed)
    c = Imap()
    await c.connect(port)
    await c.login(user)
    try:
        await c.cmd(b"CREATE Archive")
    except RuntimeError:
        pass                    # exists already
    await c.cmd(b"SELECT INBOX")
    deadline_box["ready"] += 1
    await deadline_box["go"].wait()
    i = 0

    async def op(name, text, literal=None):
        t0 = time.perf_counter()
        await c.cmd(text, literal)
        lat.append((name, time.perf_counter() - t0))

    while time.monotonic() < deadline_box["end"]:
        n = max(1, c.exists)
        a = rnd.randint(1, n)
        await op("fetch-envelope", b"FETCH %d:%d (UID FLAGS ENVELOPE)" % (a, min(n, a + 19)))
        a = rnd.randint(1, n)
        await op("fetch-bodystructure", b"FETCH %d:%d (BODYSTRUCTURE)" % (a, min(n, a + 9)))
        await op("fetch-body", b"FETCH %d (BODY.PEEK[])" % rnd.randint(1, n))
        await op("store", b"STORE %d %sFLAGS (\\Seen)" % (rnd.randint(1, n),
                                                        rnd.choice([b"+", b"-"])))
        await op("search", b"SEARCH SUBJECT %s" % rnd.choice(WORDS).encode())
        await op("append", b"APPEND INBOX ()", rnd.choice(append_msgs))
        await op("copy", b"COPY %d Archive" % rnd.randint(1, max(1, c.exists)))
        if i % 2 == 0:
            await op("move", b"MOVE %d Archive" % c.exists)
        else:
            await op("store", b"STORE %d +FLAGS.SILENT (\\Deleted)" % c.exists)
            await op("expunge", b"EXPUNGE")
        i += 1
    await c.cmd(b"LOGOUT")
    c.w.close()


async def imap_main(port, users, seconds, seed):
    lat = []
    box = {"go": asyncio.Event(), "end": 0.0, "ready": 0}
    append_msgs = gen_messages(seed + 999, 20)

    async def one(k, u):
        await imap_client(port, u, seed * 1000 + k, box, lat, append_msgs)

    tasks = [asyncio.ensure_future(one(k, u)) for k, u in enumerate(users)]
    # Logins are not timed: give every client time to reach SELECT.
    t_login = time.monotonic()
    while box["ready"] < len(tasks):
        await asyncio.sleep(0.02)
        for t in tasks:
            if t.done() and t.exception():
                raise t.exception()
        if time.monotonic() - t_login > 300:
            raise RuntimeError("IMAP clients not logged in after 300s")
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    box["end"] = t0 + seconds
    box["go"].set()
    await asyncio.gather(*tasks)
    wall = time.monotonic() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    vals = sorted(v for _, v in lat)
    per = {}
    for name, v in lat:
        per.setdefault(name, []).append(v)
    return {"ops": len(lat), "seconds": wall, "ops_s": len(lat) / wall,
            "p50_ms": 1000 * percentile(vals, 50), "p99_ms": 1000 * percentile(vals, 99),
            "client_cpu": cpu / wall,
            "per_op_p50_ms": {k: 1000 * percentile(sorted(v), 50) for k, v in per.items()}}


# ---------------------------------------------------------------- POP3

async def pop3_client(port, user, counts):
    r, w = await asyncio.open_connection("127.0.0.1", port, limit=LIMIT)

    async def cmd(text):
        w.write(text + b"\r\n")
        line = await r.readline()
        if not line.startswith(b"+OK"):
            raise RuntimeError("POP3 %r -> %r" % (text, line))
        return line

    if not (await r.readline()).startswith(b"+OK"):
        raise RuntimeError("no POP3 greeting")
    t0 = time.monotonic()
    await cmd(b"USER %s@%s" % (user.encode(), DOMAIN.encode()))
    await cmd(b"PASS " + PASSWORD.encode())
    t1 = time.monotonic()
    n = int((await cmd(b"STAT")).split()[1])
    nbytes = 0
    for i in range(1, n + 1):
        w.write(b"RETR %d\r\n" % i)
        data = await r.readuntil(b"\r\n.\r\n")
        if not data.startswith(b"+OK"):
            raise RuntimeError("POP3 RETR -> %r" % data[:100])
        nbytes += len(data)
        await cmd(b"DELE %d" % i)
    t2 = time.monotonic()
    await cmd(b"QUIT")
    t3 = time.monotonic()
    w.close()
    counts.append((n, nbytes, t1 - t0, t2 - t1, t3 - t2))


async def pop3_main(port, users):
    counts = []
    t0 = time.monotonic()
    await asyncio.gather(*(pop3_client(port, u, counts) for u in users))
    wall = time.monotonic() - t0
    msgs = sum(c[0] for c in counts)
    return {"messages": msgs, "bytes": sum(c[1] for c in counts), "seconds": wall,
            "msgs_s": msgs / wall,
            "login_s": statistics.median(c[2] for c in counts),
            "retr_dele_s": statistics.median(c[3] for c in counts),
            "quit_s": statistics.median(c[4] for c in counts)}


# ---------------------------------------------------------------- IDLE

async def idle_conn(port, user, sem, held):
    async with sem:
        c = Imap()
        await c.connect(port)
        await c.login(user)
        await c.cmd(b"SELECT INBOX")
        c.w.write(b"i IDLE\r\n")
        line = await c.line()
        if not line.startswith(b"+"):
            raise RuntimeError("IDLE -> %r" % line)
        held.append(c)


async def idle_main(port, users, conns):
    sem = asyncio.Semaphore(64)
    held = []
    t0 = time.monotonic()
    gathering = asyncio.gather(*(idle_conn(port, users[i % len(users)], sem, held)
                                 for i in range(conns)), return_exceptions=True)
    while True:         # progress lines, so a slow server can be measured part way
        done, _ = await asyncio.wait([gathering], timeout=5)
        if done:
            break
        print("PROGRESS %d %.2f" % (len(held), time.monotonic() - t0), flush=True)
    res = gathering.result()
    errors = [repr(e) for e in res if isinstance(e, BaseException)]
    print("READY %d %d %.2f %s" % (len(held), len(errors), time.monotonic() - t0,
                                   errors[0] if errors else ""), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    return {"held": len(held), "errors": len(errors)}


async def probe(port, user):
    """Seconds for a new client to log in, select and get a NOOP answered."""
    t0 = time.monotonic()
    c = Imap()
    await c.connect(port)
    await c.login(user)
    await c.cmd(b"SELECT INBOX")
    await c.cmd(b"NOOP")
    await c.cmd(b"LOGOUT")
    c.w.close()
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["imap", "pop3", "idle", "smtp", "probe"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--users", required=True)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--count", type=int, default=100)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    users = a.users.split(",")
    if a.mode == "imap":
        out = asyncio.run(imap_main(a.port, users, a.seconds, a.seed))
    elif a.mode == "pop3":
        out = asyncio.run(pop3_main(a.port, users))
    elif a.mode == "idle":
        out = asyncio.run(idle_main(a.port, users, a.conns))
    elif a.mode == "probe":
        out = {"seconds": asyncio.run(probe(a.port, users[0]))}
    else:
        t0 = time.monotonic()
        asyncio.run(smtp_populate(a.port, users, gen_messages(a.seed, a.count)))
        out = {"seconds": time.monotonic() - t0}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
