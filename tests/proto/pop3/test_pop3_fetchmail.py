"""A real client: Debian's fetchmail downloads 200 messages over [pop3]
with STLS (certificate checked against the server's own), once keeping
them and once deleting them. Every delivered message must be byte for
byte what `yubin mail show` gives (the stored message: our trace fields
followed by exactly what was sent over SMTP).

fetchmail is run with `no stripcr` (keep CRLF), `no rewrite` (leave the
header alone) and `set invisible` (no Received: field of its own), so it
hands the MDA the message as RETR sent it, dot-stuffing undone."""

import glob
import os
import re
import shutil
import subprocess

import pytest

import yubintest
from poptest import PASSWORD, USER, deliver_many

COUNT = 200
FETCHMAIL = shutil.which("fetchmail")



@pytest.fixture(autouse=True)
def fetchmail_installed():
    """`make test` installs fetchmail (scripts/deps.sh): missing is a
    failure, not a reason to pass quietly."""
    assert FETCHMAIL is not None, "fetchmail is not installed (scripts/deps.sh test)"


def varied_messages(n):
    """n messages with the content that trips up POP3 code: lines of dots,
    8-bit bytes, long lines, no body, larger bodies, "From " lines."""
    out = []
    for i in range(n):
        kind = i % 6
        if kind == 0:
            body = b".\r\n..\r\n.starts with a dot\r\nmiddle\r\n.\r\n"
        elif kind == 1:
            body = "UTF-8 本文 %d\r\n".encode() % i + b"latin-1 caf\xe9 \xff\r\n"
        elif kind == 2:
            body = b"x" * 990 + b"\r\n" + b"." + b"y" * 989 + b"\r\n"
        elif kind == 3:
            body = b""
        elif kind == 4:
            body = b"".join(b"%sline %d of message %d\r\n" %
                            (b"From " if j % 7 == 0 else b"." if j % 5 == 0 else b"", j, i)
                            for j in range(1500))
        else:
            body = b"short %d\r\n" % i
        out.append(yubintest.make_msg("fm-%03d" % i, body=body,
                                      extra_headers=["Content-Type: text/plain; charset=utf-8",
                                                     "Content-Transfer-Encoding: 8bit"]))
    return out


def run_fetchmail(server, workdir, keep):
    """One fetchmail poll; returns the delivered messages (bytes)."""
    out = os.path.join(workdir, "out-%s" % ("keep" if keep else "delete"))
    os.makedirs(out)
    mda = os.path.join(workdir, "save.sh")
    with open(mda, "w") as f:
        f.write('#!/bin/sh\nexec cat > "$(mktemp "$1/m.XXXXXXXX")"\n')
    os.chmod(mda, 0o755)
    rc = os.path.join(workdir, "fetchmailrc")
    with open(rc, "w") as f:
        f.write('set no bouncemail\n'
                'set no syslog\n'
                'set invisible\n'
                'poll "%s" via 127.0.0.1 with proto POP3 port %d\n'
                '    user "%s" there with password "%s" is "%s" here\n'
                # sslproto without ssl: STLS, and TLS is required.
                '    sslproto "tls1.2+" sslcertck sslcertfile "%s" sslcommonname "%s"\n'
                '    %s fetchall no rewrite no stripcr\n'
                '    mda "%s %s"\n'
                % (yubintest.HOSTNAME, server.listener_port("pop3"), USER, PASSWORD,
                   os.environ.get("USER", "root"),
                   os.path.join(server.dir, "tls", "cert.pem"), yubintest.HOSTNAME,
                   "keep" if keep else "no keep", mda, out))
    os.chmod(rc, 0o600)
    env = dict(os.environ, FETCHMAILHOME=workdir, HOME=workdir)
    p = subprocess.run([FETCHMAIL, "-f", rc, "-v", "--nodetach",
                        "--idfile", os.path.join(workdir, "fetchids")],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=120)
    log = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, "fetchmail exited %d\n%s" % (p.returncode, log[-5000:])
    assert "POP3> STLS" in log and "POP3< +OK Begin TLS" in log, log[:3000]
    got = []
    for fn in glob.glob(os.path.join(out, "m.*")):
        with open(fn, "rb") as f:
            got.append(f.read())
    return got, log


def check_delivered(got, stored, sent):
    """got: fetchmail's messages; stored: {subject: mail show bytes} for
    some; sent: {subject: bytes sent over SMTP} for all."""
    assert len(got) == COUNT
    seen = set()
    for m in got:
        subject = re.search(rb"\r\nSubject: (fm-\d+)\r\n", m).group(1).decode()
        assert subject not in seen
        seen.add(subject)
        trace, rest = yubintest.split_stored(m)
        assert rest == sent[subject], subject
        assert [t.split(b":")[0] for t in trace] == [b"Return-Path", b"Delivered-To",
                                                      b"Received"], subject
        if subject in stored:
            assert m == stored[subject], subject
    assert len(seen) == COUNT


def test_fetchmail_keep_then_delete(server, tmp_path):
    msgs = varied_messages(COUNT)
    with server.smtp() as s:
        for m in msgs:
            s.sendmail("alice@example.org", [USER], m, mail_options=["BODY=8BITMIME"])
    sent = {"fm-%03d" % i: m for i, m in enumerate(msgs)}
    rows = [r for r in server.mail_list(USER) if r.subject.startswith("fm-")]
    assert len(rows) == COUNT
    # Nothing else in the INBOX, so fetchmail gets exactly these.
    assert len(server.mail_list(USER)) == COUNT
    # `mail show` runs the CLI once a message: a sample is enough, the
    # rest is checked against what was sent.
    stored = {r.subject: server.mail_show(USER, "INBOX", r.uid) for r in rows[::25]}

    workdir = str(tmp_path)
    os.chmod(workdir, 0o700)
    got, log = run_fetchmail(server, workdir, keep=True)
    check_delivered(got, stored, sent)
    assert "DELE" not in log
    assert len(server.mail_list(USER)) == COUNT

    got, log = run_fetchmail(server, workdir, keep=False)
    check_delivered(got, stored, sent)
    assert "POP3> DELE 200" in log
    assert server.mail_list(USER) == []
