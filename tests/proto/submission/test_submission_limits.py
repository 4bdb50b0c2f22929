"""Per-user sending limits ([limits] submission_messages_per_hour,
submission_max_recipients) and login throttling (auth_fail_delay,
auth_lock_failures, auth_lock_time)."""

import re
import time

import pytest

from yubintest import PASSWORD, unique, sasl_plain, dot_stuff
from subtest import SHIRO, KURO, plain_session, tls_session, auth_plain, login, \
    scram_auth, submit, msg_from, make_server, provision_small

HITSUJI = "hitsuji@example.com"
USHI = "ushi@example.com"


@pytest.fixture(scope="module")
def limited(module_yubin_factory):
    return make_server(module_yubin_factory, {"limits": {
        "submission_messages_per_hour": "2",
        "submission_max_recipients": "2",
    }}, provision=provision_small)


def test_messages_per_hour(limited):
    subjects = [unique("hour") for _ in range(2)]
    r = login(plain_session(limited), HITSUJI)
    for subject in subjects:
        rep = submit(r, HITSUJI, [KURO], msg_from(subject, HITSUJI, to=KURO))
        assert rep.code == 250, rep
    rep = r.cmd("MAIL FROM:<%s>" % HITSUJI)
    assert (rep.code, rep.enh) == (451, "4.7.1"), rep
    r.close()
    # The first two were stored.
    for subject in subjects:
        assert len(limited.find_mail(KURO, subject)) == 1, subject
    # The limit is the user's, not the connection's: 465 too, null sender too.
    r = login(tls_session(limited), HITSUJI)
    rep = r.cmd("MAIL FROM:<>")
    assert (rep.code, rep.enh) == (451, "4.7.1"), rep
    r.close()
    # Somebody else may still send.
    r = login(plain_session(limited), USHI)
    subject = unique("hour-other")
    assert submit(r, USHI, [KURO], msg_from(subject, USHI, to=KURO)).code == 250
    r.close()


def test_max_recipients(limited):
    subject = unique("rcpts")
    r = login(plain_session(limited), SHIRO)
    assert r.cmd("MAIL FROM:<%s>" % SHIRO).code == 250
    assert r.cmd("RCPT TO:<%s>" % KURO).code == 250
    assert r.cmd("RCPT TO:<%s>" % HITSUJI).code == 250
    rep = r.cmd("RCPT TO:<%s>" % USHI)
    assert (rep.code, rep.enh) == (451, "4.7.1"), rep
    rep = r.cmd("RCPT TO:<someone@remote.example>")
    assert (rep.code, rep.enh) == (451, "4.7.1"), rep
    assert r.cmd("DATA").code == 354
    r.send(dot_stuff(msg_from(subject, SHIRO, to=KURO)))
    assert r.reply().code == 250
    # The count starts again with the next transaction.
    assert r.cmd("MAIL FROM:<%s>" % SHIRO).code == 250
    assert r.cmd("RCPT TO:<%s>" % USHI).code == 250
    assert r.cmd("RSET").code == 250
    r.close()
    assert len(limited.find_mail(KURO, subject)) == 1
    assert len(limited.find_mail(HITSUJI, subject)) == 1
    assert limited.find_mail(USHI, subject) == []


def test_port_25_not_limited(limited):
    # The submission limits are for our users' sending; port 25 keeps its
    # own (max_recipients = 100 in the test config).
    r = limited.session()
    assert r.cmd("MAIL FROM:<x@remote.example>").code == 250
    for rcpt in (SHIRO, KURO, HITSUJI, USHI):
        rep = r.cmd("RCPT TO:<%s>" % rcpt)
        assert rep.code == 250, (rcpt, rep)
    r.close()


# ---- login throttling ----

LOCK = {"limits": {"auth_fail_delay": "0", "auth_lock_failures": "3",
                   "auth_lock_time": "3s"}}


def wait_log(inst, pattern, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        lines = [l for l in inst.log_text().splitlines() if re.search(pattern, l)]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_lock_after_failures(yubin_factory):
    srv = make_server(yubin_factory, LOCK, provision=provision_small)
    r = plain_session(srv)
    for _ in range(3):
        rep = auth_plain(r, SHIRO, "wrong password")
        assert (rep.code, rep.enh) == (535, "5.7.8"), rep
    locked_at = time.monotonic()
    # Locked: the right password fails too, with the same answer, on any
    # connection and with any mechanism.
    rep = auth_plain(r, SHIRO)
    assert (rep.code, rep.enh) == (535, "5.7.8"), rep
    r.close()
    r = tls_session(srv)
    rep, _c, server_final = scram_auth(r, SHIRO)
    assert server_final is None, "SCRAM exchange completed during the lock"
    assert rep.code == 535, rep
    r.close()

    time.sleep(max(0, locked_at + 3.5 - time.monotonic()))
    r = plain_session(srv)
    rep = auth_plain(r, SHIRO)
    assert (rep.code, rep.enh) == (235, "2.7.0"), "still locked after the lock time: %r" % rep
    r.close()

    failed = wait_log(srv, r"event=auth_failed\b")
    assert failed, srv.log()
    assert any("ip=127.0.0.1" in l and "protocol=smtp" in l and SHIRO in l
               for l in failed), failed
    assert wait_log(srv, r"event=auth_lock\b"), srv.log()
    assert PASSWORD not in srv.log_text()
    assert "wrong password" not in srv.log_text()


def test_no_lock_when_disabled(limited):
    # auth_lock_failures = 0 on this server (and auth_fail_delay = 0).
    srv = limited
    user = "unlocked@example.com"
    srv.add_user(user)
    since = len(srv.log_text().splitlines())
    for _ in range(2):
        # More failures than the default lock (10), fewer than max_errors
        # (10) per connection.
        r = plain_session(srv)
        for _ in range(6):
            assert auth_plain(r, user, "wrong").code == 535
        r.close()
    r = plain_session(srv)
    assert auth_plain(r, user).code == 235
    r.close()
    log = "\n".join(srv.log_text().splitlines()[since:])
    assert "event=auth_failed" in log
    assert "event=auth_lock" not in log


def test_fail_delay(yubin_factory):
    srv = make_server(yubin_factory, {"limits": {"auth_fail_delay": "400",
                                                 "auth_lock_failures": "0"}},
                      provision=provision_small)
    r = plain_session(srv)
    line = ("AUTH PLAIN %s\r\n" % sasl_plain(SHIRO, "wrong")).encode()
    start = time.monotonic()
    r.send(line)
    rep = r.reply()
    elapsed = time.monotonic() - start
    assert (rep.code, rep.enh) == (535, "5.7.8"), rep
    assert elapsed >= 0.38, "wrong password answered after %.3f s" % elapsed
    # An unknown user waits just as long.
    start = time.monotonic()
    rep = auth_plain(r, "nobody-here@example.com", "wrong")
    elapsed = time.monotonic() - start
    assert rep.code == 535, rep
    assert elapsed >= 0.38, "unknown user answered after %.3f s" % elapsed
    # The delay is no lock: the right password still works.
    assert auth_plain(r, SHIRO).code == 235
    r.close()
