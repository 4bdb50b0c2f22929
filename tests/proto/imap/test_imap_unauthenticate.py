"""UNAUTHENTICATE (RFC 8437): back to the not authenticated state on the
same connection, plain or TLS, with everything of the first user gone;
under COMPRESS (RFC 4978) both DEFLATE streams end with it, and a later
COMPRESS starts new ones."""

import base64
import random
import re
import socket
import time
import zlib

import pytest

import imaptest
import yubintest
from test_imap_compress import ZIMAP


@pytest.fixture(scope="module")
def server(module_yubin_factory):
    """Room for a 3 MB message."""
    return imaptest.make_server(module_yubin_factory, max_message_size="4M")


def caps(c):
    return set(imaptest.parse_caps(c.ok("CAPABILITY").lines("CAPABILITY")[0]))


def test_3_advertised_once_authenticated(imap):
    c = imap()
    assert "UNAUTHENTICATE" not in caps(c)
    # 3: BAD, never NO, where it is not allowed.
    assert c.cmd("UNAUTHENTICATE").status == "BAD"
    r = c.login()
    assert "UNAUTHENTICATE" in imaptest.parse_caps(r.text)
    assert "UNAUTHENTICATE" in caps(c)
    assert c.cmd("UNAUTHENTICATE now").status == "BAD"


def test_3_back_to_not_authenticated(mailbox, server, imap):
    mailbox.fill(2)
    other = imaptest.new_user(server, "other")
    c = mailbox.session(select=None)
    c.ok("ENABLE QRESYNC UTF8=ACCEPT")
    c.ok("SELECT INBOX")
    c.ok("SEARCH RETURN (SAVE) ALL")
    r = c.ok("UNAUTHENTICATE")
    # 3: the mailbox is closed without expunge events.
    assert r.untagged == [], r
    # Not authenticated: the commands of the other states are BAD, the
    # capabilities are those before login again.
    for cmd in ("FETCH 1 FLAGS", "SELECT INBOX", "LIST \"\" *", "NOOP"):
        r = c.cmd(cmd)
        assert r.status == ("OK" if cmd == "NOOP" else "BAD"), (cmd, r)
    now = caps(c)
    assert "AUTH=PLAIN" in now and "UNAUTHENTICATE" not in now, now
    # Another user on the same connection sees only their own mail.
    c.login(other)
    # 4.1: what ENABLE turned on is off (it is enabled anew), "$" is empty.
    r = c.ok("ENABLE QRESYNC UTF8=ACCEPT")
    assert r.lines("ENABLED") == ["ENABLED QRESYNC UTF8=ACCEPT"], r
    r = c.ok("SELECT INBOX")
    assert "* 0 EXISTS" in [x.text for x in r.untagged], r
    assert c.ok("SEARCH $").lines("SEARCH") == ["SEARCH"]
    c.ok("UNAUTHENTICATE")
    c.login(mailbox.user)
    r = c.ok("SELECT INBOX")
    assert "* 2 EXISTS" in [x.text for x in r.untagged], r
    # Without ENABLE, no HIGHESTMODSEQ in SELECT (CONDSTORE is off, 4.1).
    assert not [x for x in r.untagged if b"HIGHESTMODSEQ" in x.raw], r


def test_3_pipelined_with_login_and_tls(mailbox, server, imap):
    """3: without a SASL layer the client may send UNAUTHENTICATE and the
    next login together; TLS stays."""
    other = imaptest.new_user(server, "pipe")
    c = imap(tls=True)
    c.login(mailbox.user)
    c.send('a1 UNAUTHENTICATE\r\na2 LOGIN "%s" "%s"\r\na3 CAPABILITY\r\n'
           % (other, imaptest.PASSWORD))
    assert c.read_until_tagged("a1").status == "OK"
    assert c.read_until_tagged("a2").status == "OK"
    r = c.read_until_tagged("a3")
    got = set(imaptest.parse_caps(r.lines("CAPABILITY")[0]))
    # Over TLS from the start: no STARTTLS to offer.
    assert "UNAUTHENTICATE" in got and "STARTTLS" not in got, got
    r = c.ok("STATUS INBOX (MESSAGES)")
    assert r.lines("STATUS") == ['STATUS "INBOX" (MESSAGES 0)'], r


# ---- under COMPRESS (RFC 8437 3 with RFC 4978) ----

class UZIMAP(ZIMAP):
    """ZIMAP whose DEFLATE streams can end: the server's end shows as
    decompressobj.eof, the bytes after it (unused_data) and all later
    ones are plain. before_end keeps the plain text not yet read when the
    server's stream ended; ends counts the ends seen."""

    ends = 0
    before_end = None

    def __init__(self, inst, tls=False, rcvbuf=None):
        if rcvbuf is None:
            super().__init__(inst, tls=tls)
            return
        # A small receive buffer, set before connecting: the server
        # cannot hand a big reply to the kernel and keeps it queued.
        port = inst.listener_port("imaps" if tls else "imap")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(imaptest.IO_TIMEOUT)
        sock.connect(("127.0.0.1", port))
        if tls:
            sock = yubintest.client_tls_context().wrap_socket(
                sock, server_hostname=yubintest.HOSTNAME)
        self.sock = sock
        self.buf = b""
        self.ntag = 0
        self.greeting = self.response()

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("connection closed by the server")
        if self.zin is None:
            self.buf += chunk
            return
        self.wire += len(chunk)
        out = self.zin.decompress(chunk)
        if self.zin.eof:
            self.before_end = self.buf + out
            self.ends += 1
            out += self.zin.unused_data
            self.zin = None
        self.buf += out

    def finish(self, data=b"", then=b""):
        """Sends data compressed, ends the stream (Z_FINISH) and sends
        then plain, all in one write."""
        if isinstance(data, str):
            data = data.encode()
        if isinstance(then, str):
            then = then.encode()
        z = self.zout.compress(data) + self.zout.flush(zlib.Z_FINISH)
        self.zout = None
        self.sock.sendall(z + then)

    def wait_end(self):
        """Reads until the server's stream ends; returns before_end."""
        while self.zin is not None:
            self._fill()
        return self.before_end


def login_compressed(server, user, tls=False, **kw):
    c = UZIMAP(server, tls=tls, **kw)
    c.login(user, imaptest.PASSWORD)
    c.compress()
    return c


def ok_last_before_end(c, tag):
    """The server's stream ended right after the CRLF of tag's OK."""
    text = c.wait_end()
    assert re.search(rb"(^|\r\n)%s OK [^\r\n]*\r\n$" % tag.encode(), text), text[-200:]


def test_3_advertised_under_compress(mailbox, server):
    c = login_compressed(server, mailbox.user)
    assert "UNAUTHENTICATE" in caps(c)
    c.close()


@pytest.mark.parametrize("tls", [False, True])
def test_3_under_compress_both_streams_end(mailbox, server, tls):
    """3: the server ends its DEFLATE stream after the CRLF of the OK, the
    client after the CRLF of the command; then both sides talk plain, and
    COMPRESS starts fresh streams, which a second UNAUTHENTICATE ends
    again."""
    mailbox.fill(1)
    other = imaptest.new_user(server, "zu")
    c = login_compressed(server, mailbox.user, tls=tls)
    c.select()
    tag = c.next_tag()
    c.send(tag + " UNAUTHENTICATE\r\n")		# sync-flushed, not ended
    ok_last_before_end(c, tag)
    r = c.read_until_tagged(tag)
    assert r.status == "OK" and r.untagged == [], r
    assert c.ends == 1
    # The client's end comes in a packet of its own.
    c.finish()
    time.sleep(0.1)
    got = caps(c)
    assert "AUTH=PLAIN" in got and "COMPRESS=DEFLATE" not in got, got
    c.login(other, imaptest.PASSWORD)
    assert "UNAUTHENTICATE" in caps(c)
    c.compress()
    r = c.ok("SELECT INBOX")
    assert "* 0 EXISTS" in [x.text for x in r.untagged], r
    assert "UNAUTHENTICATE" in caps(c)
    tag = c.next_tag()
    c.finish(tag + " UNAUTHENTICATE\r\n")
    ok_last_before_end(c, tag)
    assert c.read_until_tagged(tag).status == "OK"
    assert c.ends == 2
    c.login(mailbox.user, imaptest.PASSWORD)
    r = c.ok("SELECT INBOX")
    assert "* 1 EXISTS" in [x.text for x in r.untagged], r
    # Plain again: a fresh COMPRESS is OK, not [COMPRESSIONACTIVE].
    c.compress()
    c.noop()
    c.ok("LOGOUT")
    c.close()


@pytest.mark.parametrize("tls", [False, True])
def test_3_under_compress_pipelined_with_final_block(mailbox, server, tls):
    """The command, the end of the client's stream and the next plain
    commands in one write; then COMPRESS with the first bytes of the new
    stream right behind it in the same write."""
    other = imaptest.new_user(server, "zq")
    c = login_compressed(server, mailbox.user, tls=tls)
    c.finish("a1 NOOP\r\na2 UNAUTHENTICATE\r\n",
             'a3 LOGIN "%s" "%s"\r\na4 CAPABILITY\r\n' % (other, imaptest.PASSWORD))
    ok_last_before_end(c, "a2")
    assert c.read_until_tagged("a1").status == "OK"
    assert c.read_until_tagged("a2").status == "OK"
    assert c.read_until_tagged("a3").status == "OK"
    r = c.read_until_tagged("a4")
    assert "UNAUTHENTICATE" in imaptest.parse_caps(r.lines("CAPABILITY")[0])
    # COMPRESS and compressed commands behind it, unread by the server
    # when it turns DEFLATE on.
    z = zlib.compressobj(wbits=-15)
    c.send_raw(b"a5 COMPRESS DEFLATE\r\n" +
               z.compress(b"a6 SELECT INBOX\r\na7 NOOP\r\n") + z.flush(zlib.Z_SYNC_FLUSH))
    r = c.read_until_tagged("a5")
    assert r.status == "OK", r
    # What came behind the OK is the server's new stream.
    c.zout, c.zin = z, zlib.decompressobj(wbits=-15)
    c.buf = c.zin.decompress(c.buf)
    r = c.read_until_tagged("a6")
    assert r.status == "OK" and "* 0 EXISTS" in [x.text for x in r.untagged], r
    assert c.read_until_tagged("a7").status == "OK"
    c.ok("LOGOUT")
    c.close()


def test_3_under_compress_then_starttls(mailbox, server):
    """Plain connection: COMPRESS, UNAUTHENTICATE, then STARTTLS, login and
    COMPRESS again, now over the TLS."""
    c = login_compressed(server, mailbox.user)
    tag = c.next_tag()
    c.finish(tag + " UNAUTHENTICATE\r\n")
    ok_last_before_end(c, tag)
    assert c.read_until_tagged(tag).status == "OK"
    assert "STARTTLS" in caps(c)
    c.starttls()
    c.login(mailbox.user, imaptest.PASSWORD)
    c.compress()
    c.select()
    r = c.ok("CAPABILITY")
    assert "UNAUTHENTICATE" in r.lines()[0]
    c.ok("LOGOUT")
    c.close()


@pytest.mark.parametrize("tls", [False, True])
def test_3_pipelined_big_fetch_before_unauthenticate(mailbox, server, tls):
    """A 3 MB FETCH, UNAUTHENTICATE and a plain command sent together and
    not read for a while: the reply waits in the server, most of it not
    deflated yet when UNAUTHENTICATE ends the stream. All of it comes
    compressed and intact, the end right after the OK, then plain."""
    rnd = random.Random(8437)
    body = b"".join(base64.b64encode(rnd.randbytes(57)) + b"\r\n"
                    for _ in range(3 * 1024 * 1024 // 78))
    # An attachment, not text: no full-text index of 3 MB of noise.
    msg = yubintest.make_msg("big", to=mailbox.user, body=body, extra_headers=(
        "MIME-Version: 1.0", "Content-Type: application/octet-stream",
        "Content-Transfer-Encoding: base64"))
    imaptest.deliver(server, msg, rcpt=mailbox.user)
    c = login_compressed(server, mailbox.user, tls=tls, rcvbuf=8192)
    c.select()
    c.finish("f1 FETCH 1 BODY.PEEK[]\r\nf2 UNAUTHENTICATE\r\n", "f3 CAPABILITY\r\n")
    time.sleep(1.0)
    ok_last_before_end(c, "f2")
    r = c.read_until_tagged("f1")
    assert r.status == "OK"
    fetched = r.untagged[-1].literals[0]
    assert fetched.endswith(msg) and b"Subject: big" in fetched
    # The case this is about: most of the reply was still waiting above
    # the compressor when UNAUTHENTICATE ended the stream.
    with open(server.log_path, "rb") as f:
        queued = re.findall(rb"event=compress_end session=\w+ queued=(\d+)", f.read())
    assert int(queued[-1]) > 1024 * 1024, queued[-1]
    assert c.read_until_tagged("f2").status == "OK"
    r = c.read_until_tagged("f3")
    assert "AUTH=PLAIN" in imaptest.parse_caps(r.lines("CAPABILITY")[0])
    assert c.ends == 1 and c.buf == b""
    c.login(mailbox.user, imaptest.PASSWORD)
    c.close()


@pytest.mark.parametrize("tls", [False, True])
def test_4978_end_without_unauthenticate_disconnects(mailbox, server, tls):
    """RFC 4978 3: the client's stream does not end, except right after
    UNAUTHENTICATE; a client that ends it otherwise is disconnected, its
    plain bytes after the end never read as commands."""
    c = login_compressed(server, mailbox.user, tls=tls)
    c.finish("n1 NOOP\r\n", "n2 LOGOUT\r\n")
    assert c.read_until_tagged("n1").status == "OK"
    assert c.is_closed()
    assert b"n2 " not in c.buf
    c.close()
    # The end alone, in a packet of its own after a command's reply.
    c = login_compressed(server, mailbox.user, tls=tls)
    c.noop()
    c.finish()
    assert c.is_closed()
    c.close()
    # Ended in the middle of a command.
    c = login_compressed(server, mailbox.user, tls=tls)
    c.finish("n1 NO", "OP\r\n")
    assert c.is_closed()
    c.close()


def test_3_more_deflate_after_unauthenticate_disconnects(mailbox, server):
    """3: the client's layer ends right after the command's CRLF; more
    compressed commands in the same stream are refused (disconnect), not
    run as if the client were not authenticated."""
    c = login_compressed(server, mailbox.user)
    c.send('u1 UNAUTHENTICATE\r\nu2 LOGIN "%s" "%s"\r\n' % (mailbox.user, imaptest.PASSWORD))
    assert c.is_closed()
    assert b"u2 OK" not in c.buf
    c.close()
    # The same with the later command in a packet of its own.
    c = login_compressed(server, mailbox.user)
    tag = c.next_tag()
    c.send(tag + " UNAUTHENTICATE\r\n")
    ok_last_before_end(c, tag)
    assert c.read_until_tagged(tag).status == "OK"
    c.send("u3 CAPABILITY\r\n")
    assert c.is_closed()
    assert b"u3 " not in c.buf
    c.close()
