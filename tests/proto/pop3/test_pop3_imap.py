"""POP3 and IMAP on one maildrop (RFC 1939 UPDATE seen from RFC 9051):
messages deleted over POP3 leave the INBOX for an IMAP session that has it
selected (it is told with EXPUNGE), and nothing changes for it before the
POP3 QUIT."""

import re
import socket
import time

import pytest

import yubintest
from poptest import RawPOP3, make_server, deliver_many, quit_ok, stat

IO = 20.0


@pytest.fixture(scope="module")
def server(module_yubin_factory):
    return make_server(module_yubin_factory, server_overrides={
        "imap": {"listen": "127.0.0.1:%d" % yubintest.free_port()}})


class Imap:
    """A small raw IMAP client: commands with tags, untagged lines kept."""

    def __init__(self, inst):
        self.sock = socket.create_connection(
            ("127.0.0.1", inst.listener_port("imap")), timeout=IO)
        self.f = self.sock.makefile("rwb", buffering=0)
        self.n = 0
        assert self.f.readline().startswith(b"* OK")

    def cmd(self, text):
        """Sends a command; returns (tagged line, untagged lines)."""
        self.n += 1
        tag = b"t%d" % self.n
        self.f.write(tag + b" " + text.encode() + b"\r\n")
        untagged = []
        while True:
            line = self.f.readline()
            assert line, "IMAP connection closed"
            if line.startswith(tag + b" "):
                return line.decode().rstrip(), [u.decode().rstrip() for u in untagged]
            untagged.append(line)

    def close(self):
        self.sock.close()


def expunges(untagged):
    return [int(m.group(1)) for m in (re.match(r"^\* (\d+) EXPUNGE$", u) for u in untagged) if m]


def test_pop3_dele_quit_is_expunge_for_imap(server):
    user = "%s@example.com" % yubintest.unique("popimap")
    server.add_user(user)
    subjects = [yubintest.unique("m%d" % i) for i in range(4)]
    deliver_many(server, [yubintest.make_msg(s, to=user) for s in subjects], rcpt=user)

    imap = Imap(server)
    try:
        tagged, _ = imap.cmd('LOGIN "%s" "%s"' % (user, yubintest.PASSWORD))
        assert " OK" in tagged, tagged
        tagged, untagged = imap.cmd("SELECT INBOX")
        assert " OK" in tagged and "* 4 EXISTS" in untagged, untagged

        pop = RawPOP3(server)
        pop.login(user)
        assert stat(pop)[0] == 4
        pop.ok("DELE 2")
        pop.ok("DELE 4")
        # Before QUIT nothing is deleted: IMAP sees no change.
        tagged, untagged = imap.cmd("NOOP")
        assert expunges(untagged) == [], untagged
        quit_ok(pop)
        pop.close()

        # After QUIT the IMAP session is told, on its next command, with
        # message numbers as they shift (4 first, then 2; or 2 then 3).
        deadline = time.monotonic() + 5
        seen = []
        while time.monotonic() < deadline:
            tagged, untagged = imap.cmd("NOOP")
            assert " OK" in tagged, tagged
            seen += expunges(untagged)
            if len(seen) >= 2:
                break
            time.sleep(0.1)
        assert sorted(seen) in ([2, 4], [2, 3]), seen
        assert len(seen) == 2, seen
        tagged, untagged = imap.cmd("UID SEARCH ALL")
        left = [u for u in untagged if u.startswith("* SEARCH")]
        assert len(left) == 1 and len(left[0].split()) == 4, left
        tagged, untagged = imap.cmd("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        text = "\n".join(untagged)
        assert subjects[0] in text and subjects[2] in text, text
        assert subjects[1] not in text and subjects[3] not in text, text
    finally:
        imap.close()
    # The store agrees.
    assert sorted(r.subject for r in server.mail_list(user)) == sorted([subjects[0], subjects[2]])


def test_pop3_drop_without_quit_expunges_nothing(server):
    user = "%s@example.com" % yubintest.unique("popimap")
    server.add_user(user)
    deliver_many(server, [yubintest.make_msg(yubintest.unique("k"), to=user)
                          for _ in range(2)], rcpt=user)
    imap = Imap(server)
    try:
        assert " OK" in imap.cmd('LOGIN "%s" "%s"' % (user, yubintest.PASSWORD))[0]
        assert "* 2 EXISTS" in imap.cmd("SELECT INBOX")[1]
        pop = RawPOP3(server)
        pop.login(user)
        pop.ok("DELE 1")
        pop.close()       # dropped, no QUIT
        time.sleep(0.5)
        tagged, untagged = imap.cmd("NOOP")
        assert expunges(untagged) == [], untagged
    finally:
        imap.close()
    assert len(server.mail_list(user)) == 2
