"""IMAP test helpers: a server with [smtp], [imap] and [imaps] listeners,
mail put in over SMTP, and a byte-exact IMAP client (RawIMAP).

Python's imaplib is used where it is enough (it is what many scripts use);
RawIMAP is for what imaplib hides: exact bytes, literals and continuation
requests, pipelining, untagged responses in their order, bad input.
"""

import base64
import re
import socket
import ssl
import time

import yubintest

USER = "shiroyagi@example.com"
USER2 = "kuroyagi@example.com"
PASSWORD = yubintest.PASSWORD
IO_TIMEOUT = 20.0

# What every session offers (RFC 9051 7.2.2 / the extensions yubin has).
BASE_CAPS = {"IMAP4REV1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE",
             "UNSELECT", "UIDPLUS", "NAMESPACE", "SPECIAL-USE", "BINARY"}
AUTH_CAPS = {"AUTH=PLAIN", "AUTH=LOGIN", "AUTH=SCRAM-SHA-256"}


def imap_overrides(server=None, **limits):
    """Config overrides adding [imap] and [imaps] on free ports; no login
    failure delay or lock, so failing logins neither slow the tests nor
    lock the shared accounts."""
    lim = {"auth_fail_delay": "0", "auth_fail_delay_max": "0",
           "auth_lock_failures": "0", "max_errors": "5"}
    lim.update(limits)
    ov = {
        "imap": {"listen": "127.0.0.1:%d" % yubintest.free_port()},
        "imaps": {"listen": "127.0.0.1:%d" % yubintest.free_port()},
        "limits": lim,
    }
    if server:
        ov["server"] = dict(server)
    return ov


def make_server(factory, server=None, **limits):
    return factory(imap_overrides(server, **limits),
                   provision=yubintest.provision_standard)


def deliver(inst, msg, rcpt=USER, sender="alice@example.org"):
    """Puts msg (bytes, CRLF) into rcpt's INBOX over SMTP."""
    with inst.smtp() as s:
        s.sendmail(sender, [rcpt], msg)


def deliver_many(inst, msgs, rcpt=USER, sender="alice@example.org"):
    with inst.smtp() as s:
        for m in msgs:
            s.sendmail(sender, [rcpt], m)


def new_user(inst, prefix="u"):
    """A fresh account with an empty INBOX (added while the server runs)."""
    addr = "%s@example.com" % yubintest.unique(prefix)
    inst.add_user(addr)
    return addr


class ImapError(AssertionError):
    pass


class Response:
    """One response: its text line(s) with every literal inlined as
    "{n}\\r\\n" + bytes, exactly as sent (without the final CRLF), and the
    literals separately."""

    def __init__(self, raw, literals):
        self.raw = raw
        self.literals = literals

    @property
    def text(self):
        return self.raw.decode("utf-8", "replace")

    def __repr__(self):
        r = self.raw
        return "<Response %r>" % (r if len(r) < 300 else r[:300] + b"...")


class Result:
    """A command's outcome: the untagged responses (and continuation
    requests) before the tagged one, in order, and the tagged one."""

    def __init__(self, untagged, tagged, tag):
        self.untagged = untagged
        self.tagged = tagged
        self.tag = tag

    @property
    def status(self):
        """OK, NO or BAD."""
        return self.tagged.text.split(" ", 2)[1]

    @property
    def text(self):
        """The tagged line after the tag."""
        return self.tagged.text.split(" ", 1)[1]

    def lines(self, kind=None):
        """Untagged responses as text, optionally those "* KIND ..." or
        "* n KIND ...", without "* "."""
        out = []
        for r in self.untagged:
            t = r.text
            if not t.startswith("* "):
                continue
            t = t[2:]
            if kind is None:
                out.append(t)
                continue
            words = t.split(" ", 2)
            if words[0].upper() == kind or (len(words) > 1 and words[0].isdigit()
                                             and words[1].upper() == kind):
                out.append(t)
        return out

    def fetches(self):
        """The untagged FETCH responses as (seq, {ITEM: value}) in order;
        see parse_fetch."""
        out = []
        for r in self.untagged:
            m = re.match(rb"^\* (\d+) FETCH ", r.raw)
            if m:
                out.append((int(m.group(1)), parse_fetch(r.raw[m.end():])))
        return out

    def __repr__(self):
        return "<Result %r %r>" % (self.untagged, self.tagged)


class RawIMAP:
    """A byte-exact IMAP client: what is sent is what the server gets."""

    def __init__(self, inst, tls=False, greet=True, timeout=IO_TIMEOUT):
        port = inst.listener_port("imaps" if tls else "imap")
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            self.sock = yubintest.client_tls_context().wrap_socket(
                self.sock, server_hostname=yubintest.HOSTNAME)
        self.buf = b""
        self.ntag = 0
        self.greeting = self.response() if greet else None
        if greet:
            assert self.greeting.raw.startswith(b"* OK "), self.greeting

    # ---- bytes ----

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("connection closed by the server")
        self.buf += chunk

    def line(self):
        """One line with its CRLF (which it must have)."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                break
            self._fill()
        raw, self.buf = self.buf[:i + 1], self.buf[i + 1:]
        assert raw.endswith(b"\r\n"), "line without CRLF: %r" % raw[-80:]
        return raw

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self):
        """One whole response, literals included."""
        raw = b""
        literals = []
        while True:
            line = self.line()
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m and not line.startswith(b"+ "):
                data = self.read_exact(int(m.group(1)))
                literals.append(data)
                raw += line + data
                continue
            raw += line[:-2]
            return Response(raw, literals)

    # ---- commands ----

    def next_tag(self):
        self.ntag += 1
        return "t%03d" % self.ntag

    def read_until_tagged(self, tag):
        tag_b = tag.encode() + b" "
        untagged = []
        while True:
            r = self.response()
            if r.raw.startswith(tag_b):
                return Result(untagged, r, tag)
            untagged.append(r)

    def cmd(self, line, tag=None):
        """Sends "TAG line" and reads to the tagged response."""
        tag = tag or self.next_tag()
        if isinstance(line, str):
            line = line.encode()
        self.send(tag.encode() + b" " + line + b"\r\n")
        return self.read_until_tagged(tag)

    def ok(self, line):
        r = self.cmd(line)
        if r.status != "OK":
            raise ImapError("%s -> %r" % (line if isinstance(line, str) else "...", r))
        return r

    def login(self, user=USER, password=PASSWORD):
        return self.ok("LOGIN %s %s" % (quote(user), quote(password)))

    def select(self, mailbox="INBOX", examine=False):
        return self.ok("%s %s" % ("EXAMINE" if examine else "SELECT", quote(mailbox)))

    def noop(self):
        return self.ok("NOOP")

    def capabilities(self, text):
        return parse_caps(text)

    def is_closed(self, timeout=5.0):
        """True if the server closes the connection within timeout (bytes
        that arrive first are read and dropped)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return True
        except (socket.timeout, TimeoutError):
            return False
        finally:
            self.sock.settimeout(IO_TIMEOUT)

    def nothing_pending(self, wait=0.3):
        """True if the server sends nothing within wait seconds."""
        if self.buf:
            return False
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return True
        finally:
            self.sock.settimeout(IO_TIMEOUT)
        if chunk:
            self.buf += chunk
        return False

    def starttls(self):
        r = self.ok("STARTTLS")
        assert not self.buf, "bytes after the STARTTLS reply, before TLS: %r" % self.buf
        self.sock = yubintest.client_tls_context().wrap_socket(
            self.sock, server_hostname=yubintest.HOSTNAME)
        return r

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def quote(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def parse_caps(text):
    """The capability names in "[CAPABILITY a b c]" or "* CAPABILITY a b c",
    upper-cased."""
    m = re.search(r"\[CAPABILITY ([^\]]*)\]", text)
    if m:
        words = m.group(1).split()
    else:
        m = re.match(r"^(?:\* )?CAPABILITY (.*)$", text)
        assert m, "no capability list in %r" % text
        words = m.group(1).split()
    return [w.upper() for w in words]


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode("ascii")


# ---- FETCH responses ----

def _tokens(data):
    """Splits a FETCH attribute list (after "(") into tokens: atoms (with
    [..] and <..> kept whole), quoted strings, literals (as bytes) and
    parenthesized lists (as Python lists)."""
    pos = 0
    stack = [[]]
    n = len(data)
    while pos < n:
        c = data[pos:pos + 1]
        if c == b" ":
            pos += 1
        elif c == b"(":
            stack.append([])
            pos += 1
        elif c == b")":
            done = stack.pop()
            if not stack:
                return done, data[pos + 1:]
            stack[-1].append(done)
            pos += 1
        elif c == b'"':
            end = pos + 1
            out = b""
            while data[end:end + 1] != b'"':
                if data[end:end + 1] == b"\\":
                    end += 1
                out += data[end:end + 1]
                end += 1
            stack[-1].append(("quoted", out))
            pos = end + 1
        elif c == b"{":
            m = re.match(rb"\{(\d+)\}\r\n", data[pos:])
            assert m, "bad literal at %r" % data[pos:pos + 20]
            start = pos + m.end()
            stack[-1].append(bytes(data[start:start + int(m.group(1))]))
            pos = start + int(m.group(1))
        else:
            end = pos
            depth = 0
            while end < n:
                ch = data[end:end + 1]
                if ch in (b"[", b"<"):
                    depth += 1
                elif ch in (b"]", b">"):
                    depth -= 1
                elif depth == 0 and ch in (b" ", b")", b"("):
                    break
                end += 1
            stack[-1].append(data[pos:end].decode())
            pos = end
    raise AssertionError("unbalanced FETCH response: %r" % data[:200])


def parse_fetch(data):
    """The attributes of "* n FETCH (...)", given the bytes after "FETCH ",
    as an ordered {NAME: value} (names upper-cased as sent; values are str
    for atoms and numbers, bytes for literals and quoted strings, lists for
    lists). Asserts nothing follows the closing parenthesis."""
    assert data.startswith(b"("), data[:50]
    items, rest = _tokens(data[1:])
    assert rest == b"", "bytes after the FETCH list: %r" % rest[:80]
    assert len(items) % 2 == 0, "odd FETCH attribute list: %r" % items
    out = {}
    for i in range(0, len(items), 2):
        name = items[i]
        assert isinstance(name, str), "FETCH attribute name %r" % (name,)
        assert name.upper() not in out, "attribute %s twice" % name
        v = items[i + 1]
        if isinstance(v, tuple):
            v = v[1]
        out[name.upper()] = v
    return out


def wait_for(cond, timeout=5.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()
