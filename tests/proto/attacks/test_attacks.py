"""Attack regressions ([M8] item 4) not covered next to each protocol's
own tests: header and command injection through the admin CLI, hostile
mailbox names, IMAP literal and command-length bombs, deeply nested MIME,
NUL and invalid UTF-8 in the fields of SMTP, POP3 and IMAP, and commands
pipelined with DATA.

Where the rest lives (docs/security.md lists them all): SMTP smuggling in
tests/proto/smtp/test_smtp_smuggling.py; STARTTLS/STLS injection in
test_smtp_tls.py, test_submission_tls.py, test_pop3_tls.py and
test_imap_session.py; relay probes in test_smtp_delivery.py; the login
throttle in test_auth_throttle.py.

After every test the server must still answer a new client, and its log
must hold no sanitizer report (checked when the module's server stops).
"""

import os
import socket
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "imap"))
sys.path.insert(0, os.path.join(HERE, "..", "pop3"))

import imaptest  # noqa: E402
import poptest  # noqa: E402
import yubintest  # noqa: E402
from yubintest import dot_stuff, make_msg, unique  # noqa: E402

USER = "shiroyagi@example.com"


def small_quarantine_env():
    """ASAN_OPTIONS for a server whose memory is measured: AddressSanitizer
    keeps freed memory in a quarantine (256 MiB by default), which would
    count as growth; 2 MiB keeps it checking use-after-free close by. A
    build without ASan ignores it."""
    old = os.environ.get("ASAN_OPTIONS")
    base = old if old is not None else "detect_leaks=1:abort_on_error=0"
    return old, base + ":quarantine_size_mb=2"


@pytest.fixture(scope="module")
def server(module_yubin_factory):
    ov = imaptest.imap_overrides(max_errors="1000", max_message_size="20M")
    ov.update({k: v for k, v in poptest.pop3_overrides().items() if k != "limits"})
    old, new = small_quarantine_env()
    os.environ["ASAN_OPTIONS"] = new
    try:
        return module_yubin_factory(ov, provision=yubintest.provision_standard)
    finally:
        if old is None:
            del os.environ["ASAN_OPTIONS"]
        else:
            os.environ["ASAN_OPTIONS"] = old


@pytest.fixture(autouse=True)
def still_serving(server):
    """Every attack leaves a server that answers a new client at once."""
    yield
    assert server.running(), server.log()
    c = imaptest.RawIMAP(server, timeout=10)
    assert c.cmd("NOOP").status == "OK"
    c.close()


def rss_kb(inst):
    with open("/proc/%d/status" % inst.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


# ---- the admin CLI: no line breaks or controls into stored fields ----

BAD_BITS = ["\r\nBcc: victim@other.example", "\nRCPT TO:<x@other.example>", "\r",
            "\x01", "\x7f", "\t"]


@pytest.mark.parametrize("bad", BAD_BITS)
def test_cli_refuses_line_breaks_and_controls(server, bad):
    """Addresses and domains given to the CLI end up in Delivered-To:,
    Return-Path: and outbound RCPT TO: lines: one with CR, LF or another
    control character would inject a header field or an SMTP command. Every
    command refuses them, and nothing is stored."""
    addr = "inj%s@example.com" % bad
    before = {k: server.cli("%s" % k, "list")[1] for k in ("domain", "user", "alias")}
    cases = [
        ("domain", "add", "evil%s.example" % bad),
        ("user", "add", addr),
        ("alias", "add", addr, USER),
        ("alias", "add", "ok-%s@example.com" % unique("a")[2:], "x%s@other.example" % bad),
        ("user", "sendas", "add", USER, "from%s@example.com" % bad),
    ]
    for args in cases:
        rc, out, err = server.cli(*args, input="pw\n")
        assert rc != 0, "`yubin %r` accepted it: %s %s" % (args, out, err)
    after = {k: server.cli("%s" % k, "list")[1] for k in ("domain", "user", "alias")}
    assert after == before
    rc, out, _err = server.cli("user", "sendas", "list", USER)
    assert "from" not in out


# ---- IMAP mailbox names ----

@pytest.mark.parametrize("name", [
    b'".."', b'"../x"', b'"a/../b"', b'"a/./b"', b'"."', b'"x/.."',
    b'"a\x01b"', b'"a\x7fb"', b'"\x1b[31m"', b'"\xff\xfe"', b'"a\xc0\xafb"',
    b'{3+}\r\na\nb', b'{3+}\r\na\x00b', b'"/lead"', b'"a//b"',
])
def test_imap_hostile_mailbox_names_refused(server, name):
    """Names that could walk a folder tree (".", ".." levels, a leading
    "/"), control characters, NUL, CR/LF through a literal, invalid
    modified UTF-7: CREATE refuses them, RENAME too, nothing is made."""
    c = imaptest.RawIMAP(server)
    c.login()
    before = [u.raw for u in c.cmd('LIST "" "*"').untagged]
    c.send(b"c1 CREATE " + name + b"\r\n")
    r = c.read_until_tagged("c1")
    assert r.status in ("NO", "BAD"), r
    c.send(b"c2 RENAME Drafts " + name + b"\r\n")
    r = c.read_until_tagged("c2")
    assert r.status in ("NO", "BAD"), r
    assert [u.raw for u in c.cmd('LIST "" "*"').untagged] == before
    c.close()


def test_imap_dots_inside_names_are_fine(server):
    c = imaptest.RawIMAP(server)
    c.login()
    name = "...%s/.hidden/a.b" % unique("m")
    assert c.cmd('CREATE "%s"' % name).status == "OK"
    r = c.cmd('LIST "" "%s"' % name)
    assert len(r.untagged) == 1, r
    assert c.cmd('DELETE "%s"' % name).status == "OK"
    c.close()


# ---- IMAP literal and command-length bombs ----

@pytest.mark.parametrize("literal", [
    b"{99999999999999999999}", b"{18446744073709551616}", b"{18446744073709551615+}",
    b"{4294967296}", b"{4294967296+}", b"{-1}", b"{1a}", b"{}",
])
def test_imap_literal_size_bombs(server, literal):
    """A literal length that overflows, is absurd or is malformed is
    refused at once: no continuation request, nothing allocated for it,
    and the session goes on."""
    c = imaptest.RawIMAP(server)
    before = rss_kb(server)
    c.send(b"b1 LOGIN " + literal + b"\r\n")
    line = c.line()
    assert not line.startswith(b"+"), "continuation for %r: %r" % (literal, line)
    assert line.startswith(b"b1 NO") or line.startswith(b"b1 BAD"), line
    if not literal.endswith(b"+}"):
        # (after a refused {n+}, the next bytes are the literal's and are
        # skipped, RFC 7888 4 choice 1: a new client is checked instead)
        assert c.cmd("NOOP").status == "OK"
    assert rss_kb(server) - before < 50 * 1024
    c.close()


def test_imap_many_literals_in_one_command(server):
    """Thousands of small literals in one command: the argument limit
    stops it, the session goes on."""
    c = imaptest.RawIMAP(server)
    c.login()
    c.send(b"m1 SEARCH" + b" TEXT {1+}\r\nx" * 20000 + b"\r\n")
    r = c.read_until_tagged("m1")
    assert r.status in ("NO", "BAD"), r
    assert c.cmd("NOOP").status == "OK"
    c.close()


def test_imap_command_length_bomb(server):
    """16 MiB in one line: refused without holding it (the server's memory
    stays bounded), and the connection is either closed or goes on with
    the next line."""
    c = imaptest.RawIMAP(server)
    before = rss_kb(server)
    chunk = b"a" * (1 << 20)
    c.send(b"x1 NOOP ")
    try:
        for _ in range(16):
            c.send(chunk)
        c.send(b"\r\nx2 NOOP\r\n")
        lines = []
        while not any(l.startswith((b"x2 ", b"* BYE")) for l in lines):
            lines.append(c.line())
        assert any(l.startswith((b"x1 BAD", b"* BAD", b"* BYE")) for l in lines), lines
    except (BrokenPipeError, ConnectionResetError, EOFError):
        pass    # closed by the server: fine
    grew = rss_kb(server) - before
    assert grew < 12 * 1024, "the server grew by %d KiB on a 16 MiB line" % grew
    c.close()


def test_imap_deep_parentheses(server):
    c = imaptest.RawIMAP(server)
    c.login()
    c.select()
    r = c.cmd("FETCH 1:* (" + "(" * 5000 + ")" * 5000 + ")")
    assert r.status == "BAD", r
    r = c.cmd("SEARCH " + "NOT " * 20000 + "ALL")
    assert r.status in ("OK", "NO", "BAD"), r
    r = c.cmd("SEARCH " + "(" * 5000 + "ALL" + ")" * 5000)
    assert r.status in ("NO", "BAD"), r
    c.close()


# ---- deeply nested MIME ----

def nested_mime(depth):
    parts = []
    for i in range(depth):
        parts.append(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i))
    body = b"Content-Type: text/plain\r\n\r\ninnermost\r\n"
    tail = b"".join(b"--b%d--\r\n" % i for i in reversed(range(depth)))
    return b"".join(parts) + body + tail


@pytest.mark.parametrize("kind", ["multipart", "rfc822"])
def test_deeply_nested_mime(server, kind):
    """A message nested 3,000 levels deep is taken over SMTP and answers
    FETCH BODYSTRUCTURE, BODY[1.1.1] and a body SEARCH promptly: the depth
    limit flattens what is below it, no recursion follows the input."""
    user = imaptest.new_user(server, "deep")
    subject = unique("deep")
    if kind == "multipart":
        body = nested_mime(3000)
        head = [b'Content-Type: multipart/mixed; boundary="top"']
        body = b"--top\r\n" + body + b"--top--\r\n"
    else:
        body = b"".join([b"Content-Type: message/rfc822\r\n\r\n"] * 3000) + \
            b"Content-Type: text/plain\r\n\r\ninnermost\r\n"
        head = [b"Content-Type: message/rfc822"]
    msg = make_msg(subject, to=user, extra_headers=[h.decode() for h in head], body=body)
    imaptest.deliver(server, msg, rcpt=user)
    c = imaptest.RawIMAP(server)
    c.login(user)
    c.select()
    t0 = time.monotonic()
    for item in ("BODYSTRUCTURE", "BODY[1.1.1]", "ENVELOPE", "BINARY.SIZE[1]"):
        r = c.cmd("FETCH 1 (%s)" % item)
        assert r.status in ("OK", "NO"), (item, r)
    r = c.cmd("SEARCH BODY innermost")
    assert r.status == "OK", r
    assert time.monotonic() - t0 < 30
    c.close()


# ---- NUL and invalid UTF-8 in every field ----

BAD_BYTES = [b"\x00", b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"]


@pytest.mark.parametrize("bad", BAD_BYTES)
def test_smtp_fields_with_nul_and_invalid_utf8(server, bad):
    """EHLO, MAIL, RCPT and their parameters with NUL or invalid UTF-8
    (even with SMTPUTF8) are refused with a 5xx, never taken."""
    r = server.raw()
    rep = r.cmd(b"EHLO cl" + bad + b"ient.example")
    assert rep.code >= 500, rep
    assert r.cmd("EHLO client.example").code == 250
    for line in [b"MAIL FROM:<a" + bad + b"@example.org>",
                 b"MAIL FROM:<a" + bad + b"@example.org> SMTPUTF8",
                 b"MAIL FROM:<a@example.org> ENVID=x" + bad]:
        rep = r.cmd(line)
        assert rep.code >= 500, (line, rep)
    assert r.cmd("MAIL FROM:<a@example.org> SMTPUTF8").code == 250
    for line in [b"RCPT TO:<shiro" + bad + b"yagi@example.com>",
                 b"RCPT TO:<shiroyagi@exam" + bad + b"ple.com>",
                 b"RCPT TO:<shiroyagi@example.com> ORCPT=rfc822;x" + bad]:
        rep = r.cmd(line)
        assert rep.code >= 500, (line, rep)
    r.close()


@pytest.mark.parametrize("bad", BAD_BYTES)
def test_headers_with_nul_and_invalid_utf8_are_served(server, bad):
    """A message whose header fields carry NUL (refused at DATA) or
    invalid UTF-8 (stored as sent): IMAP ENVELOPE, BODYSTRUCTURE, SEARCH
    and POP3 TOP answer it without a crash, and what IMAP sends is still
    one well-formed response."""
    user = imaptest.new_user(server, "utf")
    subject = unique("bad")
    msg = (b"From: A " + bad + b" <a@example.org>\r\nTo: " + user.encode() +
           b"\r\nSubject: " + subject.encode() + b" " + bad + b"\r\n" +
           b"Content-Type: text/plain; charset=utf-8; name=\"" + bad + b"\"\r\n" +
           b"Message-ID: <" + bad + b"@x>\r\n\r\nbody " + bad + b"\r\n")
    r = server.session()
    assert r.cmd("MAIL FROM:<a@example.org>").code == 250
    assert r.cmd("RCPT TO:<%s>" % user).code == 250
    assert r.cmd("DATA").code == 354
    r.send(dot_stuff(msg))
    rep = r.reply()
    r.close()
    if bad == b"\x00":
        assert rep.code >= 500, rep
        return
    assert rep.code == 250, rep
    c = imaptest.RawIMAP(server)
    c.login(user)
    c.select()
    for item in ("ENVELOPE", "BODYSTRUCTURE", "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]"):
        r = c.cmd("FETCH 1 (%s)" % item)
        assert r.status == "OK", (item, r)
        assert len(r.untagged) == 1, r
    r = c.cmd("SEARCH SUBJECT %s" % subject)
    assert r.status == "OK" and r.untagged[0].raw.strip() == b"* SEARCH 1", r
    c.close()
    p = poptest.RawPOP3(server)
    p.login(user)
    p.ok("TOP 1 0")
    head = p.multiline()
    assert subject.encode() in head
    p.close()


@pytest.mark.parametrize("bad", BAD_BYTES)
def test_imap_and_pop3_commands_with_nul_and_invalid_utf8(server, bad):
    c = imaptest.RawIMAP(server)
    for line in [b"n1 LOGIN \"shiro" + bad + b"\" \"pw\"",
                 b"n2 LOGIN {%d+}\r\n" % len(bad) + bad + b" pw",
                 b"n3 AUTHENTICATE PLAIN " + bad,
                 b"n4 ID (\"name\" \"" + bad + b"\")",
                 b"n5 NO" + bad + b"OP"]:
        c.send(line + b"\r\n")
        r = c.read_until_tagged(line[:2].decode())
        assert r.status in ("NO", "BAD") or line.startswith(b"n4"), (line, r)
    c.login()
    for line in [b"s1 SELECT \"IN" + bad + b"BOX\"",
                 b"s2 STATUS \"" + bad + b"\" (MESSAGES)",
                 b"s3 LIST \"\" \"" + bad + b"*\"",
                 b"s4 SEARCH CHARSET UTF-8 SUBJECT {%d+}\r\n" % len(bad) + bad,
                 b"s5 APPEND \"x" + bad + b"\" {1+}\r\nx"]:
        c.send(line + b"\r\n")
        r = c.read_until_tagged(line[:2].decode())
        assert r.status in ("OK", "NO", "BAD"), (line, r)
        assert not (line.startswith((b"s1", b"s2", b"s5")) and r.status == "OK"), (line, r)
    c.close()
    p = poptest.RawPOP3(server)
    for line in [b"USER shiro" + bad + b"yagi@example.com", b"PASS x" + bad,
                 b"AUTH PLAIN " + bad, b"CA" + bad + b"PA"]:
        st = p.cmd(line)
        assert st.startswith("-ERR") or line.startswith(b"USER"), (line, st)
    p.ok("CAPA")
    p.multiline()
    p.close()


# ---- commands pipelined with DATA ----

def test_commands_after_data_in_the_same_packet_are_data(server):
    """MAIL, RCPT, DATA and the message in one write (RFC 2920 says to
    wait for 354; a sloppy or hostile client does not): the lines after
    DATA that look like commands are the message's lines, never commands.
    One message is stored, holding them, and no other recipient got
    anything."""
    subject = unique("pipe")
    body = (b"RCPT TO:<kuroyagi@example.com>\r\nRSET\r\nMAIL FROM:<evil@example.org>\r\n"
            b"RCPT TO:<someone@other.example>\r\nDATA\r\n")
    msg = make_msg(subject, body=body)
    r = server.session()
    r.send(b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<" + USER.encode() +
           b">\r\nDATA\r\n" + dot_stuff(msg) + b"QUIT\r\n")
    codes = [r.reply().code for _ in range(5)]
    assert codes == [250, 250, 354, 250, 221], codes
    r.close()
    stored = server.mail_containing(USER, subject)
    assert len(stored) == 1, stored
    assert stored[0][1].endswith(body), stored[0][1][-300:]
    assert server.find_mail("kuroyagi@example.com", subject) == []
    assert "other.example" not in server.queue_list()


def test_data_refused_then_body_lines_are_not_a_transaction(server):
    """DATA refused (no valid recipient) while the client already sent the
    message: its lines run as commands, as RFC 2920 3.1 warns, but they
    cannot make a transaction out of nothing: a MAIL line in the body gets
    250 only as a command, and the relay rules still hold for its RCPT."""
    r = server.session()
    r.send(b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<nobody@other.example>\r\nDATA\r\n"
           b"RCPT TO:<victim@other.example>\r\n.\r\nQUIT\r\n")
    codes = [r.reply().code for _ in range(6)]
    assert codes[0] == 250 and codes[1] >= 550 and codes[2] in (503, 554), codes
    assert codes[3] >= 550, codes       # relaying is refused whatever the path
    assert codes[-1] == 221, codes
    r.close()
    assert "victim@other.example" not in server.queue_list()
