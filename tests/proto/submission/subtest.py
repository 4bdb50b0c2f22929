"""Helpers for the submission tests (milestone M2): ports 587
([submission], STARTTLS) and 465 ([submissions], implicit TLS), SASL AUTH
(RFC 4954), the TLS policy and the anti-spoofing checks (RFC 6409).

Every server here listens on three ports: [smtp] (Instance.port, which
Instance.start() watches to see that the server is up), [submission] and
[submissions]. The helpers take the Instance and talk to one of them.
"""

import collections
import os
import pwd
import ssl
import subprocess

import yubintest
from yubintest import EHLO_NAME, PASSWORD, sasl_plain

# Accounts of the submission tests, on top of yubintest.provision_standard.
SHIRO = "shiroyagi@example.com"
KURO = "kuroyagi@example.com"
LEGACY = "legacy@example.com"        # password imported with --hash: "hunter2"
LEGACY_PASSWORD = "hunter2"
EQ_USER = "eq=user@example.com"      # SCRAM must escape "=" in the name
SUB_ALIASES = [
    ("shiro@example.com", SHIRO),     # an alias of shiroyagi only
    ("boss@example.com", KURO),       # an alias of somebody else
]


def submission_overrides(extra=None):
    """Config overrides for a server with [submission] and [submissions]
    listeners. No failure delay and no lock-out unless extra says so, so
    the tests that fail logins on purpose stay fast and independent."""
    ov = collections.OrderedDict()
    ov["submission"] = {"listen": "127.0.0.1:%d" % yubintest.free_port()}
    ov["submissions"] = {"listen": "127.0.0.1:%d" % yubintest.free_port()}
    ov["limits"] = {"auth_fail_delay": "0", "auth_lock_failures": "0"}
    # Remote recipients must stay in the queue for the tests to see them:
    # the relay goes to a port nobody listens on, and retries in an hour.
    ov["relay"] = {"smarthost": "127.0.0.1:%d" % yubintest.free_port(),
                   "smarthost_tls": "opportunistic"}
    ov["queue"] = {"retry_min": "1h"}
    for section, keys in (extra or {}).items():
        ov.setdefault(section, {}).update(keys)
    return ov


def provision_submission(inst):
    yubintest.provision_standard(inst)
    for source, target in SUB_ALIASES:
        inst.add_alias(source, target)
    inst.cli_ok("user", "add", "--hash", LEGACY, input=yubintest.HASH_SHA512_CRYPT + "\n")
    inst.add_user(EQ_USER)


def provision_small(inst):
    """Just what the TLS, limits and client tests need: faster to set up."""
    inst.add_domain("example.com")
    for user in (SHIRO, KURO, "hitsuji@example.com", "ushi@example.com"):
        inst.add_user(user)


def make_server(factory, extra=None, provision=provision_submission, start=True):
    return factory(overrides=submission_overrides(extra), provision=provision, start=start)


# ---- connections ----

def sub_port(inst):
    return inst.listener_port("submission")


def subs_port(inst):
    return inst.listener_port("submissions")


def plain_session(inst, ehlo=EHLO_NAME):
    """Port 587 without TLS, after EHLO."""
    return inst.session(ehlo, port=sub_port(inst))


def starttls_session(inst, ehlo=EHLO_NAME, context=None, server_hostname=yubintest.HOSTNAME):
    """Port 587 after EHLO, STARTTLS and EHLO again."""
    r = inst.session(ehlo, port=sub_port(inst))
    rep = r.cmd("STARTTLS")
    assert (rep.code, rep.enh) == (220, "2.0.0"), rep
    r.starttls(context, server_hostname=server_hostname)
    rep = r.cmd("EHLO " + ehlo)
    assert rep.code == 250, rep
    return r


def tls_session(inst, ehlo=EHLO_NAME, context=None):
    """Port 465 (implicit TLS) after EHLO."""
    return inst.session(ehlo, port=subs_port(inst),
                        tls=context or yubintest.client_tls_context())


def ehlo_keywords(rep):
    """{KEYWORD: [params]} of an EHLO reply."""
    out = {}
    for line in rep.lines[1:]:
        words = line.split()
        out[words[0].upper()] = words[1:]
    return out


def auth_plain(r, user, password=PASSWORD):
    """AUTH PLAIN with an initial response; returns the reply."""
    return r.cmd("AUTH PLAIN " + sasl_plain(user, password))


def login(r, user=SHIRO, password=PASSWORD):
    rep = auth_plain(r, user, password)
    assert (rep.code, rep.enh) == (235, "2.7.0"), rep
    return r


def scram_auth(r, user, password=PASSWORD, initial=True):
    """A whole SCRAM-SHA-256 exchange. Returns (final reply, client,
    server-final text or None); the server's signature is checked."""
    c = yubintest.ScramSha256(user, password)
    if initial:
        rep = r.cmd("AUTH SCRAM-SHA-256 " + yubintest.b64(c.client_first()))
    else:
        rep = r.cmd("AUTH SCRAM-SHA-256")
        assert (rep.code, rep.lines) == (334, [""]), rep
        rep = r.cmd(yubintest.b64(c.client_first()))
    assert rep.code == 334, rep
    server_first = yubintest.unb64(rep.lines[0])
    rep = r.cmd(yubintest.b64(c.client_final(server_first)))
    if rep.code != 334:
        return rep, c, None
    server_final = yubintest.unb64(rep.lines[0]).decode()
    assert c.check_server_final(server_final), \
        "server signature is wrong: %r" % server_final
    rep = r.cmd("")
    return rep, c, server_final


def submit(r, mail_from, rcpts, msg, bdat=False):
    """One transaction on an authenticated session; returns the final reply
    (DATA, or BDAT LAST with bdat)."""
    if not bdat:
        return yubintest.send_data(r, mail_from, rcpts, msg)
    rep = r.cmd("MAIL FROM:<%s>" % mail_from)
    assert rep.code == 250, rep
    for a in rcpts:
        rep = r.cmd("RCPT TO:<%s>" % a)
        assert rep.code == 250, (a, rep)
    r.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
    return r.reply()


def msg_from(subject, from_header, to=SHIRO, body="Hello.\r\n", extra_headers=(),
             date=True, message_id=True):
    """A message with this exact From: field value (None: no From:)."""
    head = []
    if from_header is not None:
        head.append("From: %s" % from_header)
    head += ["To: %s" % to, "Subject: %s" % subject]
    if date:
        head.append("Date: Sun, 22 Nov 2026 07:38:12 +0000")
    if message_id:
        head.append("Message-ID: <%s@client.test.example>" % yubintest.unique("mid"))
    head.extend(extra_headers)
    return ("\r\n".join(head) + "\r\n\r\n" + body).encode()


# ---- certificates ----

def give_to_server(path):
    """Makes path the server's own when it runs as nobody (started as root)."""
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(path, nobody.pw_uid, nobody.pw_gid)


def make_cert(directory, name, cn):
    """A new self-signed P-256 pair in directory, readable by the server
    after it dropped privileges. Returns (cert path, key path, DER)."""
    cert = os.path.join(directory, name + "-cert.pem")
    key = os.path.join(directory, name + "-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                    "-subj", "/CN=" + cn, "-addext", "subjectAltName=DNS:" + cn,
                    "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.chmod(cert, 0o644)
    os.chmod(key, 0o600)
    give_to_server(key)
    with open(cert) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return cert, key, der


def cert_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())
