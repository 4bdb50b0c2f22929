"""Real mail clients from Debian send through the submission ports:
swaks (STARTTLS on 587, implicit TLS on 465; AUTH PLAIN and LOGIN) and
msmtp (GnuTLS with certificate and name verification; GNU SASL picks the
mechanism, SCRAM-SHA-256 when offered)."""

import os
import re
import shutil
import subprocess
import time

import pytest

from yubintest import HOSTNAME, PASSWORD, unique, split_stored
from subtest import SHIRO, KURO, sub_port, subs_port, make_server, provision_small

CLIENT_TIMEOUT = 60


def need(tool):
    """`make test` installs the clients (scripts/deps.sh): one missing is a
    failure, not a reason to pass quietly."""
    assert shutil.which(tool) is not None, "%s is not installed (scripts/deps.sh test)" % tool


def run(args, input=None, cwd=None):
    p = subprocess.run(args, input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=CLIENT_TIMEOUT, cwd=cwd)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def received_field(server, rcpt, subject):
    found = server.find_mail(rcpt, subject)
    assert len(found) == 1, "message %s not delivered once: %r" % (subject, found)
    (row, stored), = found
    trace, rest = split_stored(stored)
    return [f.decode() for f in trace if f.lower().startswith(b"received:")][0], rest


@pytest.fixture(scope="module")
def server(module_yubin_factory):
    """A submission server with a few accounts only (quicker to set up)."""
    return make_server(module_yubin_factory, provision=provision_small)


# ---- swaks ----

def swaks(server, subject, *extra, user=SHIRO, password=PASSWORD, sender=SHIRO, to=KURO):
    need("swaks")
    return run(["swaks", "--server", "127.0.0.1", "--ehlo", "swaks.test.example",
                "--from", sender, "--to", to,
                "--auth-user", user, "--auth-password", password,
                "--header", "Subject: %s" % subject,
                "--body", "Sent by swaks.\n",
                "--timeout", "30"] + list(extra))


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks_587_starttls(server, mech):
    subject = unique("swaks587")
    rc, out = swaks(server, subject, "--port", str(sub_port(server)), "--tls",
                    "--auth", mech)
    assert rc == 0, out
    assert re.search(r"^<~  235 ", out, re.M), out
    received, rest = received_field(server, KURO, subject)
    assert re.search(r"\bwith ESMTPSA\b", received), received
    assert b"Sent by swaks." in rest


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks_465(server, mech):
    subject = unique("swaks465")
    rc, out = swaks(server, subject, "--port", str(subs_port(server)), "--tlsc",
                    "--auth", mech)
    assert rc == 0, out
    received, _rest = received_field(server, KURO, subject)
    assert re.search(r"\bwith ESMTPSA\b", received), received


def test_swaks_wrong_password(server):
    subject = unique("swaksbad")
    rc, out = swaks(server, subject, "--port", str(subs_port(server)), "--tlsc",
                    "--auth", "PLAIN", password="wrong")
    assert rc != 0, out
    assert re.search(r"^<~?\*+ 535 ", out, re.M), out
    assert server.find_mail(KURO, subject) == []


def test_swaks_spoofed_sender(server):
    subject = unique("swaksspoof")
    rc, out = swaks(server, subject, "--port", str(sub_port(server)), "--tls",
                    "--auth", "PLAIN", sender="boss@example.com")
    assert rc != 0, out
    assert re.search(r"^<~?\*+ 553 ", out, re.M), out
    assert server.find_mail(KURO, subject) == []


# ---- msmtp ----

def msmtp(server, subject, port, starttls, auth="on", password=PASSWORD, trust_file=None,
          to=KURO):
    need("msmtp")
    conf = os.path.join(server.dir, "msmtprc-%s" % unique("m"))
    lines = [
        "defaults",
        "tls on",
        "tls_starttls %s" % ("on" if starttls else "off"),
        "tls_trust_file %s" % (trust_file or os.path.join(server.dir, "tls", "cert.pem")),
        # The certificate names the configured hostname; we dial 127.0.0.1.
        "tls_host_override %s" % HOSTNAME,
        "timeout 30",
        # Leave Date: and Message-ID: to the server (RFC 6409 8.2, 8.3).
        "set_date_header off",
        "set_msgid_header off",
        "account test",
        "host 127.0.0.1",
        "port %d" % port,
        "domain msmtp.test.example",
        "auth %s" % auth,
        "user %s" % SHIRO,
        "password %s" % password,
        "from %s" % SHIRO,
        "account default : test",
    ]
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(conf, 0o600)    # msmtp refuses a password file others can read
    msg = ("From: Shiro <%s>\r\nTo: %s\r\nSubject: %s\r\n\r\nSent by msmtp.\r\n"
           % (SHIRO, to, subject)).encode()
    return run(["msmtp", "-C", conf, "-v", to], input=msg)


@pytest.mark.parametrize("auth", ["on", "scram-sha-256", "plain", "login"])
def test_msmtp_587_starttls(server, auth):
    subject = unique("msmtp587")
    rc, out = msmtp(server, subject, sub_port(server), starttls=True, auth=auth)
    assert rc == 0, out
    assert re.search(r"^<-- 235 2\.7\.0", out, re.M), out
    if auth != "on":
        assert re.search(r"^--> AUTH %s\b" % auth.upper(), out, re.M), out
    received, rest = received_field(server, KURO, subject)
    assert re.search(r"\bwith ESMTPSA\b", received), received
    assert rest.endswith(b"Sent by msmtp.\r\n"), rest
    # msmtp sent no Message-ID: nor Date:, the server added them.
    assert re.search(rb"(?im)^message-id: <[^>]+@[^>]+>", rest), rest
    assert re.search(rb"(?im)^date: ", rest), rest


def test_msmtp_465(server):
    subject = unique("msmtp465")
    rc, out = msmtp(server, subject, subs_port(server), starttls=False)
    assert rc == 0, out
    received, _rest = received_field(server, KURO, subject)
    assert re.search(r"\bwith ESMTPSA\b", received), received


def test_msmtp_wrong_password(server):
    subject = unique("msmtpbad")
    rc, out = msmtp(server, subject, subs_port(server), starttls=False, password="wrong")
    assert rc != 0, out
    assert "535" in out, out
    assert server.find_mail(KURO, subject) == []


def test_msmtp_refuses_untrusted_certificate(server, tmp_path):
    # Verification really happens: trusting another certificate with the
    # same name fails before anything is sent.
    other = str(tmp_path / "other.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj",
                    "/CN=" + HOSTNAME, "-addext", "subjectAltName=DNS:" + HOSTNAME,
                    "-keyout", str(tmp_path / "k.pem"), "-out", other],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subject = unique("msmtpuntrusted")
    rc, out = msmtp(server, subject, subs_port(server), starttls=False, trust_file=other)
    assert rc != 0, out
    assert "certificate verification failed" in out, out
    assert not re.search(r"^<-- 235", out, re.M), out
    assert server.find_mail(KURO, subject) == []


# ---- to a remote address: the outbound queue, then a smarthost ----

REMOTE = "kuroyagi@hogehoge.com"


def wait_for(cond, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    return cond()


@pytest.mark.parametrize("client", ["swaks", "msmtp"])
def test_client_sends_to_remote_address(yubin_factory, client):
    """[M2] done-when: a user sends to a remote address with a real client.
    The message is queued (`yubin queue list` shows it while the next hop
    is down), then the queue hands it to the smarthost, a second yubin for
    hogehoge.com, where it arrives once with the client's text."""
    need(client)

    def provision_peer(inst):
        inst.add_domain("hogehoge.com")
        inst.add_user(REMOTE)
    peer = yubin_factory({"server": {"hostname": "mx.hogehoge.com"}},
                         provision=provision_peer, start=False)
    server = make_server(yubin_factory, {
        "relay": {"smarthost": "127.0.0.1:%d" % peer.port,
                  "smarthost_tls": "opportunistic"},
        "queue": {"retry_min": "1s", "retry_max": "2s"},
    }, provision=provision_small)

    subject = unique("remote-" + client)
    if client == "swaks":
        rc, out = swaks(server, subject, "--port", str(sub_port(server)), "--tls",
                        "--auth", "PLAIN", to=REMOTE)
    else:
        rc, out = msmtp(server, subject, sub_port(server), starttls=True, to=REMOTE)
    assert rc == 0, out
    assert re.search(r"^<~?-*\s*250 2\.0\.0|^<-- 250 2\.0\.0", out, re.M), out
    # Not delivered locally; held in the queue while the peer is down.
    assert server.find_mail(KURO, subject) == []
    def row():
        rows = [l.split("\t") for l in server.queue_list().splitlines() if REMOTE in l]
        assert len(rows) == 1, server.queue_list()
        return dict(zip(["id", "created", "attempts", "sender", "rcpt", "error"], rows[0]))
    assert (row()["sender"], row()["rcpt"]) == (SHIRO, REMOTE)
    # The queue tried the smarthost, found it down, and keeps the message.
    tried = wait_for(lambda: int(row()["attempts"]) >= 1 and row())
    assert tried and tried["error"], server.queue_list()

    # The peer comes up: the next retry delivers it there.
    peer.start()
    got = wait_for(lambda: peer.find_mail(REMOTE, subject))
    assert len(got) == 1, got
    (row, stored), = got
    trace, rest = split_stored(stored)
    assert rest.endswith(b"\r\n\r\nSent by %s.\r\n" % client.encode()) or \
        b"Sent by %s." % client.encode() in rest, rest
    received = [f.decode() for f in trace if f.lower().startswith(b"received:")]
    assert any("mx.hogehoge.com" in r for r in received), trace
    # Delivered: gone from the queue.
    assert wait_for(lambda: REMOTE not in server.queue_list()), server.queue_list()
