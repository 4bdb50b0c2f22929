"""POP3 sessions: greeting, CAPA, AUTHORIZATION (USER/PASS, AUTH), bad
input, error limits, pipelining (RFC 1939, RFC 2449, RFC 5034)."""

import poplib

import yubintest
from poptest import PASSWORD, USER, RawPOP3, deliver, make_server, quit_ok, stat


def test_greeting_has_no_apop_timestamp(pop):
    c = pop()
    # RFC 1939 7: a "<...>" timestamp would offer APOP, which we do not.
    assert b"<" not in c.greeting and b">" not in c.greeting
    assert yubintest.HOSTNAME.encode() in c.greeting


def test_capa_loopback(pop):
    c = pop()
    caps = c.capa()
    for cap in ("TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
                "EXPIRE NEVER", "UTF8", "STLS", "IMPLEMENTATION yubin"):
        assert cap in caps, (cap, caps)
    sasl = [l for l in caps if l.startswith("SASL ")]
    assert len(sasl) == 1
    assert set(sasl[0].split()[1:]) == {"PLAIN", "LOGIN", "SCRAM-SHA-256"}
    # Every capability line is at most 512 octets (RFC 2449 5).
    assert all(len(l) <= 510 for l in caps)


def test_capa_in_transaction(pop):
    c = pop()
    c.login()
    caps = c.capa()
    assert "TOP" in caps and "UIDL" in caps and "PIPELINING" in caps
    # STLS is for the AUTHORIZATION state only (RFC 2595 4).
    assert "STLS" not in caps
    quit_ok(c)


def test_user_pass(pop):
    c = pop()
    assert c.cmd("USER " + USER).startswith("+OK")
    st = c.cmd("PASS " + PASSWORD)
    assert st.startswith("+OK"), st
    quit_ok(c)


def test_user_is_case_insensitive_and_verbs_too(pop):
    c = pop()
    assert c.cmd("user " + USER.upper()).startswith("+OK")
    assert c.cmd("pAsS " + PASSWORD).startswith("+OK")
    assert c.cmd("stat").startswith("+OK")
    quit_ok(c)


def test_wrong_password(pop):
    c = pop()
    assert c.cmd("USER " + USER).startswith("+OK")
    st = c.cmd("PASS wrong")
    # RFC 3206 4 / RFC 2449 8: the failure is about the credentials.
    assert st.startswith("-ERR [AUTH]"), st
    # Still in AUTHORIZATION: a new attempt works.
    assert c.cmd("STAT").startswith("-ERR")
    c.login()
    stat(c)
    quit_ok(c)


def test_unknown_user_looks_like_wrong_password(pop):
    c = pop()
    assert c.cmd("USER nobody@example.com").startswith("+OK")
    assert c.cmd("PASS " + PASSWORD).startswith("-ERR [AUTH]")


def test_pass_without_user(pop):
    c = pop()
    st = c.cmd("PASS " + PASSWORD)
    assert st.startswith("-ERR"), st


def test_password_with_spaces_is_one_argument(server, pop):
    # The standard password has spaces ("correct horse battery staple").
    assert " " in PASSWORD
    c = pop()
    c.login()
    quit_ok(c)


def test_poplib_user_pass(server):
    p = poplib.POP3("127.0.0.1", server.listener_port("pop3"), timeout=10)
    p.user(USER)
    p.pass_(PASSWORD)
    p.stat()
    p.quit()


def test_apop_not_offered(pop):
    c = pop()
    st = c.cmd("APOP %s c4c9334bac560ecc979e58001b3e22fb" % USER)
    assert st.startswith("-ERR") and "APOP" in st, st
    c.login()
    quit_ok(c)


def test_auth_plain_initial_response(pop):
    c = pop()
    st = c.cmd("AUTH PLAIN " + yubintest.sasl_plain(USER, PASSWORD))
    assert st.startswith("+OK"), st
    stat(c)
    # RFC 5034 4: no second AUTH.
    assert c.cmd("AUTH PLAIN " + yubintest.sasl_plain(USER, PASSWORD)).startswith("-ERR")
    quit_ok(c)


def test_auth_plain_empty_challenge(pop):
    c = pop()
    # RFC 5034 4: without an initial response, an empty challenge "+ ".
    st = c.cmd("AUTH PLAIN")
    assert st == "+ ", repr(st)
    st = c.cmd(yubintest.sasl_plain(USER, PASSWORD))
    assert st.startswith("+OK"), st
    quit_ok(c)


def test_auth_plain_wrong_password(pop):
    c = pop()
    st = c.cmd("AUTH PLAIN " + yubintest.sasl_plain(USER, "nope"))
    assert st.startswith("-ERR [AUTH]"), st
    c.login()
    quit_ok(c)


def test_auth_login(pop):
    c = pop()
    st = c.cmd("AUTH LOGIN")
    assert st.startswith("+ "), st
    st = c.cmd(yubintest.b64(USER))
    assert st.startswith("+ "), st
    st = c.cmd(yubintest.b64(PASSWORD))
    assert st.startswith("+OK"), st
    quit_ok(c)


def test_auth_cancel(pop):
    c = pop()
    assert c.cmd("AUTH PLAIN").startswith("+ ")
    st = c.cmd("*")
    assert st.startswith("-ERR"), st
    c.login()
    quit_ok(c)


def test_auth_bad_base64(pop):
    c = pop()
    assert c.cmd("AUTH PLAIN").startswith("+ ")
    assert c.cmd("not base64!").startswith("-ERR")
    assert c.cmd("AUTH PLAIN =AAA").startswith("-ERR")
    c.login()
    quit_ok(c)


def test_auth_unknown_mechanism(pop):
    c = pop()
    assert c.cmd("AUTH GSSAPI").startswith("-ERR")
    c.login()
    quit_ok(c)


def test_auth_without_mechanism_lists_them(pop):
    c = pop()
    _, lines = c.lines("AUTH")
    assert set(lines) == {"PLAIN", "LOGIN", "SCRAM-SHA-256"}


def scram_login(c, user=USER, password=PASSWORD, tamper=False):
    sc = yubintest.ScramSha256(user, password)
    st = c.cmd("AUTH SCRAM-SHA-256 " + yubintest.b64(sc.client_first()))
    assert st.startswith("+ "), st
    server_first = yubintest.unb64(st[2:])
    st = c.cmd(yubintest.b64(sc.client_final(server_first, proof_tamper=tamper)))
    if tamper:
        return st
    # RFC 5034 4: the server-final comes as one more challenge.
    assert st.startswith("+ "), st
    assert sc.check_server_final(yubintest.unb64(st[2:])), "server proof is wrong"
    return c.cmd("")


def test_auth_scram_sha256(pop):
    c = pop()
    st = scram_login(c)
    assert st.startswith("+OK"), st
    stat(c)
    quit_ok(c)


def test_auth_scram_sha256_wrong_proof(pop):
    c = pop()
    st = scram_login(c, tamper=True)
    assert st.startswith("-ERR [AUTH]"), st
    c.login()
    quit_ok(c)


def test_transaction_commands_need_login(pop):
    c = pop()
    for cmd in ("STAT", "LIST", "RETR 1", "DELE 1", "RSET", "TOP 1 1", "UIDL", "NOOP"):
        st = c.cmd(cmd)
        assert st.startswith("-ERR") and "state" in st, (cmd, st)
    c.login()
    quit_ok(c)


def test_authorization_commands_after_login(pop):
    c = pop()
    c.login()
    for cmd in ("USER x", "PASS y", "AUTH PLAIN", "STLS", "UTF8", "APOP a b"):
        st = c.cmd(cmd)
        assert st.startswith("-ERR"), (cmd, st)
    stat(c)
    quit_ok(c)


def test_unknown_command_session_goes_on(pop):
    c = pop()
    st = c.cmd("XYZZY")
    assert st.startswith("-ERR"), st
    st = c.cmd("")
    assert st.startswith("-ERR"), st
    c.login()
    stat(c)
    quit_ok(c)


def test_overlong_line(pop):
    c = pop()
    # RFC 2449 4: commands are at most 255 octets with CRLF.
    st = c.cmd("USER " + "a" * 300)
    assert st.startswith("-ERR") and "long" in st, st
    st = c.cmd("NOOP " + "x" * 100000)
    assert st.startswith("-ERR") and "long" in st, st
    c.login()
    stat(c)
    quit_ok(c)


def test_nul_in_command(pop):
    c = pop()
    st = c.cmd(b"USER a\0b")
    assert st.startswith("-ERR"), st
    c.login()
    quit_ok(c)


def test_bare_lf_line_end_is_accepted(pop):
    c = pop()
    c.send(b"CAPA\n")
    assert c.status().startswith("+OK")
    c.multiline()
    c.login()
    quit_ok(c)


def test_too_many_errors_closes(server, pop):
    c = pop()
    limit = int(server.cfg["limits"]["max_errors"])
    for i in range(limit - 1):
        assert c.cmd("BOGUS").startswith("-ERR")
    st = c.cmd("BOGUS")
    assert st.startswith("-ERR") and "too many errors" in st, st
    assert c.is_closed()


def test_failed_logins_count_as_errors(server, pop):
    c = pop()
    limit = int(server.cfg["limits"]["max_errors"])
    for i in range(limit):
        c.cmd("USER " + USER)
        st = c.cmd("PASS wrong%d" % i)
        assert st.startswith("-ERR [AUTH]"), st
    assert c.is_closed()


def test_login_throttle_delays_failures(yubin_factory):
    import time
    inst = make_server(yubin_factory, auth_fail_delay="300", auth_fail_delay_max="300")
    c = RawPOP3(inst)
    c.cmd("USER " + USER)
    t = time.monotonic()
    assert c.cmd("PASS wrong").startswith("-ERR [AUTH]")
    assert time.monotonic() - t >= 0.25
    c.close()


def test_quit_in_authorization(pop):
    c = pop()
    st = c.ok("QUIT")
    assert c.is_closed()
    assert st.startswith("+OK")


def test_pipelining(server, pop):
    deliver(server, yubintest.make_msg(yubintest.unique("pipe")))
    c = pop()
    # Everything in one write; the answers come in order.
    c.send("CAPA\r\nUSER %s\r\nPASS %s\r\nSTAT\r\nLIST\r\nRETR 1\r\nNOOP\r\nQUIT\r\n"
           % (USER, PASSWORD))
    assert c.status().startswith("+OK")
    c.multiline()
    assert c.status().startswith("+OK")
    assert c.status().startswith("+OK")
    n = int(c.status().split()[1])
    assert n >= 1
    assert c.status().startswith("+OK")
    c.multiline()
    assert c.status().startswith("+OK")
    msg = c.multiline()
    assert b"Subject: pipe-" in msg
    assert c.status().startswith("+OK")
    assert c.status().startswith("+OK")
    assert c.is_closed()


def test_timeout_autologout_keeps_mail(yubin_factory):
    inst = make_server(yubin_factory, pop3_timeout="2s")
    deliver(inst, yubintest.make_msg("autologout"))
    c = RawPOP3(inst)
    c.login()
    c.ok("DELE 1")
    st = c.status()   # the server's goodbye after the idle time
    assert st.startswith("-ERR"), st
    assert c.is_closed()
    c.close()
    assert len(inst.mail_list(USER)) == 1
