"""Connection limits under abuse ([M8] item 3): 2,000 connections from one
process, connections over max_connections and over the per-IP limit, and a
server whose descriptor limit is smaller than its connection limit.

In every case the server keeps serving another client promptly, refuses
what is over a limit with the protocol's busy reply (SMTP 421, POP3
-ERR [SYS/TEMP], IMAP * BYE) rather than hanging or failing, and its memory
stays bounded (VmRSS from /proc, bounds below).
"""

import os
import resource
import selectors
import socket
import stat
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "imap"))
sys.path.insert(0, os.path.join(HERE, "..", "pop3"))

import imaptest  # noqa: E402
import poptest  # noqa: E402
import yubintest  # noqa: E402
from yubintest import make_msg, unique  # noqa: E402

N = 2000
# Bound on the server's growth for N idle sessions: 64 KiB each on
# average, 125 MiB for 2,000. Measured: about 3 KiB each for the
# optimized build and 6 KiB under AddressSanitizer; the margin is for
# socket buffers and allocator slack on other machines.
PER_CONN_KIB = 64


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return
    if hard < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))   # as root
    else:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= want


@pytest.fixture
def quarantine_env(monkeypatch):
    # AddressSanitizer keeps freed memory in a quarantine (256 MiB by
    # default) that would count as growth; 2 MiB still catches a recent
    # use-after-free. A build without ASan ignores it.
    base = os.environ.get("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    monkeypatch.setenv("ASAN_OPTIONS", base + ":quarantine_size_mb=2")


def all_overrides(**limits):
    ov = imaptest.imap_overrides(**limits)
    ov.update({k: v for k, v in poptest.pop3_overrides().items() if k != "limits"})
    return ov


def other_client_works(inst, within):
    """A full SMTP delivery and an IMAP login, SELECT and FETCH by a client
    that is not one of the crowd, within `within` seconds."""
    t0 = time.monotonic()
    subject = unique("crowd")
    with inst.smtp(timeout=within) as s:
        s.sendmail("alice@example.org", [imaptest.USER], make_msg(subject))
    c = imaptest.RawIMAP(inst, timeout=within)
    c.login()
    c.select()
    r = c.cmd("SEARCH SUBJECT %s" % subject)
    assert r.status == "OK" and r.untagged[0].raw.split()[2:], r
    c.close()
    took = time.monotonic() - t0
    assert took < within, "another client took %.1fs" % took
    return took


def wait_idle(inst, timeout=10):
    """Waits until the server has seen every connection so far close (the
    start-up probe and the provisioning clients hold a slot until then)."""
    deadline = time.monotonic() + timeout
    while True:
        text = inst.log_text()
        if text.count(" event=connect ") == text.count(" event=disconnect "):
            return
        assert time.monotonic() < deadline, "connections still open:\n" + inst.log()
        time.sleep(0.05)


def open_many(ports, n, timeout=60):
    """n connections spread over ports; returns them once each has its
    greeting (so each was accepted, not left in the backlog)."""
    socks = []
    for i in range(n):
        s = socket.socket()
        s.settimeout(timeout)
        s.connect(("127.0.0.1", ports[i % len(ports)]))
        s.setblocking(False)
        socks.append(s)
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    greeted = {}
    deadline = time.monotonic() + timeout
    while len(greeted) < n and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            try:
                data = key.fileobj.recv(4096)
            except BlockingIOError:
                continue
            greeted[key.fileobj] = data
            sel.unregister(key.fileobj)
    sel.close()
    return socks, greeted


def test_2000_connections_from_one_process(yubin_factory, quarantine_env):
    raise_nofile(2 * N + 200)
    inst = yubin_factory(all_overrides(max_connections=str(N + 100),
                                       max_connections_per_ip="0"),
                         provision=yubintest.provision_standard)
    pid = inst.proc.pid
    other_client_works(inst, 30)         # warm: store readers, auth pool
    base = rss_kib(pid)
    ports = [inst.port, inst.listener_port("imap"), inst.listener_port("pop3")]
    socks, greeted = open_many(ports, N)
    try:
        assert len(greeted) == N, "%d of %d connections greeted" % (len(greeted), N)
        bad = [g for g in greeted.values()
               if not g.startswith((b"220 ", b"* OK", b"+OK"))]
        assert not bad, bad[:5]
        took = other_client_works(inst, 10)
        grown = rss_kib(pid) - base
        print("%d connections: server grew by %d KiB (%.1f KiB each); another "
              "client served in %.2fs" % (N, grown, grown / N, took))
        assert grown < N * PER_CONN_KIB, \
            "%d KiB for %d idle connections (bound %d KiB)" % (grown, N, N * PER_CONN_KIB)
        # Each of them still works: a sample answers a command.
        ask = {ports[0]: (b"NOOP\r\n", b"250 "), ports[1]: (b"n NOOP\r\n", b"n OK"),
               ports[2]: (b"CAPA\r\n", b"+OK")}
        for s in socks[::97]:
            s.setblocking(True)
            line, want = ask[s.getpeername()[1]]
            s.sendall(line)
            got = s.recv(4096)
            assert got.startswith(want), (s.getpeername(), got)
    finally:
        for s in socks:
            s.close()
    assert inst.running(), inst.log()
    other_client_works(inst, 10)


def test_over_max_connections_refused_cleanly(yubin_factory):
    inst = yubin_factory(all_overrides(max_connections="30", max_connections_per_ip="0"),
                         provision=yubintest.provision_standard)
    wait_idle(inst)
    socks, greeted = open_many([inst.port], 30)
    try:
        assert len(greeted) == 30 and all(g.startswith(b"220 ") for g in greeted.values())
        for port, busy in ((inst.port, b"421 "), (inst.listener_port("pop3"), b"-ERR "),
                           (inst.listener_port("imap"), b"* BYE ")):
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            data = b""
            while True:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
            c.close()
            assert data.startswith(busy), (port, data)
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 10
    while True:   # the slots come back once the server saw the closes
        c = socket.create_connection(("127.0.0.1", inst.port), timeout=10)
        g = c.recv(4096)
        c.close()
        if g.startswith(b"220 ") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert g.startswith(b"220 "), g


def test_per_ip_limit(yubin_factory):
    inst = yubin_factory(all_overrides(max_connections_per_ip="5"),
                         provision=yubintest.provision_standard)
    wait_idle(inst)
    socks, greeted = open_many([inst.port], 5)
    try:
        assert all(g.startswith(b"220 ") for g in greeted.values()), greeted
        c = socket.create_connection(("127.0.0.1", inst.port), timeout=10)
        assert c.recv(4096).startswith(b"421 ")
        c.close()
        # Another loopback address is another client.
        c = socket.create_connection(("127.0.0.1", inst.port), timeout=10,
                                     source_address=("127.0.0.2", 0))
        assert c.recv(4096).startswith(b"220 ")
        c.close()
    finally:
        for s in socks:
            s.close()


def test_descriptor_limit_below_max_connections(yubin_factory, monkeypatch, tmp_path):
    """Started with only 256 descriptors and max_connections = 1000, the
    server says it lowers the limit to what fits, refuses the connections
    over it with 421 instead of running out of descriptors, does not spin
    while they wait, and serves again when they go."""
    wrapper = tmp_path / "yubin-256fds"
    wrapper.write_text("#!/bin/sh\nulimit -Sn 256 && ulimit -Hn 256 || exit 99\n"
                       "exec %s \"$@\"\n" % yubintest.YUBIN_BIN)
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setattr(yubintest, "YUBIN_BIN", str(wrapper))
    inst = yubin_factory(all_overrides(max_connections="1000", max_connections_per_ip="0"),
                         provision=yubintest.provision_standard)
    assert "event=max_connections_lowered configured=1000 used=64" in inst.log_text()
    wait_idle(inst)
    socks, greeted = open_many([inst.port], 64)
    extra = []
    try:
        assert len(greeted) == 64, len(greeted)
        assert all(g.startswith(b"220 ") for g in greeted.values()), greeted
        cpu0 = cpu_seconds(inst.proc.pid)
        for _ in range(20):
            c = socket.create_connection(("127.0.0.1", inst.port), timeout=10)
            assert c.recv(4096).startswith(b"421 ")
            extra.append(c)
        time.sleep(1)
        spent = cpu_seconds(inst.proc.pid) - cpu0
        assert spent < 0.8, "the server spent %.2fs of CPU refusing 20 clients" % spent
    finally:
        for s in socks + extra:
            s.close()
    time.sleep(0.5)
    other_client_works(inst, 20)

