"""Helpers for yubin's integration tests: run the real binary, talk to it
over real sockets, read what it stored through its own CLI.

Only the Python standard library is used. The binary is $YUBIN_BIN
(default: build/yubin of this checkout).
"""

import base64
import collections
import copy
import hashlib
import hmac
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
YUBIN_BIN = os.environ.get(
    "YUBIN_BIN", os.path.join(os.path.dirname(HERE), "build", "yubin"))

HOSTNAME = "mx.test.example"
DOMAIN = "example.com"
PASSWORD = "correct horse battery staple"
EHLO_NAME = "client.test.example"

# Lines that mean the (sanitizer) build found a bug.
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "ThreadSanitizer",
                     "MemorySanitizer", "runtime error")

# `make valgrind` raises these (the server starts and answers far slower
# under valgrind).
START_TIMEOUT = float(os.environ.get("YUBIN_START_TIMEOUT") or 10.0)
STOP_TIMEOUT = float(os.environ.get("YUBIN_STOP_TIMEOUT") or 10.0)
CLI_TIMEOUT = 60.0
IO_TIMEOUT = float(os.environ.get("YUBIN_IO_TIMEOUT") or 10.0)

# Password hashes of "hunter2" made outside yubin (libxcrypt, libsodium).
HASH_SHA512_CRYPT = ("$6$ncsHM9dpwlPCjrRg$NiYZqXopQYpCk9fXJJLV9pXbcsI8okdlLPWhH."
                     "HXpMAz2scZGvn2xHPxxvXK2/A3wTNyFh28T4ngy1967czHA/")
HASH_YESCRYPT = ("$y$j9T$7uVcNwsLCHpTZZnPp1NWR/$.Wf58C0a.Nrp41v91FjWa6uw3OXZ8bD"
                 "TUd4iAZhiEM.")
HASH_ARGON2ID = ("$argon2id$v=19$m=8192,t=2,p=1$Fte9azKEpwVbK3F28pP0lQ$uUQJPrHx"
                 "e3biKQzKQk7MH4/Ip+yPdlELgaXqTCu8ibU")


def sanitizer_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    return env


def sanitizer_lines(text):
    return [l for l in text.splitlines()
            if any(m in l for m in SANITIZER_MARKERS)]


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_config(port):
    cfg = collections.OrderedDict()
    cfg["server"] = collections.OrderedDict([
        ("hostname", HOSTNAME),
        ("data_dir", "data"),
        ("tls_cert", "tls/cert.pem"),
        ("tls_key", "tls/key.pem"),
        ("tls_selfsigned", "yes"),
        ("log_level", "debug"),
    ])
    if os.geteuid() == 0:
        cfg["server"]["user"] = "nobody"
    cfg["smtp"] = collections.OrderedDict([("listen", "127.0.0.1:%d" % port)])
    cfg["limits"] = collections.OrderedDict([
        ("max_message_size", "1M"),
        ("max_recipients", "100"),   # RFC 5321 4.5.3.1.8: at least 100
        ("max_errors", "10"),
        ("smtp_timeout", "30s"),
    ])
    # SPF, DKIM and DMARC would ask the machine's resolver about every
    # test domain (slow or absent offline) and add Authentication-Results
    # to every message; the mail-authentication tests turn them on with a
    # test DNS (tests/proto/mailauth).
    cfg["mailauth"] = collections.OrderedDict([
        ("spf", "no"), ("dkim", "no"), ("dmarc", "no"),
    ])
    return cfg


def render_config(cfg):
    out = []
    for section, keys in cfg.items():
        out.append("[%s]" % section)
        for k, v in keys.items():
            out.append("%s = %s" % (k, v))
        out.append("")
    return "\n".join(out)


MailRow = collections.namedtuple("MailRow", "uid date size from_ subject")
DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class CliError(AssertionError):
    pass


class Instance:
    """One yubin installation: a temp folder with a config file and a data
    folder, and (when started) one `yubin serve` process."""

    def __init__(self, overrides=None, config_text=None):
        self.dir = tempfile.mkdtemp(prefix="yubin-test-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.conf = os.path.join(self.dir, "yubin.conf")
        self.log_path = os.path.join(self.dir, "server.log")
        self.data_dir = os.path.join(self.dir, "data")
        self.proc = None
        self.exit_codes = []
        self.cfg = default_config(self.port)
        for section, keys in (overrides or {}).items():
            sec = self.cfg.setdefault(section, collections.OrderedDict())
            for k, v in keys.items():
                if v is None:
                    sec.pop(k, None)
                else:
                    sec[k] = v
        self.write_config(config_text)

    # ---- config and CLI ----

    def write_config(self, text=None):
        with open(self.conf, "w") as f:
            f.write(text if text is not None else render_config(self.cfg))

    def cli(self, *args, input=None, conf=None):
        """Runs `yubin -c CONF ARGS...`; returns (rc, stdout, stderr) as text."""
        rc, out, err = self.cli_bytes(*args, input=input, conf=conf)
        return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def cli_bytes(self, *args, input=None, conf=None):
        if isinstance(input, str):
            input = input.encode()
        p = subprocess.run([YUBIN_BIN, "-c", conf or self.conf] + list(args),
                           input=input if input is not None else b"",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           cwd=self.dir, env=sanitizer_env(), timeout=CLI_TIMEOUT)
        bad = sanitizer_lines(p.stderr.decode("utf-8", "replace"))
        assert not bad, "sanitizer report from `yubin %s`:\n%s" % (
            " ".join(args), p.stderr.decode("utf-8", "replace"))
        return p.returncode, p.stdout, p.stderr

    def cli_ok(self, *args, input=None):
        rc, out, err = self.cli(*args, input=input)
        if rc != 0:
            raise CliError("`yubin %s` exited %d\nstdout: %s\nstderr: %s"
                           % (" ".join(args), rc, out, err))
        return out

    def lines(self, *args):
        return [l for l in self.cli_ok(*args).splitlines() if l.strip()]

    def add_domain(self, domain):
        self.cli_ok("domain", "add", domain)

    def add_user(self, address, password=PASSWORD):
        self.cli_ok("user", "add", address, input=password + "\n")

    def add_alias(self, source, *targets):
        for t in targets:
            self.cli_ok("alias", "add", source, t)

    def mail_list(self, address, mailbox="INBOX"):
        out = self.cli_ok("mail", "list", address, mailbox)
        lines = out.split("\n")
        assert lines[0] == "UID\tDATE\tSIZE\tFROM\tSUBJECT", \
            "bad `mail list` header: %r" % lines[0]
        rows = []
        for line in lines[1:]:
            if line == "":
                continue
            f = line.split("\t")
            assert len(f) == 5, "bad `mail list` row: %r" % line
            assert DATE_RE.match(f[1]), "bad date in `mail list` row: %r" % line
            rows.append(MailRow(int(f[0]), f[1], int(f[2]), f[3], f[4]))
        return rows

    def mail_show(self, address, mailbox, uid):
        rc, out, err = self.cli_bytes("mail", "show", address, mailbox, str(uid))
        if rc != 0:
            raise CliError("`yubin mail show %s %s %s` exited %d: %s"
                           % (address, mailbox, uid, rc, err.decode("utf-8", "replace")))
        return out

    def find_mail(self, address, marker, mailbox="INBOX"):
        """[(row, bytes)] of the messages of address whose subject contains marker."""
        return [(r, self.mail_show(address, mailbox, r.uid))
                for r in self.mail_list(address, mailbox) if marker in r.subject]

    def mail_containing(self, address, needle, mailbox="INBOX"):
        """[(row, bytes)] of the messages of address whose bytes contain needle."""
        if isinstance(needle, str):
            needle = needle.encode()
        out = []
        for r in self.mail_list(address, mailbox):
            m = self.mail_show(address, mailbox, r.uid)
            if needle in m:
                out.append((r, m))
        return out

    def queue_list(self):
        return self.cli_ok("queue", "list")

    def msg_files(self):
        """Every file under DATA_DIR/msg/ (the stored message bodies)."""
        files = set()
        for root, _dirs, names in os.walk(os.path.join(self.data_dir, "msg")):
            for n in names:
                files.add(os.path.join(root, n))
        return files

    # ---- the server process ----

    def start(self, timeout=START_TIMEOUT, wait_greeting=True):
        assert self.proc is None
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([YUBIN_BIN, "-c", self.conf, "serve"],
                                     stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=logf, cwd=self.dir,
                                     env=sanitizer_env())
        logf.close()
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                self.exit_codes.append(rc)
                raise AssertionError("yubin serve exited %d at start-up\n%s"
                                     % (rc, self.log()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as c:
                    if not wait_greeting:
                        return self
                    # Ready means serving, not only bound: read the greeting.
                    c.settimeout(max(0.1, deadline - time.monotonic()))
                    if c.recv(3) == b"220":
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError("yubin serve did not listen on port %d "
                                     "within %gs\n%s" % (self.port, timeout, self.log()))
            time.sleep(0.05)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Sends sig and waits; returns the exit status (None if it hung and
        had to be killed)."""
        if self.proc is None:
            return None
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(sig)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = None
        self.exit_codes.append(rc)
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)

    def stop_clean(self):
        """SIGTERM; asserts a clean exit and a log without sanitizer reports."""
        rc = self.stop()
        assert rc == 0, "yubin serve exited %r after SIGTERM (want 0)\n%s" % (rc, self.log())
        self.check_log()

    def restart(self):
        self.stop_clean()
        return self.start()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return "(no server log)"
        if len(text) > 20000:
            text = "...\n" + text[-20000:]
        return "---- server log %s ----\n%s" % (self.log_path, text)

    def check_log(self):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return
        bad = sanitizer_lines(text)
        assert not bad, "sanitizer report in the server log:\n%s" % self.log()

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- clients ----

    def listener_port(self, section):
        """The port of the (first) listen address of a listener section."""
        listen = self.cfg[section]["listen"].split()[0]
        return int(listen.rsplit(":", 1)[1])

    def log_text(self):
        """The whole server log, as text."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def smtp(self, ehlo=True, timeout=IO_TIMEOUT):
        s = smtplib.SMTP("127.0.0.1", self.port, local_hostname=EHLO_NAME,
                         timeout=timeout)
        if ehlo:
            code, _ = s.ehlo()
            assert code == 250
        return s

    def raw(self, greet=True, timeout=IO_TIMEOUT, port=None, tls=None,
            server_hostname=HOSTNAME):
        """A raw connection to port (default: the [smtp] listener). tls: an
        ssl.SSLContext for implicit TLS from the first byte (port 465)."""
        r = RawSMTP("127.0.0.1", port or self.port, timeout=timeout, tls=tls,
                    server_hostname=server_hostname)
        if greet:
            rep = r.reply()
            assert rep.code == 220, rep
        return r

    def session(self, ehlo=EHLO_NAME, port=None, tls=None):
        """A raw session after the greeting and EHLO."""
        r = self.raw(port=port, tls=tls)
        rep = r.cmd("EHLO " + ehlo)
        assert rep.code == 250, rep
        return r


class Reply:
    ENH_RE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})$")

    def __init__(self, code, lines):
        self.code = code
        self.lines = lines          # text after "NNN-" / "NNN "
        first = lines[0].split(" ", 1)[0] if lines and lines[0] else ""
        self.enh = first if self.ENH_RE.match(first) else None

    @property
    def text(self):
        return "\n".join(self.lines)

    def __repr__(self):
        return "<Reply %d %r>" % (self.code, self.lines)


class RawSMTP:
    """A byte-exact SMTP client: what is sent is what the server gets."""

    def __init__(self, host, port, timeout=IO_TIMEOUT, tls=None,
                 server_hostname=HOSTNAME):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if tls is not None:
            try:
                self.sock = tls.wrap_socket(self.sock, server_hostname=server_hostname)
            except BaseException:
                self.sock.close()
                raise
        self.timeout = timeout
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed by the server")
        self.buf += chunk

    def readline(self):
        while b"\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def reply(self):
        lines = []
        while True:
            raw = self.readline()
            assert raw.endswith(b"\r\n"), "reply line without CRLF: %r" % raw
            line = raw[:-2].decode("utf-8", "replace")
            assert re.match(r"^[2-5]\d\d[ -]", line) or re.match(r"^[2-5]\d\d$", line), \
                "malformed reply line %r" % line
            code = int(line[:3])
            if lines:
                assert code == prev, "multi-line reply changed code: %r" % line
            prev = code
            lines.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return Reply(code, lines)

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def cmd(self, line):
        self.send(line.encode() + b"\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.reply()

    def all_replies_until_close(self, timeout=5.0):
        """Every reply until the server closes the connection."""
        self.sock.settimeout(timeout)
        out = []
        try:
            while True:
                out.append(self.reply())
        except (EOFError, ConnectionResetError):
            pass
        return out

    def is_closed(self, timeout=5.0, drain=False):
        """True if the server closes the connection (EOF or reset) within
        timeout. Bytes that arrive first mean False, unless drain."""
        if self.buf and not drain:
            return False
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.sock.settimeout(left)
                data = self.sock.recv(4096)
                if data == b"":
                    return True
                if not drain:
                    return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        except (socket.timeout, TimeoutError):
            return False
        except ssl.SSLError:
            return True

    def starttls(self, context=None, server_hostname=HOSTNAME):
        """Wraps the socket in TLS (after a 220 to STARTTLS)."""
        assert not self.buf, "bytes after the STARTTLS reply, before TLS: %r" % self.buf
        if context is None:
            context = client_tls_context()
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def client_tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ---- SASL clients (RFC 4616 PLAIN, RFC 5802/7677 SCRAM-SHA-256) ----

def b64(data):
    """Base64 of bytes or UTF-8 text, as text ("" for empty)."""
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode("ascii")


def unb64(text):
    """Strict base64 decoding of a challenge (raises on bad input)."""
    return base64.b64decode(text, validate=True)


def sasl_plain(authcid, password, authzid=""):
    """The base64 PLAIN message: authzid NUL authcid NUL password."""
    return b64(("%s\0%s\0%s" % (authzid, authcid, password)).encode())


def scram_escape(name):
    """saslname (RFC 5802 5.1): "=" is "=3D" and "," is "=2C"."""
    return name.replace("=", "=3D").replace(",", "=2C")


class ScramSha256:
    """An independent SCRAM-SHA-256 client (RFC 5802, RFC 7677), without
    channel binding. ASCII passwords only (SASLprep leaves them alone).

        c = ScramSha256(user, password)
        c.client_first()             -> bytes to send
        c.client_final(server_first) -> bytes to send
        c.check_server_final(msg)    -> True if the server proved it knows
                                        the password
    """

    def __init__(self, user, password, nonce=None, gs2_header="n,,"):
        assert password.isascii(), "SASLprep is not implemented here"
        self.user = user
        self.password = password
        self.nonce = nonce or b64(os.urandom(18))
        self.gs2_header = gs2_header
        self.server_signature = None

    @property
    def client_first_bare(self):
        return "n=%s,r=%s" % (scram_escape(self.user), self.nonce)

    def client_first(self):
        return (self.gs2_header + self.client_first_bare).encode()

    @staticmethod
    def parse(msg):
        if isinstance(msg, bytes):
            msg = msg.decode()
        out = collections.OrderedDict()
        for part in msg.split(","):
            k, eq, v = part.partition("=")
            assert eq and len(k) == 1, "bad SCRAM attribute %r in %r" % (part, msg)
            out[k] = v
        return out

    def client_final(self, server_first, nonce=None, proof_tamper=False,
                     channel_binding=None):
        """The client-final message for server_first. nonce, proof_tamper
        and channel_binding make deliberately wrong ones."""
        if isinstance(server_first, bytes):
            server_first = server_first.decode()
        attrs = self.parse(server_first)
        assert list(attrs)[:3] == ["r", "s", "i"], \
            "server-first is not r=,s=,i=: %r" % server_first
        assert attrs["r"].startswith(self.nonce) and len(attrs["r"]) > len(self.nonce), \
            "server nonce does not extend ours: %r" % server_first
        salt = unb64(attrs["s"])
        iterations = int(attrs["i"])
        assert iterations >= 4096, "RFC 7677: at least 4096 iterations, got %d" % iterations
        cbind = channel_binding if channel_binding is not None else b64(self.gs2_header)
        without_proof = "c=%s,r=%s" % (cbind, nonce or attrs["r"])
        auth_message = ",".join([self.client_first_bare, server_first, without_proof])
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        client_sig = hmac.new(stored_key, auth_message.encode(), hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, client_sig))
        if proof_tamper:
            proof = bytes([proof[0] ^ 1]) + proof[1:]
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.server_signature = hmac.new(server_key, auth_message.encode(),
                                         hashlib.sha256).digest()
        return ("%s,p=%s" % (without_proof, b64(proof))).encode()

    def check_server_final(self, msg):
        if isinstance(msg, bytes):
            msg = msg.decode()
        attrs = self.parse(msg)
        return "v" in attrs and hmac.compare_digest(unb64(attrs["v"]), self.server_signature)


# ---- provisioning ----

# Accounts and aliases every SMTP test module can count on.
USERS = ["shiroyagi@example.com", "kuroyagi@example.com",
         "hitsuji@example.com", "ushi@example.com",
         "owner@catchall.example"]
ALIASES = [
    ("team@example.com", "shiroyagi@example.com"),
    ("team@example.com", "kuroyagi@example.com"),
    ("list@example.com", "hitsuji@example.com"),
    ("list@example.com", "friend@remote.example"),
    ("@catchall.example", "kuroyagi@example.com"),
    ("@many.example", "ushi@example.com"),
]


def provision_standard(inst):
    """The accounts and aliases every SMTP test module can count on."""
    for d in ("example.com", "catchall.example", "many.example"):
        inst.add_domain(d)
    for u in USERS:
        inst.add_user(u)
    for source, target in ALIASES:
        inst.add_alias(source, target)


# ---- messages ----

def unique(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


def make_msg(subject, frm="alice@example.org", to="shiroyagi@example.com",
             body="Hello.\r\n", extra_headers=()):
    """An RFC 5322 message with CRLF line ends, as bytes (not dot-stuffed)."""
    if isinstance(body, str):
        body = body.encode()
    head = ["From: Alice <%s>" % frm, "To: %s" % to, "Subject: %s" % subject,
            "Date: Sun, 22 Nov 2026 07:38:12 +0000",
            "Message-ID: <%s@example.org>" % uuid.uuid4().hex]
    head.extend(extra_headers)
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def dot_stuff(msg):
    """DATA transparency (RFC 5321 4.5.2) plus the end-of-data line."""
    assert msg.endswith(b"\r\n")
    lines = msg.split(b"\r\n")[:-1]
    out = b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines)
    return out + b".\r\n"


def send_data(r, mail_from, rcpts, msg, params=""):
    """A full transaction on a raw session; returns the final reply.
    Asserts 250 for MAIL and each RCPT and 354 for DATA."""
    rep = r.cmd("MAIL FROM:<%s>%s" % (mail_from, params))
    assert rep.code == 250, rep
    for a in rcpts:
        rep = r.cmd("RCPT TO:<%s>" % a)
        assert rep.code == 250, (a, rep)
    rep = r.cmd("DATA")
    assert rep.code == 354, rep
    r.send(dot_stuff(msg))
    return r.reply()


def split_stored(stored):
    """Splits what `mail show` returns into (trace header lines, rest):
    the leading Return-Path / Delivered-To / Received fields (unfolded,
    without CRLF) and the bytes after them."""
    fields = []
    pos = 0
    trace = (b"return-path:", b"delivered-to:", b"received:")
    while True:
        end = stored.find(b"\r\n", pos)
        if end < 0:
            break
        line = stored[pos:end]
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b" " + line.strip()
        elif line.lower().startswith(trace) and len(fields) < 3:
            fields.append(line)
        else:
            break
        pos = end + 2
    return fields, stored[pos:]
