"""The shared login throttling and the verified-credential cache of
auth/auth.c (M2 items 3 and 4), seen from the outside:

- a password just verified is accepted again without the slow hash check
  (a hash made deliberately slow shows it: the second login is quick only
  when the cache is on);
- the failure delay doubles with each failure, up to auth_fail_delay_max;
- a success resets the counters (failures no longer add up to a lock);
- per-IP and per-account locks are separate, and one earned over SMTP
  holds over IMAP and POP3 too (the counters are shared by protocols).

Clients come from several loopback addresses (127.0.0.2, ...) to tell the
per-IP counters apart; Linux answers on all of 127/8 without setup."""

import ctypes
import ctypes.util
import re
import socket
import time

import pytest

import yubintest
from yubintest import PASSWORD, sasl_plain

SHIRO = "shiroyagi@example.com"
KURO = "kuroyagi@example.com"
SLOW = "slow@example.com"
SLOW_PASSWORD = "slow but sure"
IO = 30.0


def slow_argon2id(password, opslimit=16, memlimit=64 << 20):
    """An Argon2id hash (libsodium's format) far costlier than yubin's
    own, at the most yubin accepts (t * m = 1 GiB): about half a second
    to verify. Made with libsodium through ctypes."""
    name = ctypes.util.find_library("sodium")
    assert name is not None, "libsodium not found (a build dependency)"
    lib = ctypes.CDLL(name)
    assert lib.sodium_init() >= 0
    out = ctypes.create_string_buffer(128)
    pw = password.encode()
    # crypto_pwhash_ALG_ARGON2ID13 = 2
    rc = lib.crypto_pwhash_str_alg(out, pw, ctypes.c_ulonglong(len(pw)),
                                   ctypes.c_ulonglong(opslimit),
                                   ctypes.c_size_t(memlimit), ctypes.c_int(2))
    assert rc == 0
    return out.value.decode()


def provision(inst):
    inst.add_domain("example.com")
    inst.add_user(SHIRO)
    inst.add_user(KURO)


def server(factory, **limits):
    lim = {"auth_fail_delay": "0", "auth_lock_failures": "0", "auth_cache_time": "60s"}
    lim.update(limits)
    ov = {
        "submission": {"listen": "127.0.0.1:%d" % yubintest.free_port()},
        "imap": {"listen": "127.0.0.1:%d" % yubintest.free_port()},
        "pop3": {"listen": "127.0.0.1:%d" % yubintest.free_port()},
        "limits": lim,
    }
    return factory(ov, provision=provision)


def connect(inst, section, src):
    s = socket.create_connection(("127.0.0.1", inst.listener_port(section)),
                                 timeout=IO, source_address=(src, 0))
    return s.makefile("rwb", buffering=0), s


def smtp_login(inst, user, password, src="127.0.0.1"):
    """AUTH PLAIN on the submission port; returns the reply code."""
    f, s = connect(inst, "submission", src)
    try:
        assert f.readline().startswith(b"220")
        f.write(b"EHLO client.test.example\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        f.write(b"AUTH PLAIN " + sasl_plain(user, password).encode() + b"\r\n")
        return int(f.readline()[:3])
    finally:
        s.close()


def imap_login(inst, user, password, src="127.0.0.1"):
    """LOGIN; returns "OK" or "NO" (or whatever came)."""
    f, s = connect(inst, "imap", src)
    try:
        assert f.readline().startswith(b"* OK")
        f.write(b'a LOGIN "%s" "%s"\r\n' % (user.encode(), password.encode()))
        while True:
            line = f.readline()
            assert line, "connection closed"
            if line.startswith(b"a "):
                return line.split()[1].decode()
    finally:
        s.close()


def pop3_login(inst, user, password, src="127.0.0.1"):
    """USER and PASS; returns True if logged in."""
    f, s = connect(inst, "pop3", src)
    try:
        assert f.readline().startswith(b"+OK")
        f.write(b"USER %s\r\n" % user.encode())
        assert f.readline().startswith(b"+OK")
        f.write(b"PASS %s\r\n" % password.encode())
        return f.readline().startswith(b"+OK")
    finally:
        s.close()


def timed(fn, *args, **kw):
    t0 = time.monotonic()
    r = fn(*args, **kw)
    return r, time.monotonic() - t0


@pytest.mark.parametrize("cache", ["60s", "0"])
def test_cache_skips_the_slow_check(yubin_factory, cache):
    srv = server(yubin_factory, auth_cache_time=cache)
    srv.cli_ok("user", "add", "--hash", SLOW, input=slow_argon2id(SLOW_PASSWORD) + "\n")
    code, first = timed(smtp_login, srv, SLOW, SLOW_PASSWORD)
    assert code == 235
    assert first >= 0.3, "the slow hash verified in %.3f s: not slow enough " \
        "to tell a cache hit" % first
    # Again, a new connection, same password: from the cache, or not.
    code, second = timed(smtp_login, srv, SLOW, SLOW_PASSWORD)
    assert code == 235
    # Another protocol shares the cache.
    ok, third = timed(imap_login, srv, SLOW, SLOW_PASSWORD)
    assert ok == "OK"
    if cache == "0":
        assert second >= first / 3 and third >= first / 3, (first, second, third)
    else:
        assert second < first / 4, "second login %.3f s, first %.3f s: no cache hit" \
            % (second, first)
        assert third < first / 4, (first, third)
    # A wrong password is never taken from the cache: it costs the check.
    code, wrong = timed(smtp_login, srv, SLOW, "not it")
    assert code == 535
    assert wrong >= first / 3, (first, wrong)
    # A changed password takes effect at once: the cached one no longer works.
    srv.cli_ok("user", "passwd", SLOW, input="new one\n")
    assert smtp_login(srv, SLOW, SLOW_PASSWORD) == 535
    assert smtp_login(srv, SLOW, "new one") == 235


def fail_delays(srv, since):
    lines = srv.log_text().splitlines()[since:]
    return [int(m.group(1)) for m in
            (re.search(r"event=auth_failed .*delay_ms=(\d+)", l) for l in lines) if m]


def test_delay_doubles_up_to_the_max(yubin_factory):
    srv = server(yubin_factory, auth_fail_delay="100", auth_fail_delay_max="700")
    since = len(srv.log_text().splitlines())
    took = []
    for _ in range(5):
        code, t = timed(smtp_login, srv, SHIRO, "wrong")
        assert code == 535
        took.append(t)
    assert fail_delays(srv, since) == [100, 200, 400, 700, 700], srv.log()
    # The answers really wait that long.
    for want, t in zip([0.1, 0.2, 0.4, 0.7, 0.7], took):
        assert t >= want * 0.9, (want, took)
    # A success resets the counters: the next failure waits the least again.
    assert smtp_login(srv, SHIRO, PASSWORD) == 235
    since = len(srv.log_text().splitlines())
    code, t = timed(smtp_login, srv, SHIRO, "wrong")
    assert code == 535
    assert fail_delays(srv, since) == [100], srv.log()


def test_success_resets_failures(yubin_factory):
    srv = server(yubin_factory, auth_lock_failures="3", auth_lock_time="60s")
    for _ in range(3):
        # Two failures, then a success: never three in a row, never locked,
        # though six failures add up over the rounds.
        assert smtp_login(srv, SHIRO, "wrong") == 535
        assert imap_login(srv, SHIRO, "wrong") == "NO"
        assert pop3_login(srv, SHIRO, PASSWORD)
    assert "event=auth_lock" not in srv.log_text()
    # Three in a row do lock, which shows the count above was real.
    for _ in range(3):
        assert smtp_login(srv, SHIRO, "wrong") == 535
    assert smtp_login(srv, SHIRO, PASSWORD) == 535
    assert "event=auth_lock key=user:%s" % SHIRO in srv.log_text()


def test_ip_and_account_locks_are_separate_and_shared(yubin_factory):
    srv = server(yubin_factory, auth_lock_failures="3", auth_lock_time="60s")
    # Per IP: three failures from 127.0.0.2, each for another name (no
    # account gets more than one), over SMTP.
    for i in range(3):
        assert smtp_login(srv, "ghost%d@example.com" % i, "wrong", src="127.0.0.2") == 535
    assert "event=auth_lock key=ip:127.0.0.2" in srv.log_text()
    # That IP is locked for every account and every protocol...
    assert smtp_login(srv, SHIRO, PASSWORD, src="127.0.0.2") == 535
    assert imap_login(srv, SHIRO, PASSWORD, src="127.0.0.2") == "NO"
    assert not pop3_login(srv, SHIRO, PASSWORD, src="127.0.0.2")
    # ...and the account is not: from elsewhere it logs in.
    assert smtp_login(srv, SHIRO, PASSWORD, src="127.0.0.1") == 235

    # Per account: one failure for kuroyagi from each of three addresses
    # (no address gets more than one), over SMTP.
    for src in ("127.0.0.3", "127.0.0.4", "127.0.0.5"):
        assert smtp_login(srv, KURO, "wrong", src=src) == 535
    assert "event=auth_lock key=user:%s" % KURO in srv.log_text()
    # The account is locked from any address, over any protocol, even with
    # the right password...
    assert smtp_login(srv, KURO, PASSWORD, src="127.0.0.6") == 535
    assert imap_login(srv, KURO, PASSWORD, src="127.0.0.6") == "NO"
    assert not pop3_login(srv, KURO, PASSWORD, src="127.0.0.7")
    # ...while those addresses are not: another account logs in from them.
    assert imap_login(srv, SHIRO, PASSWORD, src="127.0.0.3") == "OK"
    assert pop3_login(srv, SHIRO, PASSWORD, src="127.0.0.4")
    # Every failure was logged with its IP and protocol.
    log = srv.log_text()
    for proto, src in (("smtp", "127.0.0.2"), ("imap", "127.0.0.2"), ("pop3", "127.0.0.2"),
                       ("smtp", "127.0.0.3"), ("imap", "127.0.0.6"), ("pop3", "127.0.0.7")):
        assert re.search(r"event=auth_failed protocol=%s ip=%s " % (proto, re.escape(src)),
                         log), (proto, src)
