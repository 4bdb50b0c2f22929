"""POP3 test helpers: a server with [smtp], [pop3] and [pop3s] listeners, mail
put in over SMTP, and a byte-exact POP3 client (RawPOP3).

Python's poplib is used where it is enough (it is what many scripts use);
RawPOP3 is for what poplib hides: exact bytes, pipelining, bad input,
SASL exchanges, and lines longer than poplib's 2048-octet limit.
"""

import re
import socket
import ssl

import yubintest

USER = "shiroyagi@example.com"
PASSWORD = yubintest.PASSWORD
IO_TIMEOUT = 20.0


def pop3_overrides(**limits):
    """Config overrides adding [pop3] and [pop3s] on free ports; no
    login failure delay or lock, so failing logins neither slow the tests
    nor lock the shared accounts."""
    lim = {"auth_fail_delay": "0", "auth_fail_delay_max": "0", "auth_lock_failures": "0",
           "max_message_size": "20M"}
    lim.update(limits)
    return {
        "pop3": {"listen": "127.0.0.1:%d" % yubintest.free_port()},
        "pop3s": {"listen": "127.0.0.1:%d" % yubintest.free_port()},
        "limits": lim,
    }


def make_server(factory, server_overrides=None, **limits):
    ov = pop3_overrides(**limits)
    for section, keys in (server_overrides or {}).items():
        ov.setdefault(section, {}).update(keys)
    return factory(ov, provision=yubintest.provision_standard)


def deliver(inst, msg, rcpt=USER, sender="alice@example.org"):
    """Puts msg (bytes, CRLF) into rcpt's INBOX over SMTP; smtplib does
    the dot-stuffing."""
    with inst.smtp() as s:
        s.sendmail(sender, [rcpt], msg)


def deliver_many(inst, msgs, rcpt=USER, sender="alice@example.org"):
    with inst.smtp() as s:
        for m in msgs:
            s.sendmail(sender, [rcpt], m)


class PopError(AssertionError):
    pass


class RawPOP3:
    """A byte-exact POP3 client: what is sent is what the server gets, and
    multi-line responses come back as the exact bytes of the message
    (dot-stuffing undone, nothing else)."""

    def __init__(self, inst, tls=False, greet=True, timeout=IO_TIMEOUT):
        port = inst.listener_port("pop3s" if tls else "pop3")
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            self.sock = yubintest.client_tls_context().wrap_socket(
                self.sock, server_hostname=yubintest.HOSTNAME)
        self.buf = b""
        self.greeting = self.line() if greet else None
        if greet:
            assert self.greeting.startswith(b"+OK"), self.greeting

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
        """One line, without its CRLF (which it must have)."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                break
            self._fill()
        raw, self.buf = self.buf[:i + 1], self.buf[i + 1:]
        assert raw.endswith(b"\r\n"), "line without CRLF: %r" % raw[-80:]
        return raw[:-2]

    def status(self):
        """A status line as text."""
        l = self.line().decode("utf-8", "replace")
        assert l.startswith("+OK") or l.startswith("-ERR") or l.startswith("+ "), \
            "not a status line: %r" % l
        return l

    def cmd(self, line):
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return self.status()

    def ok(self, line):
        r = self.cmd(line)
        if not r.startswith("+OK"):
            raise PopError("%s -> %s" % (line if isinstance(line, str) else "...", r))
        return r

    def multiline(self):
        """The body of a multi-line response, as exact bytes (CRLF line
        ends, dot-stuffing undone). Reads until the terminating line, in
        big pieces and searching only new bytes, so large messages stay
        fast."""
        if self.buf.startswith(b".\r\n"):
            self.buf = self.buf[3:]
            return b""
        parts = []
        scanned = 0         # bytes of self.buf already searched
        while True:
            end = self.buf.find(b"\r\n.\r\n", max(0, scanned - 4))
            if end >= 0:
                break
            if len(self.buf) > (1 << 20):
                # Keep a tail that may hold the start of the terminator.
                parts.append(self.buf[:-8])
                self.buf = self.buf[-8:]
            scanned = len(self.buf)
            self._fill()
        parts.append(self.buf[:end + 2])
        self.buf = self.buf[end + 5:]
        body = b"".join(parts)
        # RFC 1939 3: a line starting with "." was sent with one more.
        if b"\n." not in body and not body.startswith(b"."):
            return body
        lines = body.split(b"\r\n")
        return b"\r\n".join(l[1:] if l.startswith(b".") else l for l in lines)

    def multiline_raw(self):
        """The bytes of a multi-line response as sent, terminator included."""
        out = b""
        while True:
            if out.endswith(b"\r\n.\r\n") or out == b".\r\n":
                return out
            out += self.line() + b"\r\n"

    def lines(self, line):
        """A command with a multi-line answer: (status, [lines as text])."""
        st = self.ok(line)
        body = self.multiline()
        return st, [l.decode() for l in body.split(b"\r\n")[:-1]] if body else []

    def login(self, user=USER, password=PASSWORD):
        self.ok("USER " + user)
        return self.ok("PASS " + password)

    def retr(self, n):
        st = self.ok("RETR %d" % n)
        return st, self.multiline()

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

    def stls(self):
        st = self.cmd("STLS")
        assert st.startswith("+OK"), st
        assert not self.buf, "bytes after the STLS reply, before TLS: %r" % self.buf
        self.sock = yubintest.client_tls_context().wrap_socket(
            self.sock, server_hostname=yubintest.HOSTNAME)
        return st

    def capa(self):
        _, lines = self.lines("CAPA")
        return lines

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def quit_ok(c):
    st = c.ok("QUIT")
    assert c.is_closed()
    return st


def stored_messages(inst, user=USER):
    """{uid: bytes} of the INBOX as `yubin mail show` gives it."""
    return {r.uid: inst.mail_show(user, "INBOX", r.uid) for r in inst.mail_list(user)}


def empty_inbox(inst, user=USER):
    """Deletes every message of user's INBOX over POP3."""
    c = RawPOP3(inst)
    c.login(user)
    n = int(c.ok("STAT").split()[1])
    for i in range(1, n + 1):
        c.ok("DELE %d" % i)
    quit_ok(c)
    c.close()


STAT_RE = re.compile(r"^\+OK (\d+) (\d+)$")


def stat(c):
    m = STAT_RE.match(c.ok("STAT"))
    assert m, "bad STAT answer"
    return int(m.group(1)), int(m.group(2))
