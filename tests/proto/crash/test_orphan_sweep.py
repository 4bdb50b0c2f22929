"""Start-up removes body files no row names (what a kill between a body's
rename into msg/ and its COMMIT leaves, see test_crash_smtp.py), and the
empty buckets of past hours; it keeps every body a row names. The CLI,
which may run beside a server, never removes any; a second server on the
same data_dir is refused."""

import os
import re
import subprocess
import time

import yubintest
from yubintest import make_msg, send_data, split_stored, unique

RCPT = "shiroyagi@example.com"


def utc_hour():
    return time.strftime("%Y%m%d%H", time.gmtime())


def plant(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def test_start_removes_orphan_bodies_and_keeps_the_rest(yubin_factory):
    srv = yubin_factory(provision=yubintest.provision_standard)
    subject = unique("kept")
    msg = make_msg(subject, body=b"still here\r\n" * 100)
    r = srv.session()
    rep = send_data(r, "o@example.org", [RCPT], msg)
    assert rep.code == 250, rep
    r.close()
    (kept,) = srv.msg_files()
    bucket = os.path.dirname(kept)
    msg_dir = os.path.join(srv.data_dir, "msg")

    # Planted while the server runs: a body like the one a kill leaves (a
    # queue id no row has, beside a kept body), a file straight in msg/, a
    # past bucket holding only an orphan, empty buckets past and future.
    orphan = os.path.join(bucket, "0000000001ABCDEF")
    plant(orphan, b"Received: from x\r\n" + make_msg(unique("orphan")))
    stray = os.path.join(msg_dir, "stray")
    plant(stray, b"x")
    old_orphan = os.path.join(msg_dir, "2000010100", "0000000002ABCDEF")
    plant(old_orphan, b"y")
    old_empty = os.path.join(msg_dir, "2000010101")
    future_empty = os.path.join(msg_dir, "2999123123")
    os.mkdir(old_empty)
    os.mkdir(future_empty)
    # Not a body: a folder inside a bucket is left alone.
    odd_dir = os.path.join(bucket, "not-a-body")
    os.mkdir(odd_dir)

    # The CLI beside the running server reads and removes nothing.
    assert [row.subject for row in srv.mail_list(RCPT)] == [subject]
    for p in (orphan, stray, old_orphan, old_empty, future_empty):
        assert os.path.exists(p), p

    srv.stop_clean()
    # Stopped: the CLI (store_open without the writer) still removes nothing.
    assert [row.subject for row in srv.mail_list(RCPT)] == [subject]
    assert os.path.exists(orphan) and os.path.exists(old_orphan)
    # An empty bucket of this hour stays (it is where new mail goes).
    hour = utc_hour()
    this_hour = os.path.join(msg_dir, hour)
    made_this_hour = not os.path.exists(this_hour)
    if made_this_hour:
        os.mkdir(this_hour)

    srv.start()
    for p in (orphan, stray, old_orphan, old_empty):
        assert not os.path.exists(p), "%s survived the start-up sweep" % p
    assert os.path.exists(kept)
    assert os.path.isdir(future_empty) and os.path.isdir(odd_dir)
    if made_this_hour and utc_hour() == hour:
        assert os.path.isdir(this_hour)
    log = srv.log_text()
    counts = re.findall(r"event=orphan_bodies_removed count=(\d+)", log)
    assert counts == ["3"], counts
    assert "event=empty_buckets_removed count=2" in log

    # The kept message is whole, through the CLI and after the sweep.
    (row, stored), = srv.find_mail(RCPT, subject)
    assert split_stored(stored)[1] == msg
    # And new mail still goes in.
    subject2 = unique("after")
    r = srv.session()
    assert send_data(r, "o@example.org", [RCPT], make_msg(subject2)).code == 250
    r.close()
    assert len(srv.find_mail(RCPT, subject2)) == 1

    # A clean restart with nothing to remove logs nothing more.
    srv.restart()
    counts = re.findall(r"event=orphan_bodies_removed count=(\d+)", srv.log_text())
    assert counts == ["3"], counts
    assert len(srv.find_mail(RCPT, subject)) == 1


def test_second_server_on_the_same_data_dir_is_refused(yubin_factory):
    srv = yubin_factory(provision=yubintest.provision_standard)
    other = yubin_factory(start=False, overrides={
        "server": {"data_dir": srv.data_dir}})
    p = subprocess.run([yubintest.YUBIN_BIN, "-c", other.conf, "serve"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, cwd=other.dir, env=yubintest.sanitizer_env(),
                       timeout=yubintest.START_TIMEOUT)
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode != 0, err
    assert "in use by another yubin serve" in err, err
    assert not yubintest.sanitizer_lines(err), err
    # The first one was not disturbed.
    subject = unique("first")
    r = srv.session()
    assert send_data(r, "o@example.org", [RCPT], make_msg(subject)).code == 250
    r.close()
    assert len(srv.find_mail(RCPT, subject)) == 1
    # Once it is gone, the folder is free.
    srv.stop_clean()
    other.start()
    assert len(other.find_mail(RCPT, subject)) == 1
