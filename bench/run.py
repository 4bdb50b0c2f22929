#!/usr/bin/env python3
"""`make bench`: yubin side by side with Postfix and Dovecot on this
machine, in one run, under the same durability rules. Writes
bench/results/DATE.md (and DATE.json with every raw figure) and prints the
tables. See docs/benchmarks.md.

  run.py [--quick] [--yubin PATH] [--runs N] [--out DIR] [--skip smtp,pop3,imap,idle,startup]
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mailload  # noqa: E402
from servers import (DOMAIN, NOBODY, Dovecot, Postfix, Sink, Yubin,  # noqa: E402
                     chown_tree, proc_name, rss_kb)

MAILLOAD = os.path.join(HERE, "mailload.py")
PY = sys.executable
COMMANDS = []           # every load command run, for the results file


def log(*a):
    print("[%s]" % time.strftime("%H:%M:%S"), *a, flush=True)


def run_cmd(argv, timeout=900):
    COMMANDS.append(" ".join(argv))
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (argv[0], p.returncode, p.stderr[-2000:]))
    return p.stdout


def loadgen(*args, timeout=900):
    out = run_cmd([PY, MAILLOAD] + [str(a) for a in args], timeout)
    return json.loads(out.strip().splitlines()[-1])


def med(vals):
    return statistics.median(vals) if vals else float("nan")


def spread(vals):
    """(min, max) as a ± text around the median, in %."""
    if len(vals) < 2:
        return ""
    m = med(vals)
    if not m:
        return ""
    return "%+.0f/%+.0f%%" % (100 * (min(vals) - m) / m, 100 * (max(vals) - m) / m)


def cpu_busy_sample(seconds=1.0):
    """Share of the machine's CPU time that was busy over seconds (what
    else runs here: other people build and test on the same cores)."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = snap()
    time.sleep(seconds)
    t1, i1 = snap()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def other_load():
    """Processes using CPU that are not ours (a rough list, for the notes)."""
    mine = set()
    p = subprocess.run(["ps", "-eo", "pid,ppid,pcpu,comm", "--sort=-pcpu"],
                       stdout=subprocess.PIPE, text=True)
    rows = []
    for line in p.stdout.splitlines()[1:15]:
        f = line.split(None, 3)
        if len(f) == 4 and float(f[2]) >= 5.0:
            rows.append("%s (%s%%)" % (f[3], f[2]))
    return rows


# ------------------------------------------------------------------ SMTP

SMTP_SIZES = [1024, 4096, 100 * 1024, 1024 * 1024]
SMTP_SESSIONS = [1, 10, 50]


def smtp_count(size, sessions, quick):
    base = {1024: 200, 4096: 200, 100 * 1024: 60, 1024 * 1024: 10}[size]
    mult = {1: 1, 10: 2, 50: 3}[sessions]
    n = base * mult
    if quick:
        n = max(sessions * 2, n // 5)
    return max(n, sessions)


def wait_delivered(srv, user, want, t0, timeout=600):
    while not srv.delivered(user, want):
        if time.monotonic() - t0 > timeout:
            raise RuntimeError("%s: %s has not got %d messages after %ds"
                               % (srv.name, user, want, timeout))
        time.sleep(0.02)
    return time.monotonic() - t0


def smtp_source(srv, user, sessions, count, size):
    argv = ["smtp-source", "-s", str(sessions), "-m", str(count), "-l", str(size),
            "-M", "bench.client.test", "-f", "bench@sender.test",
            "-t", "%s@%s" % (user, DOMAIN), "127.0.0.1:%d" % srv.smtp_port]
    t0 = time.monotonic()
    run_cmd(argv)
    return t0, time.monotonic() - t0


def bench_smtp(servers, runs, quick):
    res = []
    sizes = [4096, 100 * 1024] if quick else SMTP_SIZES
    sess = [1, 10] if quick else SMTP_SESSIONS
    for size in sizes:
        for s in sess:
            user = "s%dk%d" % (s, size // 1024)
            n = smtp_count(size, s, quick)
            fig = {srv.name: {"rate": [], "stored": []} for srv in servers}
            for srv in servers:                   # warm-up
                base = srv.count(user) if hasattr(srv, "count") else 0
                t0, _ = smtp_source(srv, user, s, max(s, 10), size)
                wait_delivered(srv, user, base + max(s, 10), t0)
            for r in range(runs):
                order = servers if r % 2 == 0 else list(reversed(servers))
                for srv in order:
                    base = srv.count(user) if hasattr(srv, "count") else 0
                    t0, dt = smtp_source(srv, user, s, n, size)
                    stored = wait_delivered(srv, user, base + n, t0)
                    fig[srv.name]["rate"].append(n / dt)
                    fig[srv.name]["stored"].append(n / stored)
            row = {"size": size, "sessions": s, "messages": n, "figures": fig}
            res.append(row)
            log("smtp %5dK x%-2d n=%d: %s" % (size // 1024, s, n, "  ".join(
                "%s %.0f/s (stored %.0f/s)" % (k, med(v["rate"]), med(v["stored"]))
                for k, v in fig.items())))
    return res


# ------------------------------------------------------------------ mail population

def populate_yubin(y, users, msgs):
    loadgen("smtp", "--port", y.smtp_port, "--users", ",".join(users),
            "--count", len(msgs), "--seed", POP_SEED)


POP_SEED = 42


def populate_dovecot(d, users, msgs, tag):
    """Dovecot's own import path for Maildir: files in cur/ (as its LDA or
    any Maildir tool leaves them), LF line ends as on disk."""
    lf = [m.replace(b"\r\n", b"\n") for m in msgs]
    for u in users:
        md = d.maildir(u)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, sub), exist_ok=True)
        for i, m in enumerate(lf):
            name = "%d.M%dP%s.bench,S=%d:2," % (1764800000 + i, i, tag, len(m))
            with open(os.path.join(md, "cur", name), "wb") as f:
                f.write(m)
    chown_tree(d.mail, NOBODY.pw_uid, NOBODY.pw_gid)


def pop3_touch(port, users):
    """Logs every user in and out once (Dovecot builds its index here),
    outside the timing."""
    import socket
    for u in users:
        with socket.create_connection(("127.0.0.1", port)) as c:
            f = c.makefile("rwb")
            f.readline()
            for cmd in (b"USER %s@%s" % (u.encode(), DOMAIN.encode()),
                        b"PASS " + mailload.PASSWORD.encode(), b"STAT", b"QUIT"):
                f.write(cmd + b"\r\n")
                f.flush()
                line = f.readline()
                if not line.startswith(b"+OK"):
                    raise RuntimeError("POP3 touch %r -> %r" % (cmd, line))


# ------------------------------------------------------------------ POP3

def bench_pop3(y, d, runs, quick):
    res = []
    cases = [(1, 200), (10, 200)] if quick else [(1, 1000), (10, 1000), (100, 100)]
    for nclients, nmsgs in cases:
        users = ["pop%d" % i for i in range(nclients)]
        msgs = mailload.gen_messages(POP_SEED, nmsgs)
        fig = {"yubin": [], "dovecot": []}
        for r in range(runs):              # pop3_touch is the warm-up
            populate_yubin(y, users, msgs)
            populate_dovecot(d, users, msgs, "r%dn%d" % (r, nclients))
            pop3_touch(y.pop3_port, users)
            pop3_touch(d.pop3_port, users)
            order = [("yubin", y), ("dovecot", d)]
            if r % 2:
                order.reverse()
            for name, srv in order:
                out = loadgen("pop3", "--port", srv.pop3_port, "--users", ",".join(users))
                if out["messages"] != nclients * nmsgs:
                    raise RuntimeError("%s POP3: %d messages, want %d"
                                       % (name, out["messages"], nclients * nmsgs))
                fig[name].append(out)
        res.append({"clients": nclients, "messages": nmsgs, "figures": fig})
        log("pop3 %d clients x %d msgs: %s" % (nclients, nmsgs, "  ".join(
            "%s %.0f msg/s (login %.3fs, RETR+DELE %.3fs, QUIT %.3fs)" % (
                k, med([o["msgs_s"] for o in v]), med([o["login_s"] for o in v]),
                med([o["retr_dele_s"] for o in v]), med([o["quit_s"] for o in v]))
            for k, v in fig.items())))
    return res


# ------------------------------------------------------------------ IMAP

IMAP_USERS = 100


def populate_imap(y, d, quick):
    """The IMAP users' mailboxes (IMAP and IDLE tests)."""
    nmsgs = 50 if quick else 200
    users = ["imap%d" % i for i in range(IMAP_USERS)]
    msgs = mailload.gen_messages(7, nmsgs)
    t0 = time.monotonic()
    loadgen("smtp", "--port", y.smtp_port, "--users", ",".join(users),
            "--count", nmsgs, "--seed", 7)
    populate_dovecot(d, users, msgs, "imap")
    log("imap: %d mailboxes of %d messages each populated in %.0fs"
        % (len(users), nmsgs, time.monotonic() - t0))


def bench_imap(y, d, runs, quick):
    users = ["imap%d" % i for i in range(IMAP_USERS)]
    seconds = 3 if quick else 6
    for srv in (y, d):                 # warm-up: every mailbox opened once
        loadgen("imap", "--port", srv.imap_port, "--users", ",".join(users),
                "--seconds", 1, "--seed", 999)
    res = []
    for n in ([1, 10] if quick else [1, 10, 100]):
        fig = {"yubin": [], "dovecot": []}
        for r in range(runs):
            order = [("yubin", y), ("dovecot", d)]
            if r % 2:
                order.reverse()
            for name, srv in order:
                out = loadgen("imap", "--port", srv.imap_port, "--users",
                              ",".join(users[:n]), "--seconds", seconds, "--seed", r + 1)
                fig[name].append(out)
        res.append({"clients": n, "seconds": seconds, "figures": fig})
        log("imap %3d clients: %s" % (n, "  ".join(
            "%s %.0f ops/s p50 %.1fms p99 %.1fms" % (
                k, med([o["ops_s"] for o in v]), med([o["p50_ms"] for o in v]),
                med([o["p99_ms"] for o in v])) for k, v in fig.items())))
    return res


# ------------------------------------------------------------------ IDLE memory

def established(port):
    """Established TCP connections whose local port is port (the server's
    side of its clients' connections)."""
    n = 0
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(f) as fh:
                next(fh)
                for line in fh:
                    parts = line.split()
                    if parts[3] == "01" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        n += 1
        except OSError:
            pass
    return n


def tree_mem(pids):
    rss = pss = 0
    names = {}
    for p in pids:
        a, b = rss_kb(p)
        rss += a
        pss += b
        n = proc_name(p)
        names[n] = names.get(n, 0) + 1
    return rss, pss, names


IDLE_NOTES = []          # said in the results when a level had to be lowered


def idle_levels(quick):
    """The connection counts, the top one lowered when the descriptor
    limit cannot hold it: yubin keeps two descriptors per connection and
    128 spare under RLIMIT_NOFILE (daemon/serve.c fit_connections) and
    refuses connections beyond, and a hard limit can be raised only with
    CAP_SYS_RESOURCE (not in a container). Both servers get the same
    count; the results say so."""
    levels = [100, 1000] if quick else [100, 1000, 10000]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        return levels
    fit = (hard - 128) // 2 - 20          # room for the probe and a few spares
    out = []
    for n in levels:
        if n > fit:
            m = fit // 100 * 100
            IDLE_NOTES.append(
                "IDLE: the hard open-file limit here is %d and could not be raised (no "
                "CAP_SYS_RESOURCE in this container); yubin keeps two descriptors per "
                "connection plus 128 spare, so at most %d connections fit, and the "
                "%d-connection point was run with %d connections for both servers."
                % (hard, (hard - 128) // 2, n, m))
            log("idle: fd hard limit %d: %d connections instead of %d" % (hard, m, n))
            n = m
        out.append(n)
    return out


def bench_idle(y, d, quick, idle_timeout=420):
    res = []
    users = ["imap%d" % i for i in range(IMAP_USERS)]
    levels = idle_levels(quick)
    for n in levels:
        for name, srv in (("yubin", y), ("dovecot", d)):
            time.sleep(2)
            rss0, pss0, _ = tree_mem(srv.pids())
            argv = [PY, MAILLOAD, "idle", "--port", str(srv.imap_port),
                    "--users", ",".join(users), "--conns", str(n)]
            COMMANDS.append(" ".join(argv))
            p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            # A server that cannot open them all within idle_timeout is
            # measured with what it holds then (marked partial).
            lines = []
            def read_lines():
                for line in p.stdout:
                    lines.append(line)
            reader = threading.Thread(target=read_lines, daemon=True)
            reader.start()
            deadline = time.monotonic() + idle_timeout
            while time.monotonic() < deadline and not any(l.startswith("READY") for l in lines):
                if p.poll() is not None and not reader.is_alive():
                    break
                time.sleep(0.5)
            ready = [l.split(None, 4) for l in lines if l.startswith("READY")]
            prog = [l.split() for l in lines if l.startswith("PROGRESS")]
            partial = not ready
            if ready:
                held, errors, setup = int(ready[0][1]), int(ready[0][2]), float(ready[0][3])
            elif prog:
                # freeze the loader: the connections it has stay open, no new ones
                p.send_signal(signal.SIGSTOP)
                time.sleep(2)
                held, errors, setup = established(srv.imap_port), 0, idle_timeout
                log("idle %d %s: %d connections open after %.0fs; measuring those"
                    % (n, name, held, setup))
            else:
                p.kill()
                p.wait()
                raise RuntimeError("idle loader failed: %r" % lines)
            time.sleep(3)
            rss1, pss1, names = tree_mem(srv.pids())
            try:
                probe = loadgen("probe", "--port", srv.imap_port, "--users", users[0],
                                timeout=120)["seconds"]
            except Exception as e:  # noqa: BLE001 (a failed probe is a result)
                probe = None
                log("probe failed: %s" % e)
            if partial:
                p.kill()
                p.send_signal(signal.SIGCONT)
            else:
                p.stdin.close()
            p.wait(300)
            row = {"server": name, "conns": n, "held": held, "errors": errors, "partial": partial,
                   "setup_s": setup, "rss_kb": rss1, "pss_kb": pss1,
                   "rss_base_kb": rss0, "pss_base_kb": pss0,
                   "rss_per_conn_kb": (rss1 - rss0) / max(1, held),
                   "pss_per_conn_kb": (pss1 - pss0) / max(1, held),
                   "processes": names, "probe_s": probe}
            res.append(row)
            log("idle %5d %s: held %d (errors %d), RSS +%.1f KiB/conn, PSS +%.1f KiB/conn, "
                "%d processes, probe %s" % (n, name, held, errors, row["rss_per_conn_kb"],
                                           row["pss_per_conn_kb"], sum(names.values()),
                                           "%.3fs" % probe if probe is not None else "failed"))
            # let Dovecot reap its imap processes before the next level
            for _ in range(300):
                if sum(1 for q in srv.pids() if proc_name(q) == "imap") == 0:
                    break
                time.sleep(0.2)
    return res


# ------------------------------------------------------------------ start-up

def clone_accounts(y, n):
    """Makes n accounts b0..b{n-1}: the first with `yubin user add`, the
    rest as copies of its rows in one SQL transaction (the server is not
    running). `yubin user add` is one process and one durable transaction
    per account (65 ms here), 11 minutes for 10,000."""
    y.add_users(["b0"])
    db = sqlite3.connect(os.path.join(y.dir, "data", "yubin.db"))
    cols_a = [r[1] for r in db.execute("PRAGMA table_info(accounts)") if r[1] not in ("id", "localpart")]
    cols_m = [r[1] for r in db.execute("PRAGMA table_info(mailboxes)")
              if r[1] not in ("id", "account_id", "uidvalidity")]
    tmpl = db.execute("SELECT id FROM accounts WHERE localpart = 'b0'").fetchone()[0]
    with db:
        uv = db.execute("SELECT max(uidvalidity) FROM mailboxes").fetchone()[0]
        for i in range(1, n):
            cur = db.execute("INSERT INTO accounts (localpart, %s) SELECT ?, %s FROM accounts"
                             " WHERE id = ?" % (", ".join(cols_a), ", ".join(cols_a)),
                             ("b%d" % i, tmpl))
            acc = cur.lastrowid
            uv += 10
            db.execute("INSERT INTO mailboxes (account_id, uidvalidity, %s) SELECT ?, ? + id, %s"
                       " FROM mailboxes WHERE account_id = ?"
                       % (", ".join(cols_m), ", ".join(cols_m)), (acc, uv, tmpl))
    got = db.execute("SELECT count(*) FROM accounts").fetchone()[0]
    db.close()
    chown_tree(os.path.join(y.dir, "data"), NOBODY.pw_uid, NOBODY.pw_gid)
    return got


def bench_startup(ybin, work, runs):
    """Seconds to the greetings with 1 account and with 10,000."""
    res = []
    for n in (1, 10000):
        base = os.path.join(work, "startup%d" % n)
        y = Yubin(ybin, base)
        got = clone_accounts(y, n)
        d = Dovecot(base, ["b%d" % i for i in range(n)])
        fig = {"yubin": [], "dovecot": []}
        for r in range(runs + 1):          # run 0 is the warm-up
            for name, srv in (("yubin", y), ("dovecot", d)):
                t = srv.start()
                loadgen("probe", "--port", srv.imap_port, "--users", "b%d" % (n - 1))
                srv.stop()
                if r > 0:
                    fig[name].append(t)
        log("start-up with %d accounts: yubin %.3fs, dovecot %.3fs (to the greetings)"
            % (got, med(fig["yubin"]), med(fig["dovecot"])))
        res.append({"accounts": got, "figures": fig})
    return res


# ------------------------------------------------------------------ report

def ratio(a, b):
    return a / b if b else float("nan")


def machine():
    def first(cmd):
        try:
            return subprocess.run(cmd, shell=True, stdout=subprocess.PIPE,
                                  text=True).stdout.strip()
        except OSError:
            return "?"
    cpu = first("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    mem = first("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    disk = first("df -h /tmp | awk 'NR==2 {print $1\" (\"$2\", \"$5\" used)\"}'")
    dev = first("df /tmp | awk 'NR==2 {print $1}'")
    rot = first("cat /sys/block/%s/queue/rotational 2>/dev/null"
                % os.path.basename(dev).rstrip("0123456789"))
    fs = first("df -T /tmp | awk 'NR==2 {print $2}'")
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "disk": disk,
            "filesystem": fs, "rotational": rot,
            "kernel": platform.release(), "os": first(". /etc/os-release; echo $PRETTY_NAME")}


def targets(R):
    """(target, figure, met) rows for the issue's targets that this run
    measured."""
    out = []
    for row in R.get("smtp", []):
        if row["size"] == 4096 and row["sessions"] == 10:
            f = row["figures"]
            yv, pv, sv = (med(f[k]["rate"]) for k in ("yubin", "postfix", "smtp-sink"))
            out.append(("SMTP ingest ≥ 2× Postfix (4 KB, 10 sessions, both durable)",
                        "%.0f vs %.0f msg/s: %.2f×" % (yv, pv, ratio(yv, pv)),
                        "yes" if yv >= 2 * pv else "**no**"))
            out.append(("SMTP ingest within 50% of smtp-sink (4 KB, 10 sessions)",
                        "%.0f vs %.0f msg/s: %.2f×" % (yv, sv, ratio(yv, sv)),
                        "yes" if yv >= 0.5 * sv else "**no**"))
    for row in R.get("pop3", []):
        if row["clients"] in (10, 100):
            f = row["figures"]
            yv, dv = (med([o["msgs_s"] for o in f[k]]) for k in ("yubin", "dovecot"))
            out.append(("POP3 ≥ Dovecot, %d clients" % row["clients"],
                        "%.0f vs %.0f msg/s: %.2f×" % (yv, dv, ratio(yv, dv)),
                        "yes" if yv >= dv else "**no**"))
    for row in R.get("imap", []):
        if row["clients"] in (10, 100):
            f = row["figures"]
            yv, dv = (med([o["ops_s"] for o in f[k]]) for k in ("yubin", "dovecot"))
            out.append(("IMAP ≥ Dovecot, %d clients" % row["clients"],
                        "%.0f vs %.0f ops/s: %.2f×" % (yv, dv, ratio(yv, dv)),
                        "yes" if yv >= dv else "**no**"))
    by = {}
    for row in R.get("idle", []):
        by.setdefault(row["conns"], {})[row["server"]] = row
    for n, v in sorted(by.items()):
        if "yubin" in v and "dovecot" in v and n >= 1000:
            y, d = v["yubin"]["pss_per_conn_kb"], v["dovecot"]["pss_per_conn_kb"]
            out.append(("IDLE memory ≤ 1/10 of Dovecot's per connection (%d, PSS)" % n,
                        "%.1f vs %.1f KiB: %.3f" % (y, d, ratio(y, d)),
                        "yes" if y <= d / 10 else "**no**"))
    top = max([row["conns"] for row in R.get("idle", [])] or [0])
    for row in R.get("idle", []):
        if row["server"] == "yubin" and row["conns"] == top and top >= 5000:
            ok = row["held"] == top and row["probe_s"] is not None
            out.append(("10,000 idle IMAP connections, server still answering" + (
                        "" if top == 10000 else " (%d here: the descriptor limit, see notes)"
                        % top),
                        "%d held; a new login+SELECT+NOOP took %s" % (
                            row["held"], "%.3fs" % row["probe_s"] if row["probe_s"] is not None
                            else "no answer"), "yes" if ok else "**no**"))
    return out


def fmt_rate(v):
    return "%.0f" % v if v >= 10 else "%.1f" % v


def write_report(R, path_md):
    L = []
    w = L.append
    m = R["machine"]
    w("# yubin benchmark, %s%s" % (R["date"], " (QUICK smoke run)" if R["quick"] else ""))
    w("")
    w("Made by %s. Raw figures: `%s`."
      % (R.get("invocation") or "`make bench%s` (bench/run.py)" % (" QUICK=1" if R["quick"] else ""),
         os.path.basename(path_md)[:-3] + ".json"))
    w("")
    w("## Machine and versions")
    w("")
    w("- CPU: %s, %d cores; memory %s" % (m["cpu"], m["cores"], m["memory"]))
    w("- Disk: %s, file system %s, rotational=%s (all data dirs in /tmp)"
      % (m["disk"], m["filesystem"], m["rotational"]))
    w("- OS: %s, kernel %s" % (m["os"], m["kernel"]))
    w("- yubin %s (build `%s`, meson debugoptimized), Postfix %s, Dovecot %s, Python %s"
      % (R["versions"]["yubin"], R["yubin_bin"], R["versions"]["postfix"],
         R["versions"]["dovecot"], platform.python_version()))
    w("- Runs per point: %d (median shown; spread = min/max around it), after a warm-up; "
      "seeds fixed (messages: 42 POP3, 7 IMAP; IMAP command choice: run number)." % R["runs"])
    w("- Other work on the machine: CPU busy %.0f%% just before the run, %.0f%% just after; "
      "busy processes at the start: %s. The figures carry that noise; yubin and its "
      "peers were interleaved run by run so both saw it alike."
      % (100 * R["busy_before"], 100 * R.get("busy_after", 0),
         ", ".join(R["others"]) or "none"))
    w("- Duration: %.1f minutes." % (R.get("duration_s", 0) / 60))
    w("")
    if "smtp" in R:
        w("## SMTP ingest (smtp-source, a new connection per message)")
        w("")
        w("Accepted messages per second as smtp-source sees them (all 250), and in "
          "brackets the rate until every message was counted in its mailbox (Postfix: "
          "its queue empty and the Maildir files counted; yubin: `yubin mail list`). "
          "Both fsync before the 250. smtp-sink stores nothing.")
        w("")
        w("| size | sessions | msgs | yubin msg/s | Postfix msg/s | smtp-sink msg/s | yubin/Postfix | yubin/sink |")
        w("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for row in R["smtp"]:
            f = row["figures"]
            yv, pv, sv = (f[k]["rate"] for k in ("yubin", "postfix", "smtp-sink"))
            ys, ps = f["yubin"]["stored"], f["postfix"]["stored"]
            w("| %s | %d | %d | %s (%s) %s | %s (%s) %s | %s %s | %.2f× (%.2f×) | %.2f |"
              % ("%d KB" % (row["size"] // 1024) if row["size"] < 1048576 else "1 MB",
                 row["sessions"], row["messages"],
                 fmt_rate(med(yv)), fmt_rate(med(ys)), spread(yv),
                 fmt_rate(med(pv)), fmt_rate(med(ps)), spread(pv),
                 fmt_rate(med(sv)), spread(sv),
                 ratio(med(yv), med(pv)), ratio(med(ys), med(ps)), ratio(med(yv), med(sv))))
        w("")
    if "pop3" in R:
        w("## POP3 (each client RETRs and DELEs its whole mailbox, then QUIT)")
        w("")
        w("Messages per second over all clients, from the first connection to the "
          "last QUIT answered; then the median client's seconds in login (USER+PASS), "
          "in the RETR+DELE loop, and in QUIT (where the deletions are committed).")
        w("")
        w("| clients | msgs each | yubin msg/s | Dovecot msg/s | yubin/Dovecot "
          "| yubin login / RETR+DELE / QUIT s | Dovecot login / RETR+DELE / QUIT s |")
        w("|---:|---:|---:|---:|---:|---:|---:|")
        for row in R["pop3"]:
            f = row["figures"]
            yv = [o["msgs_s"] for o in f["yubin"]]
            dv = [o["msgs_s"] for o in f["dovecot"]]

            def phases(v):
                return "%.3f / %.3f / %.3f" % (med([o["login_s"] for o in v]),
                                               med([o["retr_dele_s"] for o in v]),
                                               med([o["quit_s"] for o in v]))
            w("| %d | %d | %s %s | %s %s | %.2f× | %s | %s |"
              % (row["clients"], row["messages"], fmt_rate(med(yv)), spread(yv),
                 fmt_rate(med(dv)), spread(dv), ratio(med(yv), med(dv)),
                 phases(f["yubin"]), phases(f["dovecot"])))
        w("")
    if "imap" in R:
        w("## IMAP (mailload.py imap: FETCH envelopes, bodystructures, a body; STORE; "
          "SEARCH; APPEND; COPY; MOVE or STORE \\Deleted + EXPUNGE)")
        w("")
        w("| clients | yubin ops/s | Dovecot ops/s | yubin/Dovecot | yubin p50 / p99 ms "
          "| Dovecot p50 / p99 ms | load generator CPU (y / d) |")
        w("|---:|---:|---:|---:|---:|---:|---:|")
        for row in R["imap"]:
            f = row["figures"]
            yo = [o["ops_s"] for o in f["yubin"]]
            do = [o["ops_s"] for o in f["dovecot"]]
            w("| %d | %s %s | %s %s | %.2f× | %.1f / %.1f | %.1f / %.1f | %.0f%% / %.0f%% |"
              % (row["clients"], fmt_rate(med(yo)), spread(yo), fmt_rate(med(do)), spread(do),
                 ratio(med(yo), med(do)),
                 med([o["p50_ms"] for o in f["yubin"]]), med([o["p99_ms"] for o in f["yubin"]]),
                 med([o["p50_ms"] for o in f["dovecot"]]), med([o["p99_ms"] for o in f["dovecot"]]),
                 100 * med([o["client_cpu"] for o in f["yubin"]]),
                 100 * med([o["client_cpu"] for o in f["dovecot"]])))
        w("")
        w("Median per-command p50 latency (ms) at the largest client count:")
        w("")
        last = R["imap"][-1]["figures"]
        ops = sorted(last["yubin"][0]["per_op_p50_ms"])
        w("| command | " + " | ".join(ops) + " |")
        w("|---|" + "---:|" * len(ops))
        for k in ("yubin", "dovecot"):
            w("| %s | " % k + " | ".join(
                "%.2f" % med([o["per_op_p50_ms"].get(op, float("nan")) for o in last[k]])
                for op in ops) + " |")
        w("")
        if "imap_trivial" in R:
            t = R["imap_trivial"]
            w("Load generator check: against bench/trivial_imapd (answers every command "
              "at once, stores nothing) the same generator made %s ops/s with %d clients "
              "(CPU %.0f%% of one core), against %s for the faster real server at that "
              "count." % (fmt_rate(t["ops_s"]), t["clients"], 100 * t["client_cpu"],
                          fmt_rate(t["best_real"])))
            w("")
    if "idle" in R:
        w("## Memory per logged-in IDLE IMAP connection")
        w("")
        w("Each connection: LOGIN, SELECT INBOX (%d users, 200 messages each), IDLE. "
          "Growth of the server's total RSS (and PSS, which counts shared pages once) "
          "over its idle size, divided by the connections held; Dovecot: the sum over "
          "all its processes. Probe: a new client's LOGIN+SELECT+NOOP while they are "
          "held." % IMAP_USERS)
        w("")
        w("| connections | server | held | time to open s | RSS KiB/conn | PSS KiB/conn "
          "| total RSS MiB | processes | probe s |")
        w("|---:|---|---:|---:|---:|---:|---:|---|---:|")
        for row in R["idle"]:
            procs = ", ".join("%s %d" % kv for kv in sorted(row["processes"].items(),
                                                            key=lambda kv: -kv[1])[:3])
            w("| %d | %s | %s | %.0f | %.1f | %.1f | %.0f | %s | %s |"
              % (row["conns"], row["server"],
                 "%d%s" % (row["held"], " (gave up)" if row.get("partial") else ""),
                 row["setup_s"],
                 row["rss_per_conn_kb"],
                 row["pss_per_conn_kb"], row["rss_kb"] / 1024, procs,
                 "%.3f" % row["probe_s"] if row["probe_s"] is not None
                 else "not made" if row.get("partial") else "failed"))
        w("")
        by = {}
        for row in R["idle"]:
            by.setdefault(row["conns"], {})[row["server"]] = row
        w("| connections | yubin/Dovecot RSS per conn | yubin/Dovecot PSS per conn |")
        w("|---:|---:|---:|")
        for n, v in sorted(by.items()):
            if "yubin" in v and "dovecot" in v:
                w("| %d | %.3f | %.3f |" % (n, ratio(v["yubin"]["rss_per_conn_kb"],
                                                    v["dovecot"]["rss_per_conn_kb"]),
                                          ratio(v["yubin"]["pss_per_conn_kb"],
                                                v["dovecot"]["pss_per_conn_kb"])))
        w("")
    if "startup" in R:
        w("## Start-up")
        w("")
        w("Seconds from starting the server until it greets (yubin: on its SMTP and IMAP "
          "ports; Dovecot: IMAP and POP3), then a login to the last account is checked. "
          "yubin's 10,000 accounts: one made by `yubin user add`, the others copies of "
          "its rows (see bench/run.py clone_accounts); Dovecot's: a passwd-file.")
        w("")
        w("| accounts | yubin s | Dovecot s | yubin/Dovecot |")
        w("|---:|---:|---:|---:|")
        for s in R["startup"]:
            f = s["figures"]
            w("| %d | %.3f %s | %.3f %s | %.2f× |"
              % (s["accounts"], med(f["yubin"]), spread(f["yubin"]),
                 med(f["dovecot"]), spread(f["dovecot"]),
                 ratio(med(f["yubin"]), med(f["dovecot"]))))
        w("")
    w("## The issue's targets")
    w("")
    w("| target | figure | met |")
    w("|---|---|---|")
    for t in targets(R):
        w("| %s | %s | %s |" % t)
    w("")
    if R.get("notes"):
        w("## Notes")
        w("")
        for n in R["notes"]:
            w("- " + n)
        w("")
    w("## Commands")
    w("")
    w("Servers: see bench/servers.py (configs are written there). Load commands, "
      "in order (ports vary by run):")
    w("")
    w("```")
    import re
    seen = []
    for c in R["commands"]:
        short = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", c.replace(PY, "python3"))
        short = re.sub(r"--port \d+", "--port PORT", short)
        short = short.replace(HERE + "/", "bench/")
        short = re.sub(r"--users (\w+?)\d+(,\w+?\d+)+", lambda m: "--users %s0..%s%d" % (
            m.group(1), m.group(1), m.group(0).count(",")), short)
        if short not in seen:
            seen.append(short)
    for c in seen[:400]:
        w(c if len(c) < 400 else c[:400] + " ...")
    w("```")
    with open(path_md, "w") as f:
        f.write("\n".join(L) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=0)
    ap.add_argument("--yubin", default=os.path.join(os.path.dirname(HERE), "build", "yubin"))
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--skip", default="")
    ap.add_argument("--idle-timeout", type=float, default=420,
                    help="seconds a server gets to open the IDLE connections")
    ap.add_argument("--label", default="", help="what to call the yubin build in the results")
    a = ap.parse_args()
    a.yubin = os.path.abspath(a.yubin)
    runs = a.runs or (1 if a.quick else 3)
    skip = set(a.skip.split(",")) - {""}
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 25000 and not a.quick:
        log("fd limit %d: raising it for the 10,000-connection test" % hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))
        except (ValueError, OSError):
            pass
    started = time.monotonic()
    R = {"date": datetime.date.today().isoformat(), "quick": a.quick, "runs": runs,
         "yubin_bin": os.path.relpath(a.yubin, os.path.dirname(HERE)),
         "machine": machine(), "busy_before": cpu_busy_sample(2), "others": other_load(),
         "notes": [
             "Durability: yubin answers 250 / +OK / OK only after its data is on stable "
             "storage (fsync; DESIGN.md); Postfix runs with its defaults (cleanup fsyncs "
             "the queue file before smtpd's 250; virtual(8) fsyncs each Maildir file); "
             "Dovecot with its default mail_fsync = optimized. smtp-sink stores nothing.",
             "Postfix: private instance (own config_directory, queue_directory), no chroot, "
             "smtpd on a loopback high port, smtpd_peername_lookup = no, default, relay "
             "and local transports error, virtual(8) into Maildir. Dovecot: private "
             "instance (-c, own base_dir and state_dir), passwd-file with {PLAIN} "
             "passwords, Maildir, ssl = no, imap-login and pop3-login in high-performance "
             "mode (service_count = 0), one imap/pop3 process per connection (its "
             "default). yubin: `yubin serve`, io_threads = 0 (one per core), "
             "max_connections and max_connections_per_ip 0, Argon2id passwords with its "
             "default 60 s verified-password cache, no SPF, DKIM or DMARC checks "
             "([mailauth] off: the peers make none by default, and this machine's "
             "resolver has no Internet to answer them).",
             "Mailboxes: the same generated messages (mailload.gen_messages, fixed seed; "
             "median about 5 KB, a sixth with a base64 attachment) reach yubin by SMTP "
             "and Dovecot as Maildir files (LF line ends), its import path. Each POP3 "
             "and IMAP user is logged in once before the timing (Dovecot builds its "
             "index there; yubin fills its password cache).",
             "All load generators and all servers share the machine's cores.",
         ]}
    work = tempfile.mkdtemp(prefix="yubin-bench-", dir="/tmp")
    os.chmod(work, 0o755)
    log("work dir %s, runs %d%s" % (work, runs, ", QUICK" if a.quick else ""))
    smtp_users = ["s%dk%d" % (s, z // 1024) for s in SMTP_SESSIONS for z in SMTP_SIZES]
    pop_users = ["pop%d" % i for i in range(100)]
    imap_users = ["imap%d" % i for i in range(IMAP_USERS)]
    everyone = smtp_users + pop_users + imap_users
    y = Yubin(a.yubin, work, [])
    y.add_users(everyone[:1])
    # the rest with the hash the first got (the Argon2id cost once)
    db = sqlite3.connect(os.path.join(y.dir, "data", "yubin.db"))
    h = db.execute("SELECT password FROM accounts").fetchone()[0]
    db.close()
    for u in everyone[1:]:
        y.cli("user", "add", "--hash", "%s@%s" % (u, DOMAIN), input=(h + "\n").encode())
    p = Postfix(work, smtp_users)
    d = Dovecot(work, everyone)
    sink = Sink(work)
    servers = [y, p, d, sink]
    try:
        for s in servers:
            s.start()
        R["versions"] = {"yubin": a.label or y.version(), "postfix": p.version(), "dovecot": d.version()}
        log("versions: %s" % R["versions"])
        if "smtp" not in skip:
            R["smtp"] = bench_smtp([y, p, sink], runs, a.quick)
        if "pop3" not in skip:
            R["pop3"] = bench_pop3(y, d, runs, a.quick)
        if "imap" not in skip or "idle" not in skip:
            populate_imap(y, d, a.quick)
        if "imap" not in skip:
            R["imap"] = bench_imap(y, d, runs, a.quick)
            trivial = os.path.join(HERE, "trivial_imapd.py")
            if os.path.exists(trivial):
                R["imap_trivial"] = check_loadgen(R["imap"], R["imap"][-1]["seconds"])
        if "idle" not in skip:
            R["idle"] = bench_idle(y, d, a.quick, a.idle_timeout)
            R["notes"] += IDLE_NOTES
    finally:
        for s in servers:
            s.stop()
    if "startup" not in skip:
        R["startup"] = bench_startup(a.yubin, work, runs)
    R["busy_after"] = cpu_busy_sample(2)
    R["duration_s"] = time.monotonic() - started
    R["commands"] = COMMANDS
    os.makedirs(a.out, exist_ok=True)
    base = os.path.join(a.out, R["date"] + ("-quick" if a.quick else ""))
    stem, k = base, 1
    while os.path.exists(stem + ".md") or os.path.exists(stem + ".json"):
        k += 1                          # a later run the same day: DATE-2, DATE-3...
        stem = "%s-%d" % (base, k)
    with open(stem + ".json", "w") as f:
        json.dump(R, f, indent=1)
    write_report(R, stem + ".md")
    with open(stem + ".md") as f:
        text = f.read()
    print(text[:text.find("## Commands")])
    log("wrote %s.md (%.1f minutes)" % (stem, R["duration_s"] / 60))
    shutil.rmtree(work, ignore_errors=True)


def check_loadgen(imap_res, seconds):
    """The IMAP generator against bench/trivial_imapd.py, at the largest
    client count the real servers were measured with."""
    from servers import free_port, wait_greeting
    port = free_port()
    srv = subprocess.Popen([PY, os.path.join(HERE, "trivial_imapd.py"), str(port)])
    try:
        wait_greeting(port, b"* OK")
        n = imap_res[-1]["clients"]
        users = ",".join("imap%d" % i for i in range(n))
        out = loadgen("imap", "--port", port, "--users", users, "--seconds", seconds,
                      "--seed", 1)
    finally:
        srv.terminate()
        srv.wait()
    best = max(med([o["ops_s"] for o in v]) for v in imap_res[-1]["figures"].values())
    log("load generator check: %.0f ops/s against the trivial server with %d clients "
        "(generator CPU %.0f%%); best real server %.0f ops/s"
        % (out["ops_s"], n, 100 * out["client_cpu"], best))
    return {"clients": n, "ops_s": out["ops_s"], "client_cpu": out["client_cpu"],
            "best_real": best}


if __name__ == "__main__":
    main()
