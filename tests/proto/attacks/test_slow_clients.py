"""Slow clients (slowloris) on IMAP and POP3 ([M8] item 3).

A client that connects and says nothing, that sends a command a byte at a
time so no single wait reaches the idle timeout, or that sends a literal
slowly, must not hold a session for ever:

- before login, [limits] login_timeout bounds the whole time from the
  greeting to a successful login, whatever arrives meanwhile (RFC 9051
  5.4 allows a shorter timer before authentication; RFC 1939 3's
  10 minutes are an autologout timer, for a logged-in session);
- once logged in, each command (an IMAP one with its literals) must
  arrive whole within [limits] command_timeout of its first byte, as
  SMTP's DATA must within smtp_data_timeout.

Both are 3 s here. The server says why before it closes (IMAP `* BYE`,
RFC 9051 7.1.5; POP3 `-ERR`), logs it, and goes on serving others; a
client that sends whole commands in time is never cut.
"""

import os
import select
import socket
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "imap"))
sys.path.insert(0, os.path.join(HERE, "..", "pop3"))

import imaptest  # noqa: E402
import poptest  # noqa: E402
import yubintest  # noqa: E402
from yubintest import PASSWORD  # noqa: E402

T = 3.0             # login_timeout and command_timeout below
EARLY = 0.3         # timer slack: never cut more than this before T
LATE = 3.0          # a loaded machine under ASan answers this much late


@pytest.fixture(scope="module")
def server(module_yubin_factory):
    ov = imaptest.imap_overrides(login_timeout="%ds" % T, command_timeout="%ds" % T)
    ov.update({k: v for k, v in poptest.pop3_overrides().items() if k != "limits"})
    return module_yubin_factory(ov, provision=yubintest.provision_standard)


def others_served(server):
    """Another client logs in and is answered at once, over IMAP and
    POP3."""
    t0 = time.monotonic()
    c = imaptest.RawIMAP(server, timeout=10)
    c.login()
    c.select()
    c.ok("LOGOUT")
    c.close()
    p = poptest.RawPOP3(server, timeout=10)
    p.login(imaptest.USER2)
    p.ok("QUIT")
    p.close()
    took = time.monotonic() - t0
    # Well under a second on an idle machine; the bound leaves room for a
    # busy one under ASan.
    assert took < 6, "another client took %.1fs" % took


@pytest.fixture(autouse=True)
def still_serving(server):
    yield
    assert server.running(), server.log()
    others_served(server)


def trickle(sock, chunks, every, t0, meanwhile=None, max_time=30):
    """Sends one chunk every `every` seconds (the first at once) until the
    server closes; reads all the while. Returns (bytes received, seconds
    from t0 to the close). `meanwhile` runs once in a thread, a second
    in, to show the server serves others while this one dribbles."""
    chunks = list(chunks)
    got = b""
    nxt = time.monotonic()
    th = None
    if meanwhile is not None:
        errors = []

        def run():
            try:
                meanwhile()
            except BaseException as e:   # reported in the main thread
                errors.append(e)
        th = threading.Timer(1.0, run)
        th.start()
    try:
        while time.monotonic() - t0 < max_time:
            now = time.monotonic()
            if chunks and now >= nxt:
                try:
                    sock.sendall(chunks.pop(0))
                except (BrokenPipeError, ConnectionResetError):
                    pass
                nxt = now + every
            wait = max(0.0, nxt - time.monotonic()) if chunks else 1.0
            r, _, _ = select.select([sock], [], [], wait)
            if r:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if not data:
                    return got, time.monotonic() - t0
                got += data
        raise AssertionError("not closed within %ds; got %r" % (max_time, got[-300:]))
    finally:
        if th is not None:
            th.join()
            if errors:
                raise errors[0]


def bytes_of(data):
    return [data[i:i + 1] for i in range(len(data))]


def assert_cut_at(elapsed, what):
    assert T - EARLY <= elapsed <= T + LATE, "%s: cut after %.2fs (want %gs)" % (
        what, elapsed, T)


def imap_port(server):
    return server.listener_port("imap")


def pop3_port(server):
    return server.listener_port("pop3")


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    t0 = time.monotonic()
    return s, t0


def read_line(sock):
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(1)
        assert chunk, data
        data += chunk
    return data


# ---- IMAP before login ----

def test_imap_silent_client_cut_at_login_timeout(server):
    s, t0 = connect(imap_port(server))
    assert read_line(s).startswith(b"* OK ")
    got, took = trickle(s, [], 1, t0)
    assert got == b"* BYE Not logged in in time\r\n", got
    assert_cut_at(took, "silent")
    s.close()
    assert "event=login_timeout" in server.log_text()


def test_imap_login_dribbled_a_byte_at_a_time(server):
    """Each byte comes well within the idle time; the whole never does."""
    s, t0 = connect(imap_port(server))
    assert read_line(s).startswith(b"* OK ")
    line = b'a1 LOGIN %s "%s"\r\n' % (imaptest.USER.encode(), PASSWORD.encode())
    got, took = trickle(s, bytes_of(line), 0.5, t0, meanwhile=lambda: others_served(server))
    assert got == b"* BYE Not logged in in time\r\n", got
    assert_cut_at(took, "dribbled LOGIN")
    s.close()


def test_imap_whole_commands_do_not_extend_the_login_time(server):
    """RFC 9051 5.4: the timer before authentication need not be reset by
    commands; NOOP after NOOP still ends at login_timeout."""
    s, t0 = connect(imap_port(server))
    assert read_line(s).startswith(b"* OK ")
    cmds = [b"n%d NOOP\r\n" % i for i in range(40)]
    got, took = trickle(s, cmds, 0.5, t0)
    assert got.endswith(b"* BYE Not logged in in time\r\n"), got
    assert got.count(b" OK NOOP completed\r\n") >= 4, got
    assert_cut_at(took, "NOOPs before login")
    s.close()


def test_imap_slow_literal_before_login(server):
    s, t0 = connect(imap_port(server))
    assert read_line(s).startswith(b"* OK ")
    s.sendall(b"a1 LOGIN {60000}\r\n")
    assert read_line(s) == b"+ OK\r\n"
    got, took = trickle(s, [b"x" * 500] * 200, 0.3, t0)
    assert got == b"* BYE Not logged in in time\r\n", got
    assert_cut_at(took, "slow LOGIN literal")
    s.close()


def test_imap_unauthenticate_starts_the_login_time_again(server):
    """RFC 8437: back to not authenticated, with its shorter timer."""
    c = imaptest.RawIMAP(server)
    c.login()
    time.sleep(T + 1)          # logged in: login_timeout no longer applies
    c.ok("NOOP")
    c.ok("UNAUTHENTICATE")
    t0 = time.monotonic()
    got, took = trickle(c.sock, [], 1, t0)
    assert got == b"* BYE Not logged in in time\r\n", got
    assert_cut_at(took, "after UNAUTHENTICATE")
    c.close()


# ---- IMAP logged in ----

def logged_in_imap(server):
    c = imaptest.RawIMAP(server)
    c.login()
    c.select()
    return c


def test_imap_command_dribbled_after_login(server):
    c = logged_in_imap(server)
    time.sleep(1)
    t0 = time.monotonic()
    line = b"a9 SEARCH SUBJECT " + b"x" * 60 + b"\r\n"
    got, took = trickle(c.sock, bytes_of(line), 0.5, t0,
                        meanwhile=lambda: others_served(server))
    assert got == b"* BYE Command not completed in time\r\n", got
    assert_cut_at(took, "dribbled SEARCH")
    c.close()
    assert "event=command_timeout" in server.log_text()


def test_imap_append_literal_sent_slowly(server):
    user = imaptest.new_user(server, "slowappend")
    c = imaptest.RawIMAP(server)
    c.login(user)
    t0 = time.monotonic()
    c.send(b"a9 APPEND INBOX {200000}\r\n")
    assert c.line() == b"+ OK\r\n"
    got, took = trickle(c.sock, [b"y" * 1000] * 200, 0.3, t0)
    assert got == b"* BYE Command not completed in time\r\n", got
    assert_cut_at(took, "slow APPEND literal")
    c.close()
    # Nothing half-appended.
    assert server.mail_list(user) == []


def test_imap_timely_commands_are_never_cut(server):
    """Whole commands every second for 3 T, and an APPEND whose literal
    comes in pieces within T: all answered, nothing cut."""
    user = imaptest.new_user(server, "paced")
    c = imaptest.RawIMAP(server)
    c.login(user)
    t_end = time.monotonic() + 3 * T
    while time.monotonic() < t_end:
        c.ok("NOOP")
        time.sleep(1)
    msg = yubintest.make_msg("paced", to=user, body=b"z" * 3000 + b"\r\n")
    tag = c.next_tag()
    c.send(b"%s APPEND INBOX {%d}\r\n" % (tag.encode(), len(msg)))
    assert c.line() == b"+ OK\r\n"
    for i in range(0, len(msg), 1000):
        c.send(msg[i:i + 1000])
        time.sleep(T / 6)
    c.send(b"\r\n")
    assert c.read_until_tagged(tag).status == "OK"
    # Quiet well past T between commands: only the 30-minute idle timer
    # applies (RFC 9051 5.4).
    time.sleep(T + 1)
    c.ok("NOOP")
    c.ok("LOGOUT")
    c.close()
    assert len(server.mail_list(user)) == 1


# ---- POP3 ----

def test_pop3_silent_client_cut_at_login_timeout(server):
    s, t0 = connect(pop3_port(server))
    assert read_line(s).startswith(b"+OK ")
    got, took = trickle(s, [], 1, t0)
    assert got == b"-ERR Not logged in in time, closing\r\n", got
    assert_cut_at(took, "silent POP3")
    s.close()


def test_pop3_user_dribbled_a_byte_at_a_time(server):
    s, t0 = connect(pop3_port(server))
    assert read_line(s).startswith(b"+OK ")
    line = b"USER %s\r\n" % imaptest.USER.encode()
    got, took = trickle(s, bytes_of(line), 0.5, t0, meanwhile=lambda: others_served(server))
    assert got == b"-ERR Not logged in in time, closing\r\n", got
    assert_cut_at(took, "dribbled USER")
    s.close()


def test_pop3_whole_commands_do_not_extend_the_login_time(server):
    s, t0 = connect(pop3_port(server))
    assert read_line(s).startswith(b"+OK ")
    got, took = trickle(s, [b"CAPA\r\n"] * 40, 0.5, t0)
    assert got.endswith(b"-ERR Not logged in in time, closing\r\n"), got
    assert got.count(b"IMPLEMENTATION yubin\r\n.\r\n") >= 4, got
    assert_cut_at(took, "CAPAs before login")
    s.close()


def test_pop3_command_dribbled_after_login(server):
    c = poptest.RawPOP3(server)
    c.login(imaptest.USER2)
    time.sleep(1)
    t0 = time.monotonic()
    # RFC 1939 3: trailing blanks are forgiven; the line never ends in time.
    got, took = trickle(c.sock, bytes_of(b"UIDL 1" + b" " * 30 + b"\r\n"), 0.5, t0)
    assert got == b"-ERR Command not completed in time, closing\r\n", got
    assert_cut_at(took, "dribbled UIDL")
    c.close()


def test_pop3_timely_commands_are_never_cut(server):
    c = poptest.RawPOP3(server)
    c.login(imaptest.USER2)
    t_end = time.monotonic() + 3 * T
    while time.monotonic() < t_end:
        c.ok("STAT")
        time.sleep(1)
    # Quiet past T: after login only pop3_timeout (RFC 1939 3) applies.
    time.sleep(T + 1)
    c.ok("NOOP")
    c.ok("QUIT")
    c.close()


# ---- TLS handshakes ----

HANDSHAKE_S = 30    # net.c HANDSHAKE_TIMEOUT_S


def test_tls_hello_dribbled_on_implicit_tls_ports(server):
    """imaps and pop3s: a TLS record header, then its body a byte every
    2 s (each read well within the handshake's idle time). The handshake
    must end within 30 s in all; before login_timeout even starts (it
    runs from the greeting, which comes after the handshake). Both
    ports at once, so one 30 s wait covers them."""
    results = {}

    def one(section):
        s, t0 = connect(server.listener_port(section))
        chunks = [b"\x16\x03\x01\x02\x00"] + [b"\x01"] * 100
        try:
            results[section] = trickle(s, chunks, 2.0, t0, max_time=HANDSHAKE_S + 15)
        except AssertionError as e:
            results[section] = e
        s.close()
    threads = [threading.Thread(target=one, args=(sec,)) for sec in ("imaps", "pop3s")]
    for th in threads:
        th.start()
    time.sleep(HANDSHAKE_S / 2)
    others_served(server)
    for th in threads:
        th.join()
    for section in ("imaps", "pop3s"):
        assert not isinstance(results[section], AssertionError), "%s: %s" % (
            section, results[section])
        got, took = results[section]
        assert got == b"", (section, got)
        assert HANDSHAKE_S - EARLY <= took <= HANDSHAKE_S + LATE, (
            "%s: cut after %.2fs (want %ds)" % (section, took, HANDSHAKE_S))


def test_tls_hello_dribbled_after_starttls_before_login(server):
    """After STARTTLS (IMAP) and STLS (POP3) the login deadline still
    runs: a handshake dribbled after it is cut at login_timeout."""
    c = imaptest.RawIMAP(server)
    t0 = time.monotonic()
    c.ok("STARTTLS")
    got, took = trickle(c.sock, [b"\x16\x03\x01\x02\x00"] + [b"\x01"] * 100, 0.5, t0)
    assert_cut_at(took, "IMAP STARTTLS hello")
    c.close()
    p = poptest.RawPOP3(server)
    t0 = time.monotonic()
    p.ok("STLS")
    got, took = trickle(p.sock, [b"\x16\x03\x01\x02\x00"] + [b"\x01"] * 100, 0.5, t0)
    assert_cut_at(took, "POP3 STLS hello")
    p.close()


# ---- a cut while the password check waits ----

def test_cut_during_a_delayed_login_failure_then_stop(yubin_factory):
    """A wrong password is answered after auth_fail_delay (5 s here); the
    login deadline (3 s) cuts the session first, and the server stops
    while the answer is still due: the session and its check are freed
    (no leak under ASan, a clean exit), over IMAP and POP3."""
    ov = imaptest.imap_overrides(login_timeout="%ds" % T, auth_fail_delay="5000",
                                 auth_fail_delay_max="5000")
    ov.update({k: v for k, v in poptest.pop3_overrides().items() if k != "limits"})
    ov["limits"].update({"auth_fail_delay": "5000", "auth_fail_delay_max": "5000"})
    inst = yubin_factory(ov, provision=yubintest.provision_standard)
    i, t0 = connect(inst.listener_port("imap"))
    assert read_line(i).startswith(b"* OK ")
    i.sendall(b'a1 LOGIN %s "wrong"\r\n' % imaptest.USER.encode())
    p, _ = connect(inst.listener_port("pop3"))
    assert read_line(p).startswith(b"+OK ")
    p.sendall(b"USER %s\r\nPASS wrong\r\n" % imaptest.USER2.encode())
    got, took = trickle(i, [], 1, t0)
    assert got == b"* BYE Not logged in in time\r\n", got
    assert_cut_at(took, "IMAP waiting for its answer")
    got, _ = trickle(p, [], 1, t0)
    assert got == b"+OK Send the password\r\n-ERR Not logged in in time, closing\r\n", got
    i.close()
    p.close()
    assert time.monotonic() - t0 < 5, "the failure delay ran out before the stop"
    inst.stop_clean()
