"""Real mail clients from Debian send through the submission ports:
swaks (STARTTLS on 587, implicit TLS on 465; AUTH PLAIN and LOGIN) and
msmtp (GnuTLS with certificate and name verification; GNU SASL picks the
mechanism, SCRAM-SHA-256 when offered)."""

import os
import re
import shutil
import subprocess

import pytest

from yubintest import HOSTNAME, PASSWORD, unique, split_stored
from subtest import SHIRO, KURO, sub_port, subs_port, make_server, provision_small

CLIENT_TIMEOUT = 60


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip("%s is not installed (apt-get install %s)" % (tool, tool))


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

def swaks(server, subject, *extra, user=SHIRO, password=PASSWORD, sender=SHIRO):
    need("swaks")
    return run(["swaks", "--server", "127.0.0.1", "--ehlo", "swaks.test.example",
                "--from", sender, "--to", KURO,
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

def msmtp(server, subject, port, starttls, auth="on", password=PASSWORD, trust_file=None):
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
           % (SHIRO, KURO, subject)).encode()
    return run(["msmtp", "-C", conf, "-v", KURO], input=msg)


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
