"""Real IMAP clients against a real `yubin serve`, on generated mail
(msggen.py: plain, encoded-word, quoted-printable, base64, multipart,
RFC 2231 attachments, message/rfc822, no Content-Type, long folded and
8-bit headers, bare LFs, 200 bytes to 200 KB).

mutt (Debian's mutt 2.x, batch over a pty)
    mutt is a full-screen program: it needs a terminal. Each run starts
    `mutt -n -F MUTTRC -f +INBOX -e 'push "..."'` on a pseudo-terminal
    (pty.fork: the pty is its controlling tty, 60x200, TERM=vt100,
    LC_ALL=C.UTF-8, HOME a temp folder) with keys queued by `push`, and
    a small VT100 emulator (Screen below) keeps what mutt shows, so a test
    can wait for a screen and read it, then type more keys. The muttrc
    sets the account (imap_user, imap_pass, folder imap://127.0.0.1:PORT/),
    forces STARTTLS (ssl_starttls, ssl_force_tls) and trusts the server's
    self-signed certificate by listing it in certificate_file (mutt's
    store of accepted certificates) with ssl_verify_host off (the
    certificate is for mx.test.example, mutt connects to 127.0.0.1); no
    header or body cache, no prompts (wait_key, delete, quit, confirm*).
    `-d 2` writes ~/.muttdebug0 with the IMAP exchange, shown on failure.
    Three runs: the folder browser lists the folders (mUTF-7 decoded, a
    child folder); pipe-message with pipe_split gives every message, which
    must be the stored bytes with LF line ends; copy-message files one into
    another folder; delete-message + sync-mailbox expunges one, which
    imaplib then no longer sees.

mbsync (isync 1.4)
    A channel between the account over STARTTLS (CertificateFile: the
    server's certificate) and a Maildir, run on a pty so that mbsync
    prints its progress counters (added / flags changed / trashed on each
    side), which must be exactly what the test changed. 1,000 messages
    (SMTP, parallel sessions) with flags set over IMAP are pulled: every
    Maildir file is the stored message with LF line ends (plus mbsync's
    own X-TUID header field), with the flags in its name. Then messages
    are added and flags changed (added, removed, T for \\Deleted) on the
    Maildir side and pushed: imaplib sees the new messages (bytes, flags)
    and the new flags, the old ones keep their UIDs and bytes. Then new
    mail and flag changes on the server side are pulled with --expunge
    (the \\Deleted ones go on both sides). A sync then must change nothing
    on either side (counters 0, same files, same UIDs, flags, UIDNEXT).
    A last one, with -Dn (mbsync's protocol log), checks its fast path:
    only the new messages' bodies are fetched (the rest is a UID FLAGS
    sweep: isync 1.4 has no CONDSTORE), what it pushes gets its UID from
    APPENDUID (UIDPLUS; no X-TUID search), COMPRESS=DEFLATE is on.

imaplib
    3,000 messages, half over SMTP and half by APPEND (flags, internal
    dates): one FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])
    returns every message's exact bytes and RFC822.SIZE is their length.

Delivery uses several sessions at once: the server commits deliveries of
concurrent sessions together, one session at a time is much slower.
"""

import base64
import codecs
import errno
import fcntl
import imaplib
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import termios
import threading
import time
import unicodedata

import pytest

import imaptest
import msggen
import yubintest

MUTT = shutil.which("mutt")
MBSYNC = shutil.which("mbsync")
PASSWORD = yubintest.PASSWORD
SENDER = "alice@example.org"
CONNS = 8


@pytest.fixture(scope="module")
def srv(module_yubin_factory):
    """[smtp] with bare_lf = normalize (some generated messages have bare
    LFs), [imap] and [imaps]."""
    ov = imaptest.imap_overrides()
    ov["smtp"] = {"bare_lf": "normalize"}
    return module_yubin_factory(ov, provision=yubintest.provision_standard)


# ---- delivery ----

def _parallel(fn, parts):
    errors = []

    def run(part):
        try:
            fn(part)
        except BaseException as e:     # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=run, args=(p,)) for p in parts if p]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def deliver_smtp(inst, user, msgs, conns=CONNS):
    """Each message over SMTP to user, conns sessions at once."""
    def send(part):
        with inst.smtp(timeout=60) as s:
            for m in part:
                s.sendmail(SENDER, [user], m.data,
                           mail_options=["BODY=8BITMIME", "SMTPUTF8"])
    _parallel(send, [msgs[k::conns] for k in range(conns)])


def deliver_append(inst, user, mailbox, items, conns=CONNS):
    """APPENDs [(message, flags or None, internal date or None)] to
    mailbox over conns sessions, each sending all its commands at once
    (LITERAL+); asserts every APPEND is OK."""
    def send(part):
        c = imaptest.RawIMAP(inst, timeout=60)
        try:
            c.login(user)
            cmds = []
            for i, (m, flags, date) in enumerate(part):
                cmd = b"a%d APPEND %s" % (i, imaptest.quote(mailbox).encode())
                if flags is not None:
                    cmd += b" (" + flags.encode() + b")"
                if date is not None:
                    cmd += b' "' + date.encode() + b'"'
                cmds.append(cmd + b" {%d+}\r\n" % len(m.data) + m.data + b"\r\n")
            sender = threading.Thread(target=c.send, args=(b"".join(cmds),))
            sender.start()
            try:
                for i in range(len(part)):
                    r = c.read_until_tagged("a%d" % i)
                    assert r.status == "OK", (part[i][0], r)
            finally:
                sender.join()
        finally:
            c.close()
    _parallel(send, [items[k::conns] for k in range(conns)])


# ---- what was stored ----

MSGID_RE = re.compile(rb"^message-id:[ \t]*<([^>\r\n]+)>", re.I | re.M)


def header_of(data):
    """The header block (up to the first empty line, CRLF or LF)."""
    ends = [i for i in (data.find(b"\r\n\r\n"), data.find(b"\n\n")) if i >= 0]
    return data[:min(ends)] if ends else data


def msgid_of(data):
    m = MSGID_RE.search(header_of(data))
    assert m, "no Message-ID in %r" % data[:300]
    return m.group(1).decode()


def check_smtp_stored(stored, m):
    """stored (CRLF) is our trace fields and then what was sent, bare LFs
    made CRLF ([smtp] bare_lf = normalize)."""
    trace, rest = yubintest.split_stored(stored)
    assert [t.split(b":")[0] for t in trace] == [b"Return-Path", b"Delivered-To",
                                                  b"Received"], (m, trace)
    assert rest == m.crlf(), "%r: stored message differs from the one sent: %s" % (
        m, first_diff(rest, m.crlf()))


def check_appended(stored, m):
    """APPEND stores the literal; a bare LF may be stored as CRLF."""
    if m.bare_lf:
        assert stored in (m.data, m.crlf()), m
    else:
        assert stored == m.data, "%r: stored message differs from the one appended: %s" % (
            m, first_diff(stored, m.data))


def first_diff(got, want):
    """Where two byte strings part, for failure messages."""
    n = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]),
             min(len(got), len(want)))
    return "%d vs %d bytes, differ at %d:\n got  %r\n want %r" % (
        len(got), len(want), n, got[max(0, n - 80):n + 80], want[max(0, n - 80):n + 80])


def to_lf(data):
    return data.replace(b"\r\n", b"\n")


def imap_login(inst, user):
    c = imaplib.IMAP4("127.0.0.1", inst.listener_port("imap"), timeout=120)
    c.login(user, PASSWORD)
    return c


FETCH_HEAD_RE = re.compile(rb"^(\d+) \((.*)\{(\d+)\}$", re.S)


def fetch_all(c, items, sequence="1:*", uid=False):
    """imaplib FETCH with one literal per message (BODY[...]): a list of
    (seq, {ITEM: value as bytes}, literal), items parsed from the text
    before and after the literal."""
    if uid:
        typ, data = c.uid("FETCH", sequence, items)
    else:
        typ, data = c.fetch(sequence, items)
    assert typ == "OK", data
    out = []
    i = 0
    while i < len(data):
        d = data[i]
        i += 1
        if not isinstance(d, tuple):
            # ")" or a FETCH without a literal (flags another client set)
            assert d == b")" or re.match(rb"^\d+ \(", d), "unexpected FETCH data %r" % d[:200]
            continue
        head, lit = d
        m = FETCH_HEAD_RE.match(head)
        assert m, head[:300]
        assert int(m.group(3)) == len(lit)
        text = m.group(2) + b"{}"
        if i < len(data) and isinstance(data[i], bytes):
            text += data[i]      # what came after the literal: " UID 7)" or ")"
            i += 1
        out.append((int(m.group(1)), parse_items(text), lit))
    return out


ITEM_RE = re.compile(rb'\s*(UID|FLAGS|INTERNALDATE|RFC822\.SIZE|BODY\[[^\]]*\](?:<\d+>)?)\s+'
                     rb'(\d+|\([^)]*\)|"[^"]*"|\{\})', re.I)


def parse_items(text):
    items = {}
    pos = 0
    text = text.rstrip(b")")
    while pos < len(text.rstrip()):
        m = ITEM_RE.match(text, pos)
        assert m, "cannot parse FETCH items at %r" % text[pos:pos + 100]
        items[m.group(1).upper().decode()] = m.group(2)
        pos = m.end()
    return items


def flags_of(value):
    """b'(\\Seen $X)' -> {'\\Seen', '$X'}"""
    return set(value.decode().strip("()").split())


# ---- a terminal for mutt ----

CSI_RE = re.compile(r"\x1b\[([?>]?[0-9;]*)([@-~])")


class Screen:
    """The part of a VT100 that ncurses uses with TERM=vt100: cursor
    addressing and moves, erase in line and display, scroll regions with
    index and reverse index, auto-wrap; colours, modes and character sets
    are ignored. Double-width characters take two cells."""

    def __init__(self, rows, cols):
        self.rows, self.cols = rows, cols
        self.grid = [[" "] * cols for _ in range(rows)]
        self.y = self.x = 0
        self.top, self.bottom = 0, rows - 1
        self.wrap = False
        self.saved = (0, 0)
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.pending = ""

    def lines(self):
        return ["".join(r).rstrip() for r in self.grid]

    def text(self):
        return "\n".join(self.lines())

    def _blank(self):
        return [" "] * self.cols

    def _index(self):
        if self.y == self.bottom:
            del self.grid[self.top]
            self.grid.insert(self.bottom, self._blank())
        elif self.y < self.rows - 1:
            self.y += 1

    def _rindex(self):
        if self.y == self.top:
            del self.grid[self.bottom]
            self.grid.insert(self.top, self._blank())
        elif self.y > 0:
            self.y -= 1

    def _put(self, ch):
        if unicodedata.combining(ch):
            return
        w = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if self.wrap or self.x + w > self.cols:
            self.x = 0
            self._index()
        self.wrap = False
        self.grid[self.y][self.x] = ch
        if w == 2:
            self.grid[self.y][self.x + 1] = ""
        self.x += w
        if self.x >= self.cols:
            self.x = self.cols - 1
            self.wrap = True

    def _csi(self, params, final):
        if params.startswith(("?", ">")):
            return                                  # modes: ignored
        p = [int(v) if v else 0 for v in params.split(";")] if params else []
        n = max(1, p[0]) if p else 1
        self.wrap = False
        if final in "Hf":
            self.y = min(self.rows - 1, max(1, p[0] if p else 1) - 1)
            self.x = min(self.cols - 1, max(1, p[1] if len(p) > 1 else 1) - 1)
        elif final == "A":
            self.y = max(0, self.y - n)
        elif final == "B":
            self.y = min(self.rows - 1, self.y + n)
        elif final == "C":
            self.x = min(self.cols - 1, self.x + n)
        elif final == "D":
            self.x = max(0, self.x - n)
        elif final == "G":
            self.x = min(self.cols - 1, n - 1)
        elif final == "d":
            self.y = min(self.rows - 1, n - 1)
        elif final == "K":
            mode = p[0] if p else 0
            row = self.grid[self.y]
            lo, hi = {0: (self.x, self.cols), 1: (0, self.x + 1), 2: (0, self.cols)}[mode]
            for i in range(lo, hi):
                row[i] = " "
        elif final == "J":
            mode = p[0] if p else 0
            if mode == 0:
                self._csi("0", "K")
                rows = range(self.y + 1, self.rows)
            elif mode == 1:
                self._csi("1", "K")
                rows = range(0, self.y)
            else:
                rows = range(self.rows)
            for r in rows:
                self.grid[r] = self._blank()
        elif final == "r":
            self.top = (p[0] if p and p[0] else 1) - 1
            self.bottom = (p[1] if len(p) > 1 and p[1] else self.rows) - 1
            self.y = self.x = 0
        elif final == "L":
            for _ in range(n):
                del self.grid[self.bottom]
                self.grid.insert(self.y, self._blank())
        elif final == "M":
            for _ in range(n):
                del self.grid[self.y]
                self.grid.insert(self.bottom, self._blank())
        elif final == "P":
            row = self.grid[self.y]
            del row[self.x:self.x + n]
            row.extend([" "] * (self.cols - len(row)))
        elif final == "@":
            row = self.grid[self.y]
            row[self.x:self.x] = [" "] * n
            del row[self.cols:]
        elif final == "X":
            for i in range(self.x, min(self.cols, self.x + n)):
                self.grid[self.y][i] = " "
        # m (attributes), h/l (modes), others: ignored

    def feed(self, data):
        s = self.pending + self.decoder.decode(data)
        self.pending = ""
        i = 0
        while i < len(s):
            c = s[i]
            if c == "\x1b":
                m = CSI_RE.match(s, i)
                if m:
                    self._csi(m.group(1), m.group(2))
                    i = m.end()
                    continue
                rest = s[i:]
                if re.match(r"^\x1b(\[[?>]?[0-9;]*)?$", rest) or re.match(r"^\x1b[()]$", rest):
                    self.pending = rest            # cut in the middle
                    return
                nxt = s[i + 1]
                if nxt in "()":
                    i += 3
                    continue
                if nxt == "7":
                    self.saved = (self.y, self.x)
                elif nxt == "8":
                    self.y, self.x = self.saved
                elif nxt == "M":
                    self._rindex()
                elif nxt == "D":
                    self._index()
                elif nxt == "E":
                    self.x = 0
                    self._index()
                self.wrap = False
                i += 2
                continue
            i += 1
            if c == "\r":
                self.x = 0
                self.wrap = False
            elif c == "\n":
                self._index()
                self.wrap = False
            elif c == "\b":
                self.x = max(0, self.x - 1)
                self.wrap = False
            elif c == "\t":
                self.x = min(self.cols - 1, (self.x // 8 + 1) * 8)
            elif c >= " " and c != "\x7f":
                self._put(c)
            # other controls (BEL, SO, SI, ...): ignored


class Terminal:
    """A program on a pseudo-terminal, with a Screen of what it shows."""

    def __init__(self, argv, env, cwd, rows=60, cols=200):
        self.argv = argv
        self.screen = Screen(rows, cols)
        self.raw = b""
        pid, fd = pty.fork()
        if pid == 0:                                  # the child
            try:
                os.chdir(cwd)
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.status = None
        self.eof = False

    def _read(self, timeout):
        """Reads what is there within timeout; False on nothing, None at
        the end."""
        if self.eof:
            return None
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self.eof = True
            return None
        self.raw += data
        self.screen.feed(data)
        return True

    def wait_screen(self, pattern, timeout=30.0):
        """Waits until the screen matches the regex pattern, then until
        the program has been quiet for a moment; returns the match."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern, re.M)
        while True:
            m = rx.search(self.screen.text())
            if m:
                while self._read(0.3):
                    pass
                return rx.search(self.screen.text()) or m
            left = deadline - time.monotonic()
            if left <= 0 or self._read(min(left, 0.2)) is None and not rx.search(
                    self.screen.text()):
                raise AssertionError("%s: no %r on the screen%s:\n%s" % (
                    self.argv[0], pattern, " (it ended)" if self.eof else "",
                    self.screen.text()))

    def send(self, keys):
        os.write(self.fd, keys.encode() if isinstance(keys, str) else keys)

    def wait_exit(self, timeout=60.0):
        """Reads the output to the end; returns the exit status (the
        program is killed if it runs past timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read(0.2)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while self._read(0.05):
                    pass
                os.close(self.fd)
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
        self.kill()
        raise AssertionError("%s did not end within %gs; screen:\n%s"
                             % (self.argv[0], timeout, self.screen.text()))

    def kill(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except OSError:
                pass
            self.status = -9
            try:
                os.close(self.fd)
            except OSError:
                pass


# ---- mutt ----

class MuttEnv:
    """A HOME with a muttrc for user on srv's [imap] (STARTTLS)."""

    def __init__(self, srv, user, home):
        self.home = str(home)
        self.user = user
        os.makedirs(self.home, exist_ok=True)
        self.certs = os.path.join(self.home, "certificates")
        shutil.copy(os.path.join(srv.dir, "tls", "cert.pem"), self.certs)
        self.url = "imap://127.0.0.1:%d/" % srv.listener_port("imap")
        self.muttrc = os.path.join(self.home, "muttrc")
        with open(self.muttrc, "w") as f:
            f.write("\n".join([
                'set imap_user="%s"' % user,
                'set imap_pass="%s"' % PASSWORD,
                'set folder="%s"' % self.url,
                'set spoolfile="+INBOX"',
                "set ssl_starttls=yes",
                "set ssl_force_tls=yes",
                'set certificate_file="%s"' % self.certs,
                "set ssl_verify_host=no",
                'set header_cache=""',
                'set message_cachedir=""',
                "set imap_check_subscribed=no",
                "set imap_passive=no",
                "set mail_check=60",
                "set timeout=600",
                "set sort=mailbox-order",
                "set pipe_decode=no",
                "set pipe_split=yes",
                'set pipe_sep=""',           # else a newline after each message
                "set wait_key=no",
                "set delete=yes",
                "set quit=yes",
                "set move=no",
                "set mark_old=no",
                "set confirmappend=no",
                "set confirmcreate=no",
                'set record=""',
                'set postponed="+Drafts"',
                "set beep=no",
                "set help=yes",
                ""]))
        self.debug_log = os.path.join(self.home, ".muttdebug0")

    def start(self, *commands, rows=60, cols=200):
        argv = [MUTT, "-n", "-F", self.muttrc, "-d", "2", "-f", "+INBOX"]
        for c in commands:
            argv += ["-e", c]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home,
               "TERM": "vt100", "LC_ALL": "C.UTF-8", "LINES": str(rows),
               "COLUMNS": str(cols), "TMPDIR": self.home, "SHELL": "/bin/sh"}
        return Terminal(argv, env, self.home, rows, cols)

    def debug_text(self):
        try:
            with open(self.debug_log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def debug(self):
        """The end of mutt's debug log, for failure messages."""
        return "---- %s (end) ----\n%s" % (self.debug_log, self.debug_text()[-8000:])

    def run(self, push, timeout=90.0):
        """One batch run: mutt opens INBOX and does push (which must end
        with <quit>); asserts it exits 0."""
        t = self.start('push "%s"' % push)
        try:
            rc = t.wait_exit(timeout)
        finally:
            t.kill()
        assert rc == 0, "mutt exited %r; screen:\n%s\n%s" % (rc, t.screen.text(), self.debug())
        return t


BROWSER_ROW_RE = re.compile(r"^\s*\d+\s+IMAP\s+\+?\s+(\S.*?)\s*$")


def browser_entries(screen_text):
    """The names in mutt's folder browser: rows "  N     IMAP [+]  NAME"."""
    out = []
    for line in screen_text.split("\n"):
        m = BROWSER_ROW_RE.match(line.lstrip("-> "))
        if m:
            out.append(m.group(1))
    return out


def mutf7_decode(name):
    """RFC 3501 5.1.3 modified UTF-7 to text."""
    def dec(m):
        s = m.group(1)
        if s == "":
            return "&"
        b = s.replace(",", "/")
        b += "=" * (-len(b) % 4)
        return base64.b64decode(b).decode("utf-16-be")
    return re.sub(r"&([^-]*)-", dec, name)


LIST_RE = re.compile(rb'^\(([^)]*)\) (?:"(?:[^"\\]|\\.)"|NIL) (.*)$')


def imap_list(c, pattern="*"):
    """{name (text): set of attributes} from LIST "" pattern."""
    typ, data = c.list('""', pattern)
    assert typ == "OK", data
    out = {}
    for d in data:
        if isinstance(d, tuple):       # a name sent as a literal
            m = LIST_RE.match(d[0].rsplit(b" {", 1)[0] + b" x")
            name = d[1]
        else:
            m = LIST_RE.match(d)
            name = m.group(2)
        assert m, d
        if name.startswith(b'"'):
            name = name[1:-1].replace(b'\\"', b'"').replace(b"\\\\", b"\\")
        out[mutf7_decode(name.decode())] = set(m.group(1).decode().split())
    return out


def test_mutt_lists_reads_copies_and_deletes(srv, tmp_path):
    # `make test` installs it (scripts/deps.sh test): missing is a failure.
    assert MUTT is not None, "mutt is not installed (scripts/deps.sh test)"
    user = imaptest.new_user(srv, "mutt")
    msgs = msggen.generate(30, seed=11, to=user)
    deliver_smtp(srv, user, msgs)
    by_id = {m.msgid: m for m in msgs}

    c = imap_login(srv, user)
    for name in ("Archive", "Archive/2024", "Work", "&ZeVnLIqe-", "Spaced Name"):
        typ, data = c.create('"%s"' % name)
        assert typ == "OK", (name, data)
    folders = imap_list(c, "%")
    assert "日本語" in folders and "Archive" in folders, folders
    c.select("INBOX", readonly=True)
    stored = {}
    for _seq, items, body in fetch_all(c, "(UID BODY.PEEK[])"):
        stored[msgid_of(body)] = (int(items["UID"]), body)
    assert sorted(stored) == sorted(by_id)
    for mid, (_uid, body) in stored.items():
        check_smtp_stored(body, by_id[mid])

    env = MuttEnv(srv, user, tmp_path / "mutt")

    # 1. The folder list: mutt's browser on the folder (LIST "" "%"), then
    # into Archive/ (LIST "" "Archive/%").
    t = env.start('push "<change-folder>?"')
    try:
        t.wait_screen(r"Directory \[imap://127\.0\.0\.1:\d+/\]")
        want = sorted(n + "/" if "\\HasChildren" in a else n for n, a in folders.items())
        shown = browser_entries(t.screen.text())
        assert sorted(shown) == want, "mutt's folder list:\n%s\n%s" % (
            t.screen.text(), env.debug())
        t.send("/Archive\r")                       # search-entry: to Archive/
        time.sleep(0.3)
        t.send("\r")                               # descend
        t.wait_screen(r"Directory \[(=|imap://127\.0\.0\.1:\d+/)Archive/\]")
        shown = browser_entries(t.screen.text())
        assert any(e in ("2024", "Archive/2024") for e in shown), \
            "no 2024 under Archive/:\n%s\n%s" % (t.screen.text(), env.debug())
        t.send("q")                                # leave the browser
        time.sleep(0.3)
        t.send("\x07")                             # abort the prompt, if any
        t.wait_screen(r"Mutt: =INBOX \[Msgs:%d " % len(msgs))
        t.send("q")                                # quit mutt
        rc = t.wait_exit(60)
    finally:
        t.kill()
    assert rc == 0, "mutt exited %r\n%s" % (rc, env.debug())
    debug = env.debug_text()
    assert re.search(r"> a\d+ STARTTLS\s", debug) and "SSL/TLS connection using" in debug, \
        env.debug()

    # 2. Read every message (pipe_split: one pipe per message), and copy
    # one into Work.
    out = tmp_path / "piped"
    out.mkdir()
    save = tmp_path / "save.sh"
    save.write_text('#!/bin/sh\nexec cat > "$(mktemp "%s/m.XXXXXXXX")"\n' % out)
    save.chmod(0o755)
    copied = msgs[6]
    env.run("<tag-pattern>~A<enter><tag-prefix><pipe-message>%s<enter>"
            "<untag-pattern>~A<enter>"
            "<search>~i %s<enter><copy-message>=Work<enter><quit>"
            % (save, copied.msgid))
    piped = {}
    for fn in sorted(os.listdir(out)):
        data = (out / fn).read_bytes()
        mid = msgid_of(data)
        assert mid not in piped, "mutt piped %s twice" % mid
        piped[mid] = data
    assert sorted(piped) == sorted(by_id), "mutt piped %d of %d messages\n%s" % (
        len(piped), len(by_id), env.debug())
    for mid, data in piped.items():
        want = to_lf(stored[mid][1])
        assert data == want, "%r: what mutt read is not what is stored: %s" % (
            by_id[mid], first_diff(data, want))

    typ, data = c.select('"Work"', readonly=True)
    assert typ == "OK" and data == [b"1"], data
    work = fetch_all(c, "(BODY.PEEK[])")
    assert [b for _s, _i, b in work] == [stored[copied.msgid][1]]

    # 3. Delete one message and sync (STORE \Deleted + EXPUNGE).
    victim = msgs[3]
    env.run("<search>~i %s<enter><delete-message><sync-mailbox><quit>"
            % victim.msgid)
    typ, data = c.select("INBOX", readonly=True)
    assert typ == "OK" and data == [str(len(msgs) - 1).encode()], data
    left = {msgid_of(b): int(i["UID"]) for _s, i, b in fetch_all(c, "(UID BODY.PEEK[])")}
    assert victim.msgid not in left, "mutt's delete did not expunge it\n%s" % env.debug()
    assert left == {mid: uid for mid, (uid, _b) in stored.items() if mid != victim.msgid}
    c.logout()


# ---- mbsync ----

def maildir_messages(box):
    """{file name: path} of the messages of a Maildir folder (cur, new)."""
    out = {}
    for sub in ("cur", "new"):
        d = os.path.join(box, sub)
        if os.path.isdir(d):
            for n in os.listdir(d):
                out[n] = os.path.join(d, n)
    return out


def maildir_flags(name):
    return set(name.split(":2,", 1)[1]) if ":2," in name else set()


def set_maildir_flags(path, flags):
    """Renames the message file to carry flags (in cur/); returns the new path."""
    box = os.path.dirname(os.path.dirname(path))
    base = os.path.basename(path).split(":2,", 1)[0]
    new = os.path.join(box, "cur", base + ":2," + "".join(sorted(flags)))
    os.rename(path, new)
    return new


TUID_RE = re.compile(rb"^X-TUID: [^\r\n]*\r?\n", re.M)


def strip_tuid(data):
    """data without the X-TUID header field mbsync adds to the header of
    the messages it copies (to find them again), and how many it had."""
    head = header_of(data)
    end = len(head) + (2 if data[len(head):len(head) + 2] == b"\r\n" else 1)
    m = TUID_RE.search(data, 0, end)
    if not m:
        return data, 0
    return data[:m.start()] + data[m.end():], 1


MAILDIR_TO_IMAP = {"S": "\\Seen", "F": "\\Flagged", "R": "\\Answered",
                   "T": "\\Deleted", "D": "\\Draft"}


class MbsyncEnv:
    def __init__(self, srv, user, home, box="INBOX"):
        self.home = str(home)
        self.maildir = os.path.join(self.home, "Mail")
        self.box = os.path.join(self.maildir, box)
        os.makedirs(self.maildir)
        self.rc = os.path.join(self.home, "mbsyncrc")
        with open(self.rc, "w") as f:
            f.write("\n".join([
                "IMAPAccount yubin",
                "Host 127.0.0.1",
                "Port %d" % srv.listener_port("imap"),
                'User "%s"' % user,
                'Pass "%s"' % PASSWORD,
                "SSLType STARTTLS",
                "CertificateFile %s" % os.path.join(srv.dir, "tls", "cert.pem"),
                "",
                "IMAPStore far",
                "Account yubin",
                "",
                "MaildirStore near",
                "Path %s/" % self.maildir,
                "Inbox %s" % os.path.join(self.maildir, "INBOX"),
                "SubFolders Verbatim",
                "",
                "Channel c",
                "Far :far:",
                "Near :near:",
                "Patterns %s" % box,
                "Create Near",
                "Sync All",
                "Expunge None",
                "SyncState *",
                ""]))
        self.runs = []

    def run(self, *args):
        """One `mbsync [args] c`, on a pty so that it prints its progress
        counters (man mbsync, CONSOLE OUTPUT); asserts exit 0 and no
        error or warning; returns the final counters as
        {"far": (added, flags updated, trashed), "near": (...)}."""
        argv = [MBSYNC, "-c", self.rc] + list(args) + ["c"]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home,
               "TERM": "vt100", "LC_ALL": "C.UTF-8"}
        t = Terminal(argv, env, self.home, rows=40, cols=200)
        try:
            rc = t.wait_exit(150)
        finally:
            t.kill()
        out = t.raw.decode("utf-8", "replace")
        self.runs.append(out)
        assert rc == 0, "mbsync exited %d\n%s" % (rc, out[-6000:])
        bad = [l for l in re.split(r"[\r\n]+", out) if re.search(r"error|warning", l, re.I)]
        assert not bad, "mbsync complained:\n%s" % out[-6000:]
        counters = COUNTERS_RE.findall(out)
        assert counters, "no progress counters from mbsync:\n%s" % out[-6000:]
        c = [int(v) for v in counters[-1]]
        # C: done/total  B: done/total  F: +a/b *c/d #e/f  N: +a/b *c/d #e/f
        assert c[0] == c[1] == 1 and c[2] == c[3] == 1, counters[-1]
        for k in range(4, 16, 2):
            assert c[k] == c[k + 1], "mbsync did not finish all: %s" % (counters[-1],)
        return {"far": (c[4], c[6], c[8]), "near": (c[10], c[12], c[14])}

    def run_debug(self, *args):
        """One `mbsync -Dn [args] c` (debug output: the IMAP exchange
        without message bodies; no progress counters then, so not on a
        pty); asserts exit 0 and no error or warning; returns the output."""
        argv = [MBSYNC, "-c", self.rc, "-Dn"] + list(args) + ["c"]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home,
               "LC_ALL": "C.UTF-8"}
        p = subprocess.run(argv, env=env, cwd=self.home, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=150)
        out = p.stdout.decode("utf-8", "replace")
        self.runs.append(out)
        assert p.returncode == 0, "mbsync exited %d\n%s" % (p.returncode, out[-6000:])
        bad = [l for l in out.splitlines() if not re.match(r"^(\* |\d+ |>>> |>\+> |\+ |\()", l)
               and re.search(r"\b(error|warning)\b", l, re.I)]
        assert not bad, "mbsync complained: %s\n%s" % (bad, out[-6000:])
        return out


COUNTERS_RE = re.compile(r"C: (\d+)/(\d+)\s+B: (\d+)/(\d+)\s+"
                         r"F: \+(\d+)/(\d+) \*(\d+)/(\d+) #(\d+)/(\d+)\s+"
                         r"N: \+(\d+)/(\d+) \*(\d+)/(\d+) #(\d+)/(\d+)")


def imap_state(c, box="INBOX"):
    """(UIDVALIDITY, UIDNEXT, {uid: (flags, Message-ID)}) of box."""
    typ, data = c.status(box, "(UIDVALIDITY UIDNEXT MESSAGES)")
    assert typ == "OK", data
    st = dict(re.findall(rb"(UIDVALIDITY|UIDNEXT|MESSAGES) (\d+)", data[0]))
    typ, data = c.select(box, readonly=True)
    assert typ == "OK", data
    msgs = {}
    if int(st[b"MESSAGES"]):
        for _s, items, body in fetch_all(
                c, "(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"):
            msgs[int(items["UID"])] = (frozenset(flags_of(items["FLAGS"])),
                                       msgid_of(body + b"\r\n"))
    return int(st[b"UIDVALIDITY"]), int(st[b"UIDNEXT"]), msgs


def read_maildir(env, by_id):
    """{Message-ID: (file name, bytes without X-TUID)} of env's Maildir
    INBOX; asserts each message is there once and known."""
    out = {}
    for name, path in maildir_messages(env.box).items():
        with open(path, "rb") as f:
            data = f.read()
        mid = msgid_of(data)
        assert mid in by_id, "unknown message %s in the Maildir" % mid
        assert mid not in out, "%s twice in the Maildir" % mid
        plain, ntuid = strip_tuid(data)
        assert ntuid <= 1
        out[mid] = (name, plain)
    return out


def check_maildir(env, by_id, stored, want_flags):
    """The Maildir holds exactly the messages of stored ({Message-ID:
    bytes on the server}), each the same bytes with LF line ends (and
    X-TUID fields aside), with want_flags[Message-ID] (Maildir letters)
    in its name."""
    local = read_maildir(env, by_id)
    assert sorted(local) == sorted(stored), "Maildir: %d messages, server: %d\n%s" % (
        len(local), len(stored), env.runs[-1][-3000:])
    for mid, (name, plain) in local.items():
        want = to_lf(strip_tuid(stored[mid])[0])     # the pushed ones have one
        assert plain == want, "%r: the Maildir copy is not the stored message: %s" % (
            by_id[mid], first_diff(plain, want))
        assert maildir_flags(name) == want_flags[mid], (by_id[mid], name, want_flags[mid])
    return local


def server_messages(c):
    """{Message-ID: (uid, flags as Maildir letters, bytes)} of INBOX."""
    typ, data = c.select("INBOX", readonly=True)
    assert typ == "OK", data
    imap_to_maildir = {v: k for k, v in MAILDIR_TO_IMAP.items()}
    out = {}
    for _s, items, body in fetch_all(c, "(UID FLAGS BODY.PEEK[])"):
        flags = flags_of(items["FLAGS"])
        assert flags <= set(imap_to_maildir), flags
        out[msgid_of(body)] = (int(items["UID"]), {imap_to_maildir[f] for f in flags}, body)
    return out


def test_mbsync_pull_push_and_idle_sync(srv, tmp_path):
    assert MBSYNC is not None, "mbsync is not installed (scripts/deps.sh test)"
    user = imaptest.new_user(srv, "mbsync")
    msgs = msggen.generate(1000, seed=21, to=user)
    by_id = {m.msgid: m for m in msgs}
    deliver_smtp(srv, user, msgs)

    # Flags on the server side, to come over too.
    c = imap_login(srv, user)
    c.select("INBOX")
    uid_of = {}
    for _s, items, body in fetch_all(c, "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"):
        uid_of[msgid_of(body + b"\r\n")] = int(items["UID"])
    assert sorted(uid_of) == sorted(by_id)
    for step, flag in ((3, "\\Seen"), (7, "\\Flagged"), (11, "\\Answered")):
        typ, data = c.uid("STORE", ",".join(str(uid_of[m.msgid]) for m in msgs[::step]),
                          "+FLAGS.SILENT", "(%s)" % flag)
        assert typ == "OK", data
    server = server_messages(c)
    for mid, (_uid, _flags, body) in server.items():
        check_smtp_stored(body, by_id[mid])
    assert server[msgs[231].msgid][1] == {"S", "F", "R"}      # 231 = 3 * 7 * 11

    # 1. Pull: IMAP -> Maildir.
    env = MbsyncEnv(srv, user, tmp_path)
    counters = env.run()
    assert counters == {"far": (0, 0, 0), "near": (len(msgs), 0, 0)}, counters
    local = check_maildir(env, by_id, {k: v[2] for k, v in server.items()},
                          {k: v[1] for k, v in server.items()})

    # 2. Push: on the Maildir side new messages (some with flags), flags
    # added and removed, \Deleted (T) set.
    added = msggen.generate(40, seed=22, to=user)
    by_id.update((m.msgid, m) for m in added)
    want = {mid: set(v[1]) for mid, v in server.items()}
    for k, m in enumerate(added):
        flags = [set(), {"S"}, {"F", "S"}, {"D"}][k % 4]
        want[m.msgid] = flags
        base = "%d.M%dP%d.testhost" % (1700000000 + k, k, os.getpid())
        tmpname = os.path.join(env.box, "tmp", base)
        with open(tmpname, "wb") as f:
            f.write(to_lf(m.data))
        if flags:
            os.rename(tmpname, os.path.join(env.box, "cur",
                                            base + ":2," + "".join(sorted(flags))))
        else:
            os.rename(tmpname, os.path.join(env.box, "new", base))
    trashed = []
    for k, m in enumerate(msgs[1:200:9]):                  # 22 messages
        name, _plain = local[m.msgid]
        flags = want[m.msgid]
        change = k % 4
        if change == 0:
            flags ^= {"S"}                                 # add or remove \Seen
        elif change == 1:
            flags |= {"F"}
        elif change == 2:
            flags -= {"F", "R", "S"}
            flags |= {"R"}
        else:
            flags |= {"T"}                                 # \Deleted (Expunge None)
            trashed.append(m.msgid)
        sub = "cur" if os.path.exists(os.path.join(env.box, "cur", name)) else "new"
        set_maildir_flags(os.path.join(env.box, sub, name), flags)
    changed = sum(1 for mid in want if mid in server and want[mid] != server[mid][1])
    counters = env.run()
    assert counters == {"far": (len(added), changed, 0), "near": (0, 0, 0)}, counters

    server2 = server_messages(c)
    assert sorted(server2) == sorted(want), "%d messages on the server\n%s" % (
        len(server2), env.runs[-1][-3000:])
    for mid, (uid, flags, body) in server2.items():
        assert flags == want[mid], (by_id[mid], flags, want[mid])
        if mid in server:
            assert uid == server[mid][0] and body == server[mid][2], by_id[mid]
        else:
            assert uid > max(uid_of.values())
            plain, ntuid = strip_tuid(body)
            m = by_id[mid]
            assert plain == m.crlf(), "%r: pushed message differs from the Maildir's: %s" % (
                m, first_diff(plain, m.crlf()))

    # 3. Changes on the server side: new mail, flags; then a sync that
    # expunges both sides (the \Deleted ones go: mbsync's UID EXPUNGE).
    more = msggen.generate(6, seed=23, to=user)
    by_id.update((m.msgid, m) for m in more)
    deliver_smtp(srv, user, more)
    c.select("INBOX")
    flag_changes = [(msgs[4], "+FLAGS", "\\Seen"), (msgs[5], "+FLAGS", "\\Flagged"),
                    (msgs[7], "-FLAGS", "\\Flagged"), (msgs[9], "-FLAGS", "\\Seen"),
                    (added[1], "-FLAGS", "\\Seen"), (added[0], "+FLAGS", "\\Answered")]
    for m, op, flag in flag_changes:
        typ, data = c.uid("STORE", str(server2[m.msgid][0]), op + ".SILENT", "(%s)" % flag)
        assert typ == "OK", data
    server3 = server_messages(c)
    assert len(server3) == len(server2) + len(more)
    changed = sum(1 for mid, v in server3.items() if mid in server2 and v[1] != server2[mid][1])
    assert changed == len(flag_changes)
    counters = env.run("--expunge")
    assert counters == {"far": (0, 0, 0), "near": (len(more), changed, 0)}, counters
    final = server_messages(c)
    assert sorted(final) == sorted(set(server3) - set(trashed)), \
        "the \\Deleted messages were not (all) expunged\n%s" % env.runs[-1][-3000:]
    for mid, (uid, flags, body) in final.items():
        assert (uid, flags, body) == server3[mid], by_id[mid]
    check_maildir(env, by_id, {k: v[2] for k, v in final.items()},
                  {k: v[1] for k, v in final.items()})

    # 4. Nothing changed since: a sync changes neither side.
    before_files = sorted(maildir_messages(env.box))
    before_imap = imap_state(c)
    counters = env.run()
    assert counters == {"far": (0, 0, 0), "near": (0, 0, 0)}, counters
    assert sorted(maildir_messages(env.box)) == before_files
    assert imap_state(c) == before_imap

    # 5. The fast path, read from mbsync's protocol log (-Dn: commands and
    # responses, message bodies left out). isync 1.4 has no CONDSTORE (not
    # in its NEWS nor among its commands): each sync reads the flags of
    # every message (UID FETCH a:b (UID FLAGS)) and only the new messages'
    # bodies; with UIDPLUS, APPENDUID tells it the UID of what it pushes
    # (no search for its X-TUID header field); with COMPRESS=DEFLATE it
    # compresses. (It sends UID EXPUNGE only for a far store with a Trash,
    # this one has none: CLOSE expunges.) Three new messages on the
    # server, a flag changed there, two new in the Maildir and one trashed
    # (T) there, with --expunge.
    news = msggen.generate(3, seed=24, to=user)
    pushed = msggen.generate(2, seed=25, to=user)
    by_id.update((m.msgid, m) for m in news + pushed)
    deliver_smtp(srv, user, news)
    _uv, uidnext, _msgs = imap_state(c)
    c.select("INBOX")
    flagged = msgs[12].msgid
    assert "F" not in final[flagged][1]
    typ, data = c.uid("STORE", str(final[flagged][0]), "+FLAGS.SILENT", "(\\Flagged)")
    assert typ == "OK", data
    for k, m in enumerate(pushed):
        with open(os.path.join(env.box, "new", "%d.M%dP%d.fast" % (
                1800000000 + k, k, os.getpid())), "wb") as f:
            f.write(to_lf(m.data))
    trashed = msgs[30].msgid
    name, _plain = read_maildir(env, by_id)[trashed]
    sub = "cur" if os.path.exists(os.path.join(env.box, "cur", name)) else "new"
    set_maildir_flags(os.path.join(env.box, sub, name), maildir_flags(name) | {"T"})
    before = server_messages(c)
    new_uids = sorted(before[m.msgid][0] for m in news)
    log = env.run_debug("--expunge")
    sent = [cmd for _tag, cmd in re.findall(r">>> (\d+) ([^\r\n]*)", log)]
    got = [l for l in log.splitlines() if not l.startswith((">>>", ">+>", "("))]
    assert "COMPRESS DEFLATE" in sent, sent
    assert any(re.match(r"^\d+ OK DEFLATE active$", l) for l in got), log[-6000:]
    assert len([cmd for cmd in sent if cmd.startswith("SELECT ")]) == 1, sent
    fetches = [cmd for cmd in sent if cmd.startswith("UID FETCH ")]
    bodies = [cmd for cmd in fetches if "BODY" in cmd or "RFC822" in cmd]
    assert sorted(int(re.match(r"UID FETCH (\d+) \((?:[A-Z]+ )*BODY\.PEEK\[\]\)$", cmd).group(1))
                  for cmd in bodies) == new_uids, bodies
    for cmd in fetches:
        if cmd not in bodies:
            assert re.match(r"^UID FETCH [\d:,]+ \(UID FLAGS\)$", cmd), cmd
    literal_sizes = [int(n) for n in re.findall(r"^\* \d+ FETCH \(UID \d+ BODY\[\] \{(\d+)\}$",
                                                log, re.M)]
    assert sorted(literal_sizes) == sorted(len(before[m.msgid][2]) for m in news), literal_sizes
    assert not any("X-TUID" in cmd for cmd in sent), sent
    appends = [cmd for cmd in sent if cmd.startswith("APPEND ")]
    appended = [int(u) for u in re.findall(r"^\d+ OK \[APPENDUID \d+ (\d+)\]", log, re.M)]
    assert len(appends) == len(pushed) and len(appended) == len(pushed), log[-6000:]
    trashed_uid = before[trashed][0]
    assert "UID STORE %d +FLAGS.SILENT (\\Deleted)" % trashed_uid in sent, sent
    assert sent[-2:] == ["CLOSE", "LOGOUT"], sent
    after = server_messages(c)
    assert sorted(after) == sorted(set(before) - {trashed} | {m.msgid for m in pushed})
    assert sorted(after[m.msgid][0] for m in pushed) == sorted(appended)
    assert min(appended) >= uidnext
    for mid, (uid, flags, body) in after.items():
        if mid in before:
            assert (uid, body) == (before[mid][0], before[mid][2]), by_id[mid]
    assert "F" in after[flagged][1]
    check_maildir(env, by_id, {k: v[2] for k, v in after.items()},
                  {k: v[1] for k, v in after.items()})
    c.logout()


# ---- imaplib on a big mailbox ----

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def test_imaplib_fetch_3000_exact(srv):
    user = imaptest.new_user(srv, "big")
    msgs = msggen.generate(3000, seed=31, to=user)
    by_id = {m.msgid: m for m in msgs}
    via_smtp = [m for m in msgs if m.index % 2 == 0]
    appended = []
    for m in msgs:
        if m.index % 2:
            k = m.index // 2
            flags = [None, "\\Seen", "\\Flagged \\Answered", "$Label1 \\Seen", ""][k % 5]
            date = None
            if k % 3:
                date = "%02d-%s-%d %02d:%02d:%02d %s" % (
                    k % 28 + 1, MONTHS[k % 12], 2000 + k % 27, k % 24, k % 60,
                    (k * 7) % 60, ["+0000", "+0900", "-0530"][k % 3])
            appended.append((m, flags, date))
    t0 = time.time()
    deliver_smtp(srv, user, via_smtp)
    deliver_append(srv, user, "INBOX", appended)
    t1 = time.time()
    append_info = {m.msgid: (flags, date) for m, flags, date in appended}

    c = imap_login(srv, user)
    typ, data = c.select("INBOX", readonly=True)
    assert typ == "OK" and int(data[0]) == len(msgs), data
    got = fetch_all(c, "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
    assert [s for s, _i, _b in got] == list(range(1, len(msgs) + 1))
    uids = [int(i["UID"]) for _s, i, _b in got]
    assert uids == sorted(set(uids)), "UIDs not strictly ascending"
    seen = set()
    for seq, items, body in got:
        assert set(items) >= {"UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODY[]"}, items
        assert int(items["RFC822.SIZE"]) == len(body), \
            "message %d: RFC822.SIZE %s, BODY[] has %d bytes" % (seq, items["RFC822.SIZE"],
                                                                len(body))
        mid = msgid_of(body)
        assert mid in by_id and mid not in seen, mid
        seen.add(mid)
        m = by_id[mid]
        flags = flags_of(items["FLAGS"])
        idate = imaplib.Internaldate2tuple(b"INTERNALDATE " + items["INTERNALDATE"])
        assert idate, items["INTERNALDATE"]
        if mid in append_info:
            check_appended(body, m)
            want_flags, want_date = append_info[mid]
            assert flags == set((want_flags or "").split()), (m, flags)
            if want_date:
                assert time.mktime(idate) == time.mktime(imaplib.Internaldate2tuple(
                    b'INTERNALDATE "%s"' % want_date.encode())), (m, items["INTERNALDATE"])
            else:
                assert t0 - 5 <= time.mktime(idate) <= t1 + 5, (m, items["INTERNALDATE"])
        else:
            check_smtp_stored(body, m)
            assert flags == set(), (m, flags)
            assert t0 - 5 <= time.mktime(idate) <= t1 + 5, (m, items["INTERNALDATE"])
    assert len(seen) == len(msgs)
    c.logout()
