"""FETCH of what the MIME parser computes: ENVELOPE, BODY, BODYSTRUCTURE,
numbered sections (RFC 9051 6.4.5) and BINARY (RFC 3516), through a
running server.

The exact ENVELOPE/BODY/BODYSTRUCTURE of the tricky messages in
tests/data/mime/cases are Dovecot's answers for the same messages (see
tests/data/mime/README.md and DIFFERENCES.md); here they must come back
the same after APPEND and FETCH, i.e. from the values stored at delivery.
"""

import base64
import glob
import hashlib
import os
import re

import pytest

import imaptest
import yubintest

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "data", "mime")
CASES = sorted(glob.glob(os.path.join(DATA, "cases", "*.eml")))


def expected(name):
    """The .expected file's bytes, or (for big answers) the SHA-256 of
    them from .expected.sha256, as a hex string."""
    path = os.path.join(DATA, "cases__%s.expected" % name)
    if os.path.exists(path):
        with open(path, "rb") as f:
            return f.read()
    with open(path + ".sha256") as f:
        return f.read().split()[0]


def literal(data):
    return b"~{%d}\r\n" % len(data) if b"\0" in data else b"{%d}\r\n" % len(data)


def append(c, data, mailbox="INBOX"):
    """APPEND with a synchronizing literal; returns the new UID."""
    tag = c.next_tag()
    c.send(b"%s APPEND %s %s" % (tag.encode(), mailbox.encode(), literal(data)[:-2]))
    c.send(b"\r\n")
    cont = c.response()
    assert cont.raw.startswith(b"+"), cont
    c.send(data + b"\r\n")
    r = c.read_until_tagged(tag)
    assert r.status == "OK", r
    return int(re.search(r"APPENDUID \d+ (\d+)", r.text).group(1))


@pytest.fixture(scope="module")
def cases(server):
    """Every case message appended to a fresh account: (name, uid)."""
    user = imaptest.new_user(server, "mime")
    c = imaptest.RawIMAP(server)
    c.login(user)
    out = []
    for path in CASES:
        with open(path, "rb") as f:
            out.append((os.path.basename(path)[:-4], append(c, f.read())))
    c.close()
    return user, out


@pytest.mark.parametrize("i", range(len(CASES)), ids=[os.path.basename(p)[:-4] for p in CASES])
def test_structure_is_dovecots(cases, imap, i):
    user, msgs = cases
    name, uid = msgs[i]
    want = expected(name)
    c = imap()
    c.login(user)
    c.select("INBOX", examine=True)
    got = b""
    for item in ("ENVELOPE", "BODY", "BODYSTRUCTURE"):
        r = c.ok("UID FETCH %d %s" % (uid, item))
        assert len(r.untagged) == 1, r
        raw = r.untagged[0].raw
        prefix = re.match(rb"\* \d+ FETCH \(UID %d %s " % (uid, item.encode()), raw)
        assert prefix, raw[:200]
        assert raw.endswith(b")")
        got += b"%s %s\r\n" % (item.encode(), raw[prefix.end():-1])
    if isinstance(want, str):
        assert hashlib.sha256(got).hexdigest() == want, name
    else:
        assert got == want, name


PARTS = (
    b"From: Ann <ann@example.com>\r\n"
    b"To: Bob <bob@example.com>\r\n"
    b"Subject: parts\r\n"
    b"Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n"
    b"Message-ID: <parts.1@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
    b"\r\n"
    b"preamble\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"caf=C3=A9 au=\r\n"
    b" lait\r\n"
    b"--XX\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAwQ=\r\n"
    b"--XX\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"From: carol@example.com\r\n"
    b"Subject: inner\r\n"
    b"Content-Type: multipart/alternative; boundary=\"YY\"\r\n"
    b"\r\n"
    b"--YY\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"inner plain\r\n"
    b"--YY\r\n"
    b"Content-Type: text/html\r\n"
    b"\r\n"
    b"<p>inner</p>\r\n"
    b"--YY--\r\n"
    b"\r\n"
    b"--XX\r\n"
    b"Content-Type: application/x-thing\r\n"
    b"Content-Transfer-Encoding: x-uuencode\r\n"
    b"\r\n"
    b"begin 644 x\r\n"
    b"--XX--\r\n"
    b"epilogue\r\n"
)
INNER = PARTS[PARTS.index(b"From: carol"):PARTS.index(b"\r\n--XX\r\nContent-Type: application/x-thing")]


@pytest.fixture(scope="module")
def parts(server):
    """PARTS delivered over SMTP, so the message as read starts with the
    per-recipient Return-Path and Delivered-To lines that the body file
    does not hold: every range must account for them."""
    user = imaptest.new_user(server, "parts")
    imaptest.deliver(server, PARTS, rcpt=user)
    return user


@pytest.fixture
def pc(parts, imap):
    c = imap()
    c.login(parts)
    c.select("INBOX")
    return c


def fetch1(c, items):
    """The single FETCH response's raw bytes after "* 1 FETCH (", without
    the final ")"."""
    r = c.ok("FETCH 1 %s" % items)
    fetches = [u.raw for u in r.untagged if re.match(rb"\* 1 FETCH \(", u.raw)]
    assert len(fetches) == 1, r
    return fetches[0][len(b"* 1 FETCH ("):-1]


def value(c, item, name=None):
    """The value of one section item, as bytes (literal or quoted)."""
    raw = fetch1(c, item + ("" if item.startswith("(") else ""))
    name = (name or item.replace(".PEEK", "")).encode()
    assert raw.startswith(name + b" "), raw[:200]
    rest = raw[len(name) + 1:]
    m = re.match(rb"~?\{(\d+)\}\r\n", rest)
    if m:
        data = rest[m.end():]
        assert len(data) == int(m.group(1)), rest[:100]
        return data
    if rest == b'""':
        return b""
    return rest


@pytest.mark.parametrize("section,want", [
    ("1", b"caf=C3=A9 au=\r\n lait"),
    ("1.MIME", b"Content-Type: text/plain; charset=utf-8\r\n"
               b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"),
    ("2", b"AAECAwQ="),
    ("3", INNER),
    ("3.HEADER", INNER[:INNER.index(b"\r\n\r\n") + 4]),
    ("3.TEXT", INNER[INNER.index(b"\r\n\r\n") + 4:]),
    ("3.1", b"inner plain"),
    ("3.2", b"<p>inner</p>"),
    ("3.2.MIME", b"Content-Type: text/html\r\n\r\n"),
    ("3.HEADER.FIELDS (SUBJECT)", b"Subject: inner\r\n\r\n"),
    ("3.1.1", b""),		# not a message/rfc822 part: no such section
    ("4", b"begin 644 x"),
    ("5", b""),
    ("9.9", b""),
])
def test_numbered_sections(pc, section, want):
    """RFC 9051 6.4.5: sections of a multipart, of a message/rfc822 part
    and of the message inside it; a part that does not exist is an empty
    string."""
    assert value(pc, "BODY.PEEK[%s]" % section) == want


def test_top_level_sections_include_the_prefix(pc):
    whole = value(pc, "BODY.PEEK[]")
    assert whole.startswith(b"Return-Path: <alice@example.org>\r\nDelivered-To: ")
    assert whole.endswith(PARTS)
    header = value(pc, "BODY.PEEK[HEADER]")
    assert header == whole[:whole.index(b"\r\n\r\n") + 4]
    assert value(pc, "BODY.PEEK[TEXT]") == PARTS[PARTS.index(b"\r\n\r\n") + 4:]
    assert value(pc, "BODY.PEEK[HEADER.FIELDS (Subject \"To\")]") == \
        b"To: Bob <bob@example.com>\r\nSubject: parts\r\n\r\n"
    assert value(pc, "BODY.PEEK[HEADER.FIELDS.NOT (Return-Path Delivered-To Received)]") \
        .startswith(b"From: Ann")
    size = re.search(rb"RFC822\.SIZE (\d+)", fetch1(pc, "RFC822.SIZE")).group(1)
    assert int(size) == len(whole)


def test_partial(pc):
    """<start.count>: the response names the start only (RFC 9051 7.5.2);
    a start past the end gives an empty string."""
    assert value(pc, "BODY.PEEK[1]<2.3>", "BODY[1]<2>") == b"f=C"
    assert value(pc, "BODY.PEEK[1]<0.1000>", "BODY[1]<0>") == b"caf=C3=A9 au=\r\n lait"
    assert value(pc, "BODY.PEEK[1]<500.10>", "BODY[1]<500>") == b""
    whole = value(pc, "BODY.PEEK[]")
    assert value(pc, "BODY.PEEK[]<10.20>", "BODY[]<10>") == whole[10:30]
    assert value(pc, "BODY.PEEK[HEADER.FIELDS (SUBJECT)]<1.5>",
                 "BODY[HEADER.FIELDS (SUBJECT)]<1>") == b"ubjec"
    assert value(pc, "BINARY.PEEK[1]<3.2>", "BINARY[1]<3>") == "é".encode()


def test_binary(pc):
    """RFC 3516: BINARY decodes the part's transfer encoding; content with
    NUL goes as literal8; BINARY.SIZE is the decoded size."""
    assert value(pc, "BINARY.PEEK[1]") == "café au lait".encode()
    raw = fetch1(pc, "BINARY.PEEK[2]")
    assert raw == b"BINARY[2] ~{5}\r\n\x00\x01\x02\x03\x04"
    assert fetch1(pc, "BINARY.SIZE[1]") == b"BINARY.SIZE[1] %d" % len("café au lait".encode())
    assert fetch1(pc, "BINARY.SIZE[2]") == b"BINARY.SIZE[2] 5"
    # Not a leaf: the part's bytes as they are.
    assert value(pc, "BINARY.PEEK[3.1]") == b"inner plain"
    assert value(pc, "BINARY.PEEK[]") == value(pc, "BODY.PEEK[]")


def test_binary_unknown_encoding(pc):
    r = pc.cmd("FETCH 1 BINARY.PEEK[4]")
    assert r.status == "NO" and "[UNKNOWN-CTE]" in r.text, r
    assert r.fetches() == []
    # The same part as BODY[] is fine.
    assert value(pc, "BODY.PEEK[4]") == b"begin 644 x"


def test_envelope_and_structure(pc):
    raw = fetch1(pc, "(ENVELOPE)")
    assert raw == (b'ENVELOPE ("Fri, 04 Dec 2026 10:00:00 +0000" "parts" '
                   b'(("Ann" NIL "ann" "example.com")) (("Ann" NIL "ann" "example.com")) '
                   b'(("Ann" NIL "ann" "example.com")) (("Bob" NIL "bob" "example.com")) '
                   b'NIL NIL NIL "<parts.1@example.com>")')
    bs = fetch1(pc, "BODYSTRUCTURE")
    assert bs.startswith(b'BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL NIL '
                         b'"quoted-printable" 20 1 NIL NIL NIL NIL)'), bs
    assert bs.endswith(b' "mixed" ("boundary" "XX") NIL NIL NIL)'), bs
    body = fetch1(pc, "BODY")
    assert body.startswith(b'BODY (("text" "plain" ("charset" "utf-8") NIL NIL '
                           b'"quoted-printable" 20 1)'), body
    assert body.endswith(b' "mixed")'), body
    # The macros: ALL adds ENVELOPE, FULL adds BODY too.
    all_ = fetch1(pc, "ALL")
    assert re.match(rb"FLAGS \([^)]*\) INTERNALDATE \"[^\"]+\" RFC822\.SIZE \d+ ENVELOPE \(", all_)
    assert b" BODY (" in fetch1(pc, "FULL")


def test_body_sets_seen_peek_does_not(parts, imap, server):
    user = imaptest.new_user(server, "seen")
    imaptest.deliver(server, PARTS, rcpt=user)
    c = imap()
    c.login(user)
    c.select("INBOX")
    for item in ("BODY.PEEK[1]", "BINARY.PEEK[1]", "BINARY.SIZE[1]", "BODYSTRUCTURE",
                 "RFC822.HEADER"):
        c.ok("FETCH 1 %s" % item)
        assert b"\\Seen" not in fetch1(c, "FLAGS"), item
    r = c.ok("FETCH 1 BINARY[1]")
    assert any(b"\\Seen" in u.raw for u in r.untagged), r


@pytest.mark.parametrize("args", [
    "1 BODY[0]", "1 BODY[1.0]", "1 BODY[01]", "1 BODY[1.]", "1 BODY[.1]",
    "1 BODY[MIME]", "1 BODY[1.HEADER.FIELDS]", "1 BODY[HEADER.FIELDS (A:B)]",
    "1 BODY[HEADER.FIELDS (\"\")]", "1 BINARY[TEXT]", "1 BINARY[1.MIME]",
    "1 BINARY.SIZE[1]<0.5>", "1 BODY[1]<-1.5>", "1 BODY[1]<1.5>x",
    "1 (ALL)", "1 (FAST FLAGS)", "1 BINARY.PEEK", "1 ENVELOPE[]",
])
def test_bad_sections(pc, args):
    r = pc.cmd("FETCH " + args)
    assert r.status == "BAD", r
    assert r.untagged == [], r


def test_generated_mailbox_structures_are_stable(server, imap):
    """Messages from SMTP and from APPEND with the same bytes give the same
    BODYSTRUCTURE and ENVELOPE (the Return-Path prefix is not part of the
    structure)."""
    user = imaptest.new_user(server, "same")
    msg = yubintest.make_msg("same", to=user, body="x\r\n")
    imaptest.deliver(server, msg, rcpt=user)
    c = imap()
    c.login(user)
    append(c, msg)
    c.select("INBOX")
    r = c.ok("FETCH 1:2 (ENVELOPE BODYSTRUCTURE)")
    got = [u.raw.split(b" FETCH ", 1)[1] for u in r.untagged if b" FETCH " in u.raw]
    assert len(got) == 2 and got[0] == got[1], got


def test_stored_base64_roundtrip(pc):
    assert base64.b64decode(value(pc, "BODY.PEEK[2]")) == bytes(range(5))


def test_append_literal8_and_binary_fetch(server, imap):
    """RFC 3516 4.4: APPEND takes a literal8; the content (with NUL, in a
    part sent as binary) comes back from BINARY[] as literal8."""
    user = imaptest.new_user(server, "bin")
    c = imap()
    c.login(user)
    msg = (b"From: a@example.com\r\nSubject: bin\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: binary\r\n\r\n\x00\x01\xff\r\n")
    append(c, msg)
    c.select("INBOX")
    assert fetch1(c, "BINARY.PEEK[1]") == b"BINARY[1] ~{5}\r\n\x00\x01\xff\r\n"
    assert fetch1(c, "BINARY.SIZE[1]") == b"BINARY.SIZE[1] 5"
