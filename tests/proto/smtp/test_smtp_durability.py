"""250 means on stable storage: SIGKILL right after it loses nothing; a
clean SIGTERM drops only what was never acknowledged."""

import signal
import threading
import time

import yubintest
from yubintest import make_msg, dot_stuff, unique, send_data, split_stored


def test_sigkill_after_250_loses_nothing(yubin_factory):
    srv = yubin_factory(provision=yubintest.provision_standard)
    subject = unique("durable")
    msg = make_msg(subject, body=b"keep me\r\n" * 1000)
    r = srv.session()
    rep = send_data(r, "d@example.org", ["shiroyagi@example.com", "kuroyagi@example.com"], msg)
    assert (rep.code, rep.enh) == (250, "2.0.0"), rep
    srv.kill()
    r.close()
    # Readable with the server down ...
    (row, stored), = srv.find_mail("shiroyagi@example.com", subject)
    assert split_stored(stored)[1] == msg
    # ... and after a restart.
    srv.start()
    for u in ("shiroyagi@example.com", "kuroyagi@example.com"):
        (row, stored), = srv.find_mail(u, subject)
        assert split_stored(stored)[1] == msg
    old_uid = row.uid
    # The restarted server takes mail, and UIDs keep growing (never reused).
    subject2 = unique("after")
    r = srv.session()
    assert send_data(r, "d@example.org", ["kuroyagi@example.com"], make_msg(subject2)).code == 250
    r.close()
    (row2, _), = srv.find_mail("kuroyagi@example.com", subject2)
    assert row2.uid > old_uid


def test_sigkill_after_many_parallel_250s(yubin_factory):
    # Group commit: many sessions finishing at once; every 250 is durable.
    srv = yubin_factory(provision=yubintest.provision_standard)
    base = unique("par")
    n = 16   # under the default per-IP connection limit
    results = [None] * n

    def client(i):
        try:
            r = srv.session()
            rep = send_data(r, "p%d@example.org" % i, ["hitsuji@example.com"],
                            make_msg("%s-%02d" % (base, i), body=b"x" * (i * 997) + b"\r\n"))
            results[i] = rep.code
            r.close()
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = repr(e)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    acked = [i for i in range(n) if results[i] == 250]
    srv.kill()
    assert len(acked) == n, [(i, x) for i, x in enumerate(results) if x != 250]
    subjects = {x.subject for x in srv.mail_list("hitsuji@example.com")}
    missing = [i for i in acked if "%s-%02d" % (base, i) not in subjects]
    assert missing == [], "acknowledged but lost after SIGKILL: %r" % missing
    rows = [x for x in srv.mail_list("hitsuji@example.com") if x.subject.startswith(base)]
    assert len(rows) == n, "duplicates or losses: %d rows" % len(rows)
    srv.start()
    assert len([x for x in srv.mail_list("hitsuji@example.com")
                if x.subject.startswith(base)]) == n


def test_sigterm_mid_data(yubin_factory):
    srv = yubin_factory(provision=yubintest.provision_standard)
    base = unique("term")
    before = srv.msg_files()
    r = srv.session()
    for i in range(3):
        rep = send_data(r, "t@example.org", ["ushi@example.com"], make_msg("%s-ok%d" % (base, i)))
        assert rep.code == 250, rep
    # Another client is in the middle of DATA when the server is told to stop.
    p = srv.session()
    assert p.cmd("MAIL FROM:<partial@example.org>").code == 250
    assert p.cmd("RCPT TO:<ushi@example.com>").code == 250
    assert p.cmd("DATA").code == 354
    p.send(("Subject: %s-partial\r\n\r\nhalf a mess" % base).encode())
    time.sleep(0.3)
    t0 = time.monotonic()
    rc = srv.stop(signal.SIGTERM)
    assert rc == 0, "exit status %r after SIGTERM\n%s" % (rc, srv.log())
    assert time.monotonic() - t0 < 10
    srv.check_log()
    # Both clients were disconnected.
    assert p.is_closed(timeout=3, drain=True)
    p.close()
    r.close()
    subjects = [x.subject for x in srv.mail_list("ushi@example.com")]
    for i in range(3):
        assert subjects.count("%s-ok%d" % (base, i)) == 1, subjects
    assert not any(s.endswith("-partial") for s in subjects), subjects
    assert len(srv.msg_files() - before) == 3
    # After a restart the partial message has not appeared either.
    srv.start()
    subjects = [x.subject for x in srv.mail_list("ushi@example.com")]
    assert not any(s.endswith("-partial") for s in subjects), subjects
    assert len(srv.msg_files() - before) == 3


def test_sigterm_with_idle_clients(yubin_factory):
    srv = yubin_factory(provision=yubintest.provision_standard)
    clients = [srv.session() for _ in range(5)]
    half = srv.raw(greet=False)  # connected, greeting unread
    t0 = time.monotonic()
    rc = srv.stop(signal.SIGTERM)
    assert rc == 0, "exit status %r\n%s" % (rc, srv.log())
    assert time.monotonic() - t0 < 10
    srv.check_log()
    for c in clients + [half]:
        assert c.is_closed(timeout=3, drain=True)
        c.close()


def test_restart_keeps_accounts_and_mail(yubin_factory):
    srv = yubin_factory(provision=yubintest.provision_standard)
    subject = unique("restart")
    r = srv.session()
    assert send_data(r, "x@example.org", ["team@example.com"], make_msg(subject)).code == 250
    r.close()
    srv.restart()
    r = srv.session()
    assert r.cmd("MAIL FROM:<x@example.org>").code == 250
    assert r.cmd("RCPT TO:<team@example.com>").code == 250
    assert r.cmd("RCPT TO:<nobody-here@example.com>").code == 550
    r.close()
    assert len(srv.find_mail("shiroyagi@example.com", subject)) == 1
    assert len(srv.find_mail("kuroyagi@example.com", subject)) == 1


def test_sigterm_right_after_listening(yubin_factory):
    # A supervisor may stop the server as soon as its port is open: that is
    # still a clean stop (exit 0), not death by signal.
    srv = yubin_factory(provision=yubintest.provision_standard, start=False)
    for _ in range(3):
        srv.start(wait_greeting=False)
        rc = srv.stop(signal.SIGTERM)
        assert rc == 0, "exit status %r after an early SIGTERM\n%s" % (rc, srv.log())
