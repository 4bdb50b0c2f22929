"""8BITMIME down-conversion (RFC 6152 3): a message with 8-bit content for
a server that does not offer 8BITMIME is sent quoted-printable when it is a
single part with a 7-bit header, and bounced (5.6.3) when it cannot be
converted. The peer is a small SMTP server of this test that offers
neither 8BITMIME nor STARTTLS and keeps what it receives."""

import email
import quopri
import socket
import threading

from test_queue_smarthost import SHIRO, example, found, queue_rows, wait
import smtplib
import yubintest
from yubintest import PASSWORD


class SevenBitPeer:
    """An old-fashioned SMTP server: EHLO without 8BITMIME."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.messages = []      # (mail_from_line, data bytes)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.session(conn.makefile("rwb"))

    def session(self, f):
        def say(line):
            f.write(line.encode() + b"\r\n")
            f.flush()
        say("220 old.example ESMTP")
        mail = None
        while True:
            line = f.readline()
            if not line:
                return
            cmd = line.strip().upper()
            if cmd.startswith(b"EHLO"):
                say("250-old.example")
                say("250 SIZE 10000000")
            elif cmd.startswith(b"MAIL"):
                mail = line.strip().decode()
                say("250 ok")
            elif cmd.startswith(b"RCPT"):
                say("250 ok")
            elif cmd == b"DATA":
                say("354 go")
                data = b""
                while True:
                    l = f.readline()
                    if l == b".\r\n":
                        break
                    data += l[1:] if l.startswith(b"..") else l
                self.messages.append((mail, data))
                say("250 kept")
            elif cmd == b"QUIT":
                say("221 bye")
                return
            else:
                say("502 no")

    def close(self):
        self.sock.close()


def submit_raw(inst, rcpt, msg):
    with smtplib.SMTP("127.0.0.1", inst.listener_port("submission"), timeout=20) as s:
        s.login(SHIRO, PASSWORD)
        s.sendmail(SHIRO, [rcpt], msg)


def test_single_part_is_converted_multipart_bounced(yubin_factory):
    peer = SevenBitPeer()
    try:
        a = example(yubin_factory, peer.port)
        body = "Grüße aus Zürich — naïve café.\r\n.leading dot\r\nlong " + "é" * 60 + "\r\n"
        msg = ("From: %s\r\nTo: someone@old.example\r\nSubject: eight\r\n"
               "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Transfer-Encoding: 8bit\r\n\r\n" % SHIRO).encode() + body.encode()
        submit_raw(a, "someone@old.example", msg)
        assert wait(lambda: peer.messages), a.log_text()[-2000:]
        mail_from, data = peer.messages[0]
        assert "BODY=8BITMIME" not in mail_from
        assert all(b < 0x80 for b in data), data
        assert all(len(l) <= 76 for l in data.split(b"\r\n")), data
        got = email.message_from_bytes(data)
        assert got["Content-Transfer-Encoding"] == "quoted-printable"
        assert len(got.get_all("Content-Transfer-Encoding")) == 1
        assert got["Subject"] == "eight"
        assert quopri.decodestring(got.get_payload().encode()) == body.encode()
        assert "event=relay_8bit_converted" in a.log_text()

        # A multipart with an 8-bit part: not converted, bounced.
        multi = ("From: %s\r\nTo: someone@old.example\r\nSubject: multi8\r\n"
                 "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
                 "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nnaïve\r\n--b--\r\n"
                 % SHIRO).encode()
        submit_raw(a, "someone@old.example", multi)
        row = wait(lambda: found(a, SHIRO, "Undelivered Mail Returned to Sender"))
        assert row
        dsn = email.message_from_bytes(a.mail_show(SHIRO, "INBOX", row.uid))
        status = dsn.get_payload()[1].get_payload()[1]
        assert status["Status"] == "5.6.3"
        assert len(peer.messages) == 1
        assert wait(lambda: queue_rows(a) == [])
    finally:
        peer.close()
