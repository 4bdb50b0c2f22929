#!/usr/bin/env python3
"""Regenerates tests/data/mime/*.expected from Dovecot, the oracle for the
ENVELOPE, BODY and BODYSTRUCTURE that src/mime/mime_imap.c writes.

    apt-get install -y dovecot-imapd      # Debian 12: Dovecot 2.3.19.1
    python3 tests/data/mime/make_expected.py [--corpus DIR]

It starts a private Dovecot (temporary config and maildir, a passwd-file
user, plain text on 127.0.0.1 at a free high port, no system service),
APPENDs every message with imaplib, FETCHes ENVELOPE, BODY and BODYSTRUCTURE
one message at a time, writes one file per message and stops Dovecot.

Messages: every *.eml of the shared corpus (default
/work/shared/testdata/mime-corpus, see its SOURCE.md) and our own cases in
tests/data/mime/cases/*.eml. A file without any CR LF is sent with its LFs
turned into CR LF (that is how it reaches a mail server); a file with CR LF is
sent as it is, bare LFs included.

Output file <folder>__<name>.expected, where the folders of the path are
joined with "__" (e.g. james-mime4j__testmsgs__qp-body.expected), holds
exactly the bytes of the three FETCH items, literals included (or, past
64 KiB, <stem>.expected.sha256 holds their SHA-256):

    ENVELOPE <envelope>\\r\\n
    BODY <body>\\r\\n
    BODYSTRUCTURE <bodystructure>\\r\\n

Where we differ from Dovecot on purpose, the file is not edited by hand: the
change is made here, in ADJUST below, and explained in DIFFERENCES.md.

Messages are sent as they are: imaplib's habit of turning bare CR and LF
into CR LF is switched off.
"""

import argparse
import hashlib
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CORPUS = "/work/shared/testdata/mime-corpus"

# Deliberate differences from Dovecot, each explained in DIFFERENCES.md:
# functions (stem, item, Dovecot's value) -> our value.


def long_quoted_to_literal(stem, item, value):
    """1. A quoted string longer than IMAP_QUOTED_MAX (4096) bytes is a
    literal for us; Dovecot quotes any length."""
    out = b""
    i = 0
    while i < len(value):
        c = value[i:i + 1]
        if c == b"{":
            m = re.match(rb"\{(\d+)\}\r\n", value[i:])
            n = int(m.group(1))
            end = i + m.end() + n
            out += value[i:end]
            i = end
        elif c == b'"':
            j = i + 1
            raw = b""
            while value[j:j + 1] != b'"':
                if value[j:j + 1] == b"\\":
                    j += 1
                raw += value[j:j + 1]
                j += 1
            if len(raw) > 4096:
                out += b"{%d}\r\n" % len(raw) + raw
            else:
                out += value[i:j + 1]
            i = j + 1
        else:
            out += c
            i += 1
    return out


def trailing_cr(stem, item, value):
    """2. Dovecot drops a lone CR at the very end of a message when it saves
    it; we keep the byte, so that body is one byte longer."""
    if stem == "stalwart-mail-parser__legacy__049" and item in ("BODY", "BODYSTRUCTURE"):
        old = b'"7bit" 6583 120'
        if old not in value:
            raise RuntimeError("trailing_cr: Dovecot changed")
        value = value.replace(old, b'"7bit" 6584 120')
    return value


ADJUST = [long_quoted_to_literal, trailing_cr]

# Expected values longer than this are kept as their SHA-256 only
# (<stem>.expected.sha256), so that a 10000-part BODYSTRUCTURE is not
# committed as text.
MAX_EXPECTED = 64 * 1024

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:{tmp}/mail/%u
default_internal_user = dovecot
default_login_user = dovenull
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {tmp}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={tmp}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def messages(corpus):
    """(expected-file stem, bytes as delivered) for every message."""
    found = []
    for root, _, files in os.walk(corpus):
        for f in files:
            if f.endswith(".eml"):
                path = os.path.join(root, f)
                rel = os.path.relpath(path, corpus)[:-4]
                found.append((rel.replace(os.sep, "__"), path))
    cases = os.path.join(HERE, "cases")
    for f in os.listdir(cases):
        if f.endswith(".eml"):
            found.append(("cases__" + f[:-4], os.path.join(cases, f)))
    found.sort()
    out = []
    for stem, path in found:
        with open(path, "rb") as fh:
            data = fh.read()
        if b"\r\n" not in data:
            data = data.replace(b"\n", b"\r\n")
        out.append((stem, data))
    return out


def raw_item(data, seq, item):
    """Rebuilds the exact bytes of one FETCH item from imaplib's pieces:
    a (line, literal) tuple lost the CR LF after the literal's {n}."""
    raw = b""
    for piece in data:
        if isinstance(piece, tuple):
            raw += piece[0] + b"\r\n" + piece[1]
        else:
            raw += piece
    head = b"%d (%s " % (seq, item.encode())
    if not raw.startswith(head) or not raw.endswith(b")"):
        raise RuntimeError("unexpected FETCH answer: %r" % raw[:200])
    return raw[len(head):-1]


def start_dovecot(tmp):
    port = free_port()
    os.chmod(tmp, 0o755)
    # The mail user may not be root: Dovecot refuses uid 0 for mail.
    user = pwd.getpwnam("nobody")
    for d in ("run", "state", "mail", "home"):
        os.makedirs(os.path.join(tmp, d))
    for d in ("mail", "home"):
        os.chown(os.path.join(tmp, d), user.pw_uid, user.pw_gid)
    with open(os.path.join(tmp, "passwd"), "w") as fh:
        fh.write("test:{PLAIN}test::::::\n")
    conf = os.path.join(tmp, "dovecot.conf")
    with open(conf, "w") as fh:
        fh.write(CONFIG.format(tmp=tmp, port=port, uid=user.pw_uid, gid=user.pw_gid))
    proc = subprocess.Popen(["dovecot", "-F", "-c", conf])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("dovecot did not start; see %s/dovecot.log" % tmp)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=DEFAULT_CORPUS)
    ap.add_argument("--out", default=HERE)
    args = ap.parse_args()

    # imaplib's append() turns every bare CR and bare LF into CR LF; the
    # messages go as they are (see messages()), so that Dovecot meets the
    # mixed line ends our parser meets.
    imaplib.MapCRLF = re.compile(rb"(?!)")
    # BODYSTRUCTURE lines of large cases exceed imaplib's line limit.
    imaplib._MAXLINE = 50 * 1000 * 1000
    msgs = messages(args.corpus)
    tmp = tempfile.mkdtemp(prefix="yubin-dovecot-")
    proc, port = start_dovecot(tmp)
    try:
        imap = imaplib.IMAP4("127.0.0.1", port)
        imap.login("test", "test")
        imap.select("INBOX")
        for seq, (stem, data) in enumerate(msgs, 1):
            typ, resp = imap.append("INBOX", None, None, data)
            if typ != "OK":
                raise RuntimeError("APPEND %s: %r" % (stem, resp))
            out = b""
            for item in ("ENVELOPE", "BODY", "BODYSTRUCTURE"):
                typ, resp = imap.fetch(str(seq), "(%s)" % item)
                if typ != "OK":
                    raise RuntimeError("FETCH %s %s: %r" % (stem, item, resp))
                value = raw_item(resp, seq, item)
                for adjust in ADJUST:
                    value = adjust(stem, item, value)
                out += item.encode() + b" " + value + b"\r\n"
            base = os.path.join(args.out, stem + ".expected")
            for old in (base, base + ".sha256"):
                if os.path.exists(old):
                    os.unlink(old)
            if len(out) > MAX_EXPECTED:
                with open(base + ".sha256", "w") as fh:
                    fh.write(hashlib.sha256(out).hexdigest() + "\n")
            else:
                with open(base, "wb") as fh:
                    fh.write(out)
        imap.logout()
        print("%d messages written to %s" % (len(msgs), args.out))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        if os.environ.get("KEEP_TMP") is None:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept", tmp)


if __name__ == "__main__":
    sys.exit(main())
