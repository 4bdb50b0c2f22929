"""[limits] max_sessions_per_user ([M8] item 3): logged-in IMAP and POP3
sessions of one account, both protocols together, with Python's imaplib
and poplib against a real `yubin serve`.

Over the limit a login fails with the protocol's answer (IMAP
`NO [LIMIT]`, RFC 5530 3; POP3 `-ERR [IN-USE]`, RFC 2449 8.1.2: the
credentials were right, the account is busy with its other clients) and
the session stays unauthenticated, free to try again. The count is per
account (another account is unaffected) and a session gives its slot
back however it ends: LOGOUT, QUIT, UNAUTHENTICATE, a dropped
connection, a timeout, the server stopping. Each of those is checked the
same way: LIMIT sessions end that way, then LIMIT new ones log in, and
one more is refused again (so nothing was released twice either; the
server also logs an error if a slot is given back that was never taken).
"""

import imaplib
import os
import poplib
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
from yubintest import PASSWORD  # noqa: E402

LIMIT = 3
IO = 20


def overrides(**limits):
    lim = {"max_sessions_per_user": str(LIMIT), "command_timeout": "3s"}
    lim.update(limits)
    ov = imaptest.imap_overrides(**lim)
    ov.update({k: v for k, v in poptest.pop3_overrides().items() if k != "limits"})
    return ov


@pytest.fixture(scope="module")
def server(module_yubin_factory):
    return module_yubin_factory(overrides(), provision=yubintest.provision_standard)


@pytest.fixture(autouse=True)
def no_count_errors(request):
    yield
    inst = request.getfixturevalue("server") if "server" in request.fixturenames else None
    if inst is not None:
        assert "event=session_count_error" not in inst.log_text(), inst.log()


def imap_login(inst, user):
    c = imaplib.IMAP4("127.0.0.1", inst.listener_port("imap"), timeout=IO)
    try:
        c.login(user, PASSWORD)
    except BaseException:
        c.shutdown()
        raise
    return c


def pop3_login(inst, user):
    p = poplib.POP3("127.0.0.1", inst.listener_port("pop3"), timeout=IO)
    try:
        p.user(user)
        p.pass_(PASSWORD)
    except BaseException:
        p.close()
        raise
    return p


def imap_refused(inst, user):
    """The IMAP login is refused for the limit; returns the answer."""
    c = imaplib.IMAP4("127.0.0.1", inst.listener_port("imap"), timeout=IO)
    try:
        with pytest.raises(imaplib.IMAP4.error) as e:
            c.login(user, PASSWORD)
        # imaplib raises a NO's text: "b'[LIMIT] ...'"
        assert str(e.value).startswith("b'[LIMIT] Too many sessions"), str(e.value)
        assert c.state == "NONAUTH"
        return str(e.value)
    finally:
        c.shutdown()


def pop3_refused(inst, user):
    p = poplib.POP3("127.0.0.1", inst.listener_port("pop3"), timeout=IO)
    try:
        p.user(user)
        with pytest.raises(poplib.error_proto) as e:
            p.pass_(PASSWORD)
        text = e.value.args[0].decode()
        assert text.startswith("-ERR [IN-USE] Too many sessions"), text
        return text
    finally:
        p.close()


def eventually(login, timeout=10.0):
    """login() once the server has released what was ended: a dropped
    connection or a timeout is noticed by the server a moment after the
    client sees it. A slot that is never given back fails here."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return login()
        except (imaplib.IMAP4.error, poplib.error_proto) as e:
            text = str(e)
            if "LIMIT" not in text and "IN-USE" not in text:
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def refused_lines(inst, protocol, user):
    return [l for l in inst.log_text().splitlines()
            if "event=login_refused" in l and "protocol=%s" % protocol in l
            and "user=%s" % user in l and "reason=max_sessions_per_user" in l]


def full_house(inst, user):
    """LIMIT new sessions log in (IMAP, and POP3 for one of them), and one
    more is refused in both protocols."""
    imaps = [eventually(lambda: imap_login(inst, user)) for _ in range(LIMIT - 1)]
    pop = eventually(lambda: pop3_login(inst, user))
    imap_refused(inst, user)
    return imaps, pop


def close_all(imaps, pops=()):
    for c in imaps:
        try:
            c.logout()
        except (OSError, imaplib.IMAP4.abort):
            pass
    for p in pops:
        try:
            p.quit()
        except (OSError, poplib.error_proto):
            pass


# ---- the limit ----

def test_limit_counts_imap_and_pop3_together_per_account(server):
    user = imaptest.new_user(server, "lim")
    other = imaptest.new_user(server, "other")
    imaps = [imap_login(server, user) for _ in range(LIMIT)]
    # Full with IMAP sessions: POP3 is refused too, and not for the
    # maildrop lock (no POP3 session holds it).
    pop3_refused(server, user)
    imap_refused(server, user)
    # Another account is not touched by this one's sessions.
    o_imap, o_pop = imap_login(server, other), pop3_login(server, other)
    assert o_pop.stat() == (0, 0)
    assert o_imap.select("INBOX")[0] == "OK"
    # One IMAP session out, a POP3 one in: full again, IMAP is refused.
    imaps.pop().logout()
    pop = pop3_login(server, user)
    imap_refused(server, user)
    assert len(refused_lines(server, "imap", user)) == 2, server.log()
    assert len(refused_lines(server, "pop3", user)) == 1, server.log()
    line = refused_lines(server, "imap", user)[0]
    assert "sessions=%d limit=%d" % (LIMIT, LIMIT) in line, line
    # The sessions in place work as before.
    for c in imaps:
        assert c.select("INBOX")[0] == "OK"
    assert pop.stat() == (0, 0)
    close_all(imaps + [o_imap], [pop, o_pop])


def test_every_spelling_of_an_address_is_one_account(server):
    user = imaptest.new_user(server, "case")
    spellings = [user, user.upper(), user.capitalize()]
    sessions = [imap_login(server, u) for u in spellings]
    imap_refused(server, user)
    imap_refused(server, user.upper())
    pop3_refused(server, user.capitalize())
    close_all(sessions)


def test_refused_imap_session_stays_unauthenticated_and_may_retry(server):
    user = imaptest.new_user(server, "retry")
    imaps = [imap_login(server, user) for _ in range(LIMIT)]
    c = imaptest.RawIMAP(server)
    r = c.cmd('LOGIN %s "%s"' % (user, PASSWORD))
    assert r.status == "NO" and r.tagged.raw.split()[2] == b"[LIMIT]", r
    # AUTHENTICATE (RFC 4959 initial response) is refused the same way.
    r = c.cmd("AUTHENTICATE PLAIN " + imaptest.b64("\0%s\0%s" % (user, PASSWORD)))
    assert r.status == "NO" and r.tagged.raw.split()[2] == b"[LIMIT]", r
    r = c.cmd("SELECT INBOX")
    assert r.status == "BAD", r        # still not authenticated
    caps = c.capabilities(c.ok("CAPABILITY").untagged[0].text)
    assert "AUTH=PLAIN" in caps
    imaps.pop().logout()
    c.login(user, PASSWORD)
    c.select()
    close_all(imaps)
    c.ok("LOGOUT")
    c.close()


def test_refused_pop3_session_stays_in_authorization_and_may_retry(server):
    user = imaptest.new_user(server, "popretry")
    imaps = [imap_login(server, user) for _ in range(LIMIT)]
    c = poptest.RawPOP3(server)
    c.ok("USER " + user)
    st = c.cmd("PASS " + PASSWORD)
    assert st.startswith("-ERR [IN-USE] "), st
    st = c.cmd("STAT")
    assert st.startswith("-ERR"), st   # AUTHORIZATION state
    imaps.pop().logout()
    c.ok("USER " + user)
    c.ok("PASS " + PASSWORD)
    assert c.ok("STAT").startswith("+OK 0 0")
    c.ok("QUIT")
    close_all(imaps)


def test_no_limit_when_zero(yubin_factory):
    inst = yubin_factory(overrides(max_sessions_per_user="0"),
                         provision=yubintest.provision_standard)
    user = imaptest.new_user(inst, "nolimit")
    imaps = [imap_login(inst, user) for _ in range(LIMIT * 3)]
    pop = pop3_login(inst, user)
    close_all(imaps, [pop])


# ---- released on every way out ----

def end_imap(inst, c, way, kept):
    if way == "logout":
        c.logout()
    elif way == "unauthenticate":
        # The connection stays open, not authenticated (RFC 8437 3).
        typ, _ = c._simple_command("UNAUTHENTICATE")
        assert typ == "OK"
        kept.append(c)
    elif way == "drop":
        c.shutdown()
    elif way == "command_timeout":
        # Half a command (sent to all beforehand), then nothing: cut
        # after command_timeout.
        data = b""
        c.sock.settimeout(15)
        while True:
            chunk = c.sock.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data == b"* BYE Command not completed in time\r\n", data
        c.shutdown()
    else:
        raise AssertionError(way)


@pytest.mark.parametrize("way", ["logout", "unauthenticate", "drop", "command_timeout"])
def test_imap_session_released(server, way):
    """RFC 9051 6.1.3 LOGOUT, RFC 8437 UNAUTHENTICATE, a dropped
    connection, a cut: LIMIT sessions end so, LIMIT new ones log in."""
    user = imaptest.new_user(server, "imap" + way.replace("_", ""))
    imaplib.Commands.setdefault("UNAUTHENTICATE", ("AUTH", "SELECTED"))
    kept = []
    for _round in range(2):
        imaps = [eventually(lambda: imap_login(server, user)) for _ in range(LIMIT)]
        imap_refused(server, user)
        if way == "command_timeout":
            for c in imaps:
                c.send(b"a1 NOO")
        for c in imaps:
            end_imap(server, c, way, kept)
    imaps, pop = full_house(server, user)
    close_all(imaps, [pop])
    for c in kept:
        c.shutdown()


def end_pop3(p, way):
    if way == "quit":
        p.quit()
    elif way == "quit_after_dele":
        p.dele(1)
        p.quit()      # the deletion is applied before the +OK
    elif way == "drop":
        p.close()     # file and socket: no QUIT, the connection just goes
    else:
        raise AssertionError(way)


@pytest.mark.parametrize("way", ["quit", "quit_after_dele", "drop"])
def test_pop3_session_released(server, way):
    """RFC 1939 6 QUIT (with and without an UPDATE), a dropped connection.
    The maildrop lock allows one POP3 session at a time, so LIMIT of them
    end one after the other beside LIMIT-1 IMAP sessions."""
    user = imaptest.new_user(server, "pop" + way.replace("_", ""))
    if way == "quit_after_dele":
        poptest.deliver_many(server, [yubintest.make_msg("d%d" % i, to=user)
                                      for i in range(LIMIT)], rcpt=user)
    imaps = [imap_login(server, user) for _ in range(LIMIT - 1)]
    for _ in range(LIMIT):
        p = eventually(lambda: pop3_login(server, user))
        imap_refused(server, user)
        end_pop3(p, way)
    close_all(imaps)
    imaps = [eventually(lambda: imap_login(server, user)) for _ in range(LIMIT)]
    imap_refused(server, user)
    pop3_refused(server, user)
    close_all(imaps)


def test_pop3_autologout_releases(yubin_factory):
    """RFC 1939 3: the autologout timer (pop3_timeout, 2 s here)."""
    inst = yubin_factory(overrides(pop3_timeout="2s"),
                         provision=yubintest.provision_standard)
    user = imaptest.new_user(inst, "auto")
    imaps = [imap_login(inst, user) for _ in range(LIMIT - 1)]
    for _ in range(2):
        p = eventually(lambda: pop3_login(inst, user))
        imap_refused(inst, user)
        p.sock.settimeout(15)
        line = p.file.readline()
        assert line == b"-ERR Autologout: idle for too long\r\n", line
        assert p.file.readline() == b""
        p.close()
    # 2 s of silence also cut the IMAP sessions? No: their idle timer is
    # RFC 9051's 30 minutes. Log in again where the POP3 one was.
    for c in imaps:
        assert c.noop()[0] == "OK"
    last = eventually(lambda: imap_login(inst, user))
    imap_refused(inst, user)
    close_all(imaps + [last])
    assert "event=session_count_error" not in inst.log_text()


def test_server_shutdown_with_sessions_logged_in(yubin_factory):
    """Stopped with LIMIT sessions logged in (mid-IDLE, selected, POP3):
    a clean exit (no leak under ASan), and after the restart the account
    logs in LIMIT times again."""
    inst = yubin_factory(overrides(), provision=yubintest.provision_standard)
    user = imaptest.new_user(inst, "down")
    imaps, pop = full_house(inst, user)
    imaps[0].select("INBOX")
    raw = [c.sock for c in imaps]
    inst.stop_clean()
    for s in raw:
        s.settimeout(10)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
    for c in imaps:
        c.shutdown()
    pop.close()
    inst.start()
    imaps, pop = full_house(inst, user)
    close_all(imaps, [pop])
    assert "event=session_count_error" not in inst.log_text()


def test_many_threads_logging_in_at_once_never_exceed_the_limit(yubin_factory):
    """io_threads = 2: logins that race on two threads still give exactly
    LIMIT sessions."""
    ov = overrides()
    ov["server"] = {"io_threads": "2"}
    inst = yubin_factory(ov, provision=yubintest.provision_standard)
    user = imaptest.new_user(inst, "race")
    port = inst.listener_port("imap")
    n = 12
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=IO)
        socks.append(s)
    for s in socks:
        assert s.recv(4096).startswith(b"* OK")
    for s in socks:
        s.sendall(b'a LOGIN %s "%s"\r\n' % (user.encode(), PASSWORD.encode()))
    answers = []
    for s in socks:
        data = b""
        while True:
            tagged = [l for l in data.split(b"\r\n")[:-1] if l.startswith(b"a ")]
            if tagged:
                break
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
        answers.append(tagged[0])
    ok = [a for a in answers if a.startswith(b"a OK")]
    no = [a for a in answers if a.startswith(b"a NO [LIMIT]")]
    assert len(ok) == LIMIT and len(no) == n - LIMIT, answers
    for s in socks:
        s.close()
    imaps, pop = full_house(inst, user)
    close_all(imaps, [pop])
