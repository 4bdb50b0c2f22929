"""`yubin serve` as a process: the user it runs as, refusing to run as
root, stopping on SIGINT as on SIGTERM, a data folder its user cannot
reach."""

import os
import pwd
import signal
import socket
import subprocess

import pytest

import yubintest
from yubintest import make_msg, unique, send_data

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def proc_ids(pid):
    """{"Uid": [real, effective, saved, fs], "Gid": [...], "Groups": [...]}."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                out[key] = [int(x) for x in value.split()]
    return out


def serve_once(inst, timeout=10):
    """Runs `yubin serve` expecting it to exit by itself."""
    return subprocess.run([yubintest.YUBIN_BIN, "-c", inst.conf, "serve"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          cwd=inst.dir, env=yubintest.sanitizer_env(), timeout=timeout)


def port_is_free(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@as_root
def test_serve_runs_as_configured_user(yubin_factory):
    srv = yubin_factory(overrides={"server": {"user": "nobody"}},
                        provision=yubintest.provision_standard)
    pw = pwd.getpwnam("nobody")
    ids = proc_ids(srv.proc.pid)
    assert ids["Uid"] == [pw.pw_uid] * 4, ids
    assert ids["Gid"] == [pw.pw_gid] * 4, ids
    assert 0 not in ids["Groups"], ids
    # It serves, and what it writes belongs to that user.
    subject = unique("uid")
    rep = send_data(srv.session(), "a@example.org", ["ushi@example.com"],
                    make_msg(subject, to="ushi@example.com"))
    assert rep.code == 250, rep
    assert [r for r in srv.mail_list("ushi@example.com") if r.subject == subject]
    for root, dirs, files in os.walk(srv.data_dir):
        for name in dirs + files:
            st = os.lstat(os.path.join(root, name))
            assert (st.st_uid, st.st_gid) == (pw.pw_uid, pw.pw_gid), \
                "%s belongs to %d:%d" % (os.path.join(root, name), st.st_uid, st.st_gid)


@as_root
def test_serve_refuses_root_without_user(yubin_factory):
    inst = yubin_factory(overrides={"server": {"user": None}}, start=False)
    p = serve_once(inst)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert inst.conf in p.stderr, p.stderr
    assert "[server] user" in p.stderr and "root" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert port_is_free(inst.port), "a port was bound before refusing"
    # The CLI says the same.
    rc, _, err = inst.cli("domain", "list")
    assert rc == 2 and inst.conf in err and "[server] user" in err, (rc, err)


@as_root
def test_data_dir_not_reachable_by_user(yubin_factory):
    """A data folder under a folder the user cannot enter (a checkout in
    /root, mode 0700): one line that names the user and the path."""
    inst = yubin_factory(overrides={"server": {"user": "nobody"}}, start=False)
    os.chmod(inst.dir, 0o700)
    try:
        p = serve_once(inst)
        assert p.returncode != 0, p.stderr
        want = "data_dir %s is not reachable by [server] user nobody" % inst.data_dir
        assert want in p.stderr, p.stderr
        assert port_is_free(inst.port)
        rc, _, err = inst.cli("domain", "list")
        assert rc != 0 and want in err, (rc, err)
    finally:
        os.chmod(inst.dir, 0o755)
    # With the way open, both work.
    rc, _, err = inst.cli("domain", "list")
    assert rc == 0, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_signal_stops_cleanly(yubin_factory, sig):
    """Ctrl-C (SIGINT) stops the server like SIGTERM: exit 0, a stopping
    and a stopped line, open sessions closed, the mail kept."""
    srv = yubin_factory(provision=yubintest.provision_standard)
    subject = unique("sig")
    rep = send_data(srv.session(), "a@example.org", ["hitsuji@example.com"],
                    make_msg(subject, to="hitsuji@example.com"))
    assert rep.code == 250, rep
    idle = srv.session()
    half = srv.session()
    assert half.cmd("MAIL FROM:<a@example.org>").code == 250
    rc = srv.stop(sig)
    assert rc == 0, "exit %r after %s\n%s" % (rc, sig.name, srv.log())
    log = srv.log_text()
    name = sig.name[3:]
    assert "event=stopping signal=%s" % name in log, log
    assert log.rstrip().splitlines()[-1].endswith("event=stopped"), log
    srv.check_log()
    assert idle.is_closed(timeout=2, drain=True)
    assert half.is_closed(timeout=2, drain=True)
    assert [r for r in srv.mail_list("hitsuji@example.com") if r.subject == subject]
    srv.start()
    assert srv.session().cmd("NOOP").code == 250
