"""SASL AUTH on the submission ports (RFC 4954): PLAIN (RFC 4616), LOGIN,
SCRAM-SHA-256 (RFC 5802, RFC 7677) with our own client, and the errors
and session rules around them. Policy here: plaintext_auth = loopback
(the default), so AUTH works on plain 587 from 127.0.0.1."""

import pytest

import yubintest
from yubintest import PASSWORD, b64, unb64, sasl_plain, unique, make_msg, ScramSha256
from subtest import SHIRO, KURO, LEGACY, LEGACY_PASSWORD, EQ_USER, \
    plain_session, starttls_session, tls_session, ehlo_keywords, auth_plain, \
    login, scram_auth

MECHS = {"PLAIN", "LOGIN", "SCRAM-SHA-256"}
SUBMISSION_KEYWORDS = ("PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES",
                       "SMTPUTF8", "CHUNKING")
NOBODY = "nobody-here@example.com"


def assert_not_authenticated(r):
    """MAIL on submission needs AUTH first (530 5.7.0)."""
    rep = r.cmd("MAIL FROM:<%s>" % SHIRO)
    assert (rep.code, rep.enh) == (530, "5.7.0"), rep


def assert_authenticated(r, sender=SHIRO):
    rep = r.cmd("MAIL FROM:<%s>" % sender)
    assert rep.code == 250, rep
    assert r.cmd("RSET").code == 250


# ---- EHLO ----

def test_ehlo_587_before_tls(server):
    r = plain_session(server)
    kw = ehlo_keywords(r.cmd("EHLO client.test.example"))
    assert set(kw["AUTH"]) == MECHS, kw
    assert "STARTTLS" in kw, kw
    for k in SUBMISSION_KEYWORDS:
        assert k in kw, (k, kw)
    # No channel binding, so no -PLUS variant (RFC 5802 4).
    assert not any(m.endswith("-PLUS") for m in kw["AUTH"]), kw
    r.close()


def test_ehlo_587_after_starttls(server):
    r = starttls_session(server)
    kw = ehlo_keywords(r.cmd("EHLO client.test.example"))
    assert set(kw["AUTH"]) == MECHS, kw
    assert "STARTTLS" not in kw, kw
    for k in SUBMISSION_KEYWORDS:
        assert k in kw, (k, kw)
    r.close()


def test_ehlo_465(server):
    r = tls_session(server)
    kw = ehlo_keywords(r.cmd("EHLO client.test.example"))
    assert set(kw["AUTH"]) == MECHS, kw
    assert "STARTTLS" not in kw, kw
    for k in SUBMISSION_KEYWORDS:
        assert k in kw, (k, kw)
    r.close()


def test_port_25_has_no_auth(server):
    r = server.session()
    kw = ehlo_keywords(r.cmd("EHLO client.test.example"))
    assert "AUTH" not in kw, kw
    rep = auth_plain(r, SHIRO)
    assert rep.code == 503, rep
    # Still an ordinary port-25 session: no relaying for us.
    assert r.cmd("MAIL FROM:<%s>" % SHIRO).code == 250
    rep = r.cmd("RCPT TO:<someone@remote.example>")
    assert 500 <= rep.code < 600, rep
    r.close()


def test_port_25_has_no_auth_after_starttls(server):
    r = server.session()
    assert r.cmd("STARTTLS").code == 220
    r.starttls()
    kw = ehlo_keywords(r.cmd("EHLO client.test.example"))
    assert "AUTH" not in kw, kw
    assert auth_plain(r, SHIRO).code == 503
    r.close()


def test_mail_before_auth(server):
    for r in (plain_session(server), starttls_session(server), tls_session(server)):
        assert_not_authenticated(r)
        rep = r.cmd("MAIL FROM:<>")
        assert (rep.code, rep.enh) == (530, "5.7.0"), rep
        assert r.cmd("NOOP").code == 250
        r.close()


# ---- PLAIN ----

@pytest.mark.parametrize("connect", [plain_session, starttls_session, tls_session],
                         ids=["587", "587-starttls", "465"])
def test_plain_initial_response(server, connect):
    r = connect(server)
    rep = auth_plain(r, SHIRO)
    assert (rep.code, rep.enh) == (235, "2.7.0"), rep
    assert_authenticated(r)
    r.close()


def test_plain_without_initial_response(server):
    r = plain_session(server)
    rep = r.cmd("AUTH PLAIN")
    # RFC 4954 4: an empty challenge is "334 " (nothing after the space).
    assert (rep.code, rep.lines) == (334, [""]), rep
    rep = r.cmd(sasl_plain(SHIRO, PASSWORD))
    assert (rep.code, rep.enh) == (235, "2.7.0"), rep
    assert_authenticated(r)
    r.close()


def test_plain_authzid_same_as_user(server):
    r = plain_session(server)
    rep = r.cmd("AUTH PLAIN " + sasl_plain(SHIRO, PASSWORD, authzid=SHIRO))
    assert (rep.code, rep.enh) == (235, "2.7.0"), rep
    r.close()


def test_plain_authzid_of_another_user_refused(server):
    # Right password for shiroyagi, asking to act as kuroyagi.
    r = plain_session(server)
    rep = r.cmd("AUTH PLAIN " + sasl_plain(SHIRO, PASSWORD, authzid=KURO))
    assert 500 <= rep.code < 600, rep
    rep = r.cmd("MAIL FROM:<%s>" % KURO)
    assert rep.code == 530, rep
    r.close()


def test_plain_empty_initial_response(server):
    # "=" is an empty response (RFC 4954 4), not "no initial response":
    # no challenge may follow, and an empty PLAIN message is no login.
    r = plain_session(server)
    rep = r.cmd("AUTH PLAIN =")
    assert rep.code != 334 and 500 <= rep.code < 600, rep
    assert_not_authenticated(r)
    assert (auth_plain(r, SHIRO).code) == 235
    r.close()


@pytest.mark.parametrize("message", [
    b"",
    ("%s\0%s" % (SHIRO, PASSWORD)).encode(),            # one NUL only
    ("\0%s\0" % SHIRO).encode(),                         # empty password
    ("\0\0%s" % PASSWORD).encode(),                      # empty user
    ("\0%s\0%s\0" % (SHIRO, PASSWORD)).encode(),         # a third NUL
    ("\0%s\0%s" % (SHIRO, PASSWORD)).encode() + b"\0x",  # NUL inside the password
], ids=["empty", "one-nul", "no-password", "no-user", "three-nuls", "nul-in-password"])
def test_plain_malformed_message(server, message):
    r = plain_session(server)
    rep = r.cmd("AUTH PLAIN")
    assert rep.code == 334, rep
    rep = r.cmd(b64(message) if message else "")
    assert rep.code in (501, 535), rep
    assert_not_authenticated(r)
    r.close()


def test_plain_wrong_password(server):
    r = plain_session(server)
    rep = auth_plain(r, SHIRO, "wrong " + PASSWORD)
    assert (rep.code, rep.enh) == (535, "5.7.8"), rep
    assert_not_authenticated(r)
    # A failed AUTH may be followed by another one (RFC 4954 4).
    assert auth_plain(r, SHIRO).code == 235
    r.close()


def test_plain_password_is_case_sensitive(server):
    r = plain_session(server)
    rep = auth_plain(r, SHIRO, PASSWORD.upper())
    assert (rep.code, rep.enh) == (535, "5.7.8"), rep
    r.close()


def test_unknown_user_same_answer_as_wrong_password(server):
    r = plain_session(server)
    wrong = auth_plain(r, SHIRO, "not the password")
    unknown = auth_plain(r, NOBODY, "not the password")
    unknown_domain = auth_plain(r, "shiroyagi@unknown.example", PASSWORD)
    assert (wrong.code, wrong.enh) == (535, "5.7.8"), wrong
    assert unknown.lines == wrong.lines, (unknown, wrong)
    assert unknown_domain.lines == wrong.lines, (unknown_domain, wrong)
    # An alias is not an account to log in to.
    alias = auth_plain(r, "shiro@example.com", PASSWORD)
    assert alias.lines == wrong.lines, alias
    assert_not_authenticated(r)
    r.close()


def test_plain_user_domain_case_insensitive(server):
    r = plain_session(server)
    rep = auth_plain(r, "shiroyagi@EXAMPLE.COM")
    assert rep.code == 235, rep
    assert_authenticated(r)
    r.close()


@pytest.mark.parametrize("initial", ["%%%%", "AGEAYg=x", "A", "AGE AYg=="],
                         ids=["bad-chars", "bad-padding", "truncated", "space"])
def test_bad_base64_initial_response(server, initial):
    r = plain_session(server)
    rep = r.cmd("AUTH PLAIN " + initial)
    assert rep.code == 501, rep
    assert_not_authenticated(r)
    assert auth_plain(r, SHIRO).code == 235
    r.close()


def test_bad_base64_response(server):
    r = plain_session(server)
    assert r.cmd("AUTH PLAIN").code == 334
    rep = r.cmd("%%%% not base64")
    assert rep.code == 501, rep
    # The exchange is over: the next line is a command again.
    assert r.cmd("NOOP").code == 250
    assert_not_authenticated(r)
    r.close()


def test_cancel_plain(server):
    r = plain_session(server)
    assert r.cmd("AUTH PLAIN").code == 334
    rep = r.cmd("*")
    assert (rep.code, rep.enh) == (501, "5.7.0"), rep
    assert_not_authenticated(r)
    assert auth_plain(r, SHIRO).code == 235
    r.close()


# ---- LOGIN ----

def test_login_mechanism(server):
    r = starttls_session(server)
    rep = r.cmd("AUTH LOGIN")
    assert (rep.code, rep.lines) == (334, ["VXNlcm5hbWU6"]), rep
    assert unb64(rep.lines[0]) == b"Username:"
    rep = r.cmd(b64(SHIRO))
    assert (rep.code, rep.lines) == (334, ["UGFzc3dvcmQ6"]), rep
    assert unb64(rep.lines[0]) == b"Password:"
    rep = r.cmd(b64(PASSWORD))
    assert (rep.code, rep.enh) == (235, "2.7.0"), rep
    assert_authenticated(r)
    r.close()


def test_login_wrong_password(server):
    r = plain_session(server)
    assert r.cmd("AUTH LOGIN").code == 334
    assert r.cmd(b64(SHIRO)).code == 334
    rep = r.cmd(b64("nope"))
    assert (rep.code, rep.enh) == (535, "5.7.8"), rep
    assert_not_authenticated(r)
    r.close()


@pytest.mark.parametrize("step", [0, 1])
def test_cancel_login(server, step):
    r = plain_session(server)
    assert r.cmd("AUTH LOGIN").code == 334
    if step == 1:
        assert r.cmd(b64(SHIRO)).code == 334
    rep = r.cmd("*")
    assert (rep.code, rep.enh) == (501, "5.7.0"), rep
    assert_not_authenticated(r)
    r.close()


# ---- SCRAM-SHA-256 ----

@pytest.mark.parametrize("initial", [True, False], ids=["initial", "no-initial"])
@pytest.mark.parametrize("connect", [plain_session, starttls_session, tls_session],
                         ids=["587", "587-starttls", "465"])
def test_scram(server, connect, initial):
    r = connect(server)
    rep, _c, server_final = scram_auth(r, SHIRO, initial=initial)
    assert server_final is not None, "no server-final message (v=...)"
    assert (rep.code, rep.enh) == (235, "2.7.0"), rep
    assert_authenticated(r)
    r.close()


def scram_first(r, client, user_first=None):
    """Sends the client-first message; returns the parsed server-first."""
    rep = r.cmd("AUTH SCRAM-SHA-256 " + b64(user_first or client.client_first()))
    assert rep.code == 334, rep
    text = unb64(rep.lines[0]).decode()
    return text, ScramSha256.parse(text)


def test_scram_server_first_message(server):
    r = plain_session(server)
    c = ScramSha256(SHIRO, PASSWORD)
    text, attrs = scram_first(r, c)
    assert list(attrs) == ["r", "s", "i"], text
    assert attrs["r"].startswith(c.nonce) and len(attrs["r"]) > len(c.nonce) + 8, text
    assert all(0x21 <= ord(ch) <= 0x7e and ch != "," for ch in attrs["r"]), text
    assert len(unb64(attrs["s"])) >= 8, text
    assert attrs["i"] == "4096", text
    # A second exchange gets a fresh server nonce and the same salt.
    r2 = plain_session(server)
    c2 = ScramSha256(SHIRO, PASSWORD, nonce=c.nonce)
    text2, attrs2 = scram_first(r2, c2)
    assert attrs2["r"] != attrs["r"], (text, text2)
    assert attrs2["s"] == attrs["s"], (text, text2)
    r.close()
    r2.close()


def test_scram_escaped_username(server):
    # "eq=user@example.com" travels as n=eq=3Duser@example.com.
    r = plain_session(server)
    assert b"n=eq=3Duser@example.com," in ScramSha256(EQ_USER, PASSWORD).client_first()
    rep, _c, _sf = scram_auth(r, EQ_USER)
    assert rep.code == 235, rep
    assert_authenticated(r, EQ_USER)
    r.close()


def test_scram_wrong_password(server):
    r = plain_session(server)
    rep, _c, server_final = scram_auth(r, SHIRO, "wrong password")
    assert server_final is None, "server proved itself to a wrong password"
    assert (rep.code, rep.enh) == (535, "5.7.8"), rep
    assert_not_authenticated(r)
    r.close()


def test_scram_tampered_proof(server):
    r = plain_session(server)
    c = ScramSha256(SHIRO, PASSWORD)
    text, _attrs = scram_first(r, c)
    rep = r.cmd(b64(c.client_final(text, proof_tamper=True)))
    assert (rep.code, rep.enh) == (535, "5.7.8"), rep
    assert_not_authenticated(r)
    r.close()


def test_scram_unknown_user_looks_like_a_known_one(server):
    """No user enumeration: an unknown name gets a server-first message of
    the same shape, with a salt that stays the same between attempts, and
    the same final answer as a wrong password."""
    def first(user):
        r = plain_session(server)
        c = ScramSha256(user, "some password")
        text, attrs = scram_first(r, c)
        rep = r.cmd(b64(c.client_final(text)))
        r.close()
        return attrs, rep

    known, known_rep = first(SHIRO)
    unknown, unknown_rep = first(NOBODY)
    unknown_again, _ = first(NOBODY)
    assert list(unknown) == ["r", "s", "i"], unknown
    assert unknown["i"] == known["i"], (unknown, known)
    assert len(unb64(unknown["s"])) == len(unb64(known["s"])), (unknown, known)
    assert unknown_again["s"] == unknown["s"], "salt of an unknown user changes"
    assert unknown["s"] != known["s"]
    assert (unknown_rep.code, unknown_rep.enh) == (535, "5.7.8"), unknown_rep
    assert unknown_rep.lines == known_rep.lines, (unknown_rep, known_rep)


def test_scram_wrong_nonce(server):
    r = plain_session(server)
    c = ScramSha256(SHIRO, PASSWORD)
    text, attrs = scram_first(r, c)
    rep = r.cmd(b64(c.client_final(text, nonce=c.nonce + "forged")))
    assert 500 <= rep.code < 600, rep
    assert_not_authenticated(r)
    r.close()


def test_scram_wrong_channel_binding_data(server):
    # c= must be the base64 of the GS2 header the client sent ("n,,").
    r = plain_session(server)
    c = ScramSha256(SHIRO, PASSWORD)
    text, _attrs = scram_first(r, c)
    rep = r.cmd(b64(c.client_final(text, channel_binding=b64("y,,"))))
    assert 500 <= rep.code < 600, rep
    assert_not_authenticated(r)
    r.close()


def test_scram_channel_binding_refused(server):
    # "p=": the client requires channel binding, which the server does not
    # offer (no SCRAM-SHA-256-PLUS): RFC 5802 6 says fail.
    r = plain_session(server)
    c = ScramSha256(SHIRO, PASSWORD, gs2_header="p=tls-unique,,")
    rep = r.cmd("AUTH SCRAM-SHA-256 " + b64(c.client_first()))
    if rep.code == 334:
        text = unb64(rep.lines[0]).decode()
        rep = r.cmd(b64(c.client_final(text, channel_binding=b64(
            b"p=tls-unique,," + b"\x00" * 32))))
    assert 500 <= rep.code < 600, rep
    assert_not_authenticated(r)
    r.close()


def test_scram_y_flag_accepted(server):
    # "y": the client could bind but thinks the server cannot; the server
    # does not offer -PLUS, so this is fine (RFC 5802 6).
    r = plain_session(server)
    c = ScramSha256(SHIRO, PASSWORD, gs2_header="y,,")
    text, _attrs = scram_first(r, c)
    rep = r.cmd(b64(c.client_final(text)))
    assert rep.code == 334, rep
    assert c.check_server_final(unb64(rep.lines[0]))
    rep = r.cmd("")
    assert rep.code == 235, rep
    r.close()


def test_scram_authzid_of_another_user_refused(server):
    r = plain_session(server)
    c = ScramSha256(SHIRO, PASSWORD, gs2_header="n,a=%s," % KURO)
    rep = r.cmd("AUTH SCRAM-SHA-256 " + b64(c.client_first()))
    if rep.code == 334:
        rep = r.cmd(b64(c.client_final(unb64(rep.lines[0]).decode())))
        if rep.code == 334:
            rep = r.cmd("")
    assert 500 <= rep.code < 600, rep
    rep = r.cmd("MAIL FROM:<%s>" % KURO)
    assert rep.code == 530, rep
    r.close()


@pytest.mark.parametrize("first", [
    b"garbage",
    b"n,,r=abc",                       # no n=
    b"n,,n=shiroyagi@example.com",     # no r=
    b"x,,n=shiroyagi@example.com,r=abc",
    b"n,,m=ext,n=shiroyagi@example.com,r=abc",   # mandatory extension
    b"n,,n=bad=2Xescape@example.com,r=abc",
], ids=["garbage", "no-user", "no-nonce", "bad-flag", "m-extension", "bad-escape"])
def test_scram_malformed_client_first(server, first):
    r = plain_session(server)
    rep = r.cmd("AUTH SCRAM-SHA-256 " + b64(first))
    assert 500 <= rep.code < 600, rep
    assert_not_authenticated(r)
    assert r.cmd("NOOP").code == 250
    r.close()


def test_scram_cancel(server):
    r = plain_session(server)
    c = ScramSha256(SHIRO, PASSWORD)
    scram_first(r, c)
    rep = r.cmd("*")
    assert (rep.code, rep.enh) == (501, "5.7.0"), rep
    assert_not_authenticated(r)
    r.close()


def test_scram_cancel_instead_of_last_empty_line(server):
    r = plain_session(server)
    c = ScramSha256(SHIRO, PASSWORD)
    text, _ = scram_first(r, c)
    rep = r.cmd(b64(c.client_final(text)))
    assert rep.code == 334, rep
    rep = r.cmd("*")
    assert (rep.code, rep.enh) == (501, "5.7.0"), rep
    assert_not_authenticated(r)
    r.close()


def test_scram_non_empty_last_response(server):
    r = plain_session(server)
    c = ScramSha256(SHIRO, PASSWORD)
    text, _ = scram_first(r, c)
    rep = r.cmd(b64(c.client_final(text)))
    assert rep.code == 334, rep
    rep = r.cmd(b64("something"))
    assert 500 <= rep.code < 600, rep
    assert_not_authenticated(r)
    r.close()


def test_legacy_hash_user(server):
    """A user imported with --hash has no SCRAM secrets: PLAIN and LOGIN
    work, SCRAM-SHA-256 cannot."""
    r = plain_session(server)
    rep, _c, server_final = scram_auth(r, LEGACY, LEGACY_PASSWORD)
    assert server_final is None
    assert (rep.code, rep.enh) == (535, "5.7.8"), rep
    assert_not_authenticated(r)
    rep = auth_plain(r, LEGACY, LEGACY_PASSWORD)
    assert rep.code == 235, rep
    assert_authenticated(r, LEGACY)
    r.close()


# ---- the AUTH command itself ----

@pytest.mark.parametrize("mech", ["CRAM-MD5", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1",
                                  "XOAUTH2", "GSSAPI"])
def test_unknown_mechanism(server, mech):
    r = plain_session(server)
    rep = r.cmd("AUTH " + mech)
    assert (rep.code, rep.enh) == (504, "5.5.4"), rep
    assert_not_authenticated(r)
    r.close()


def test_auth_without_mechanism(server):
    r = plain_session(server)
    rep = r.cmd("AUTH")
    # A syntax error (RFC 5321 4.2.2: 501); no exchange may start.
    assert rep.code in (501, 504), rep
    assert r.cmd("NOOP").code == 250
    r.close()


def test_auth_mechanism_name_case(server):
    # SMTP verbs are case-insensitive; mechanism names are matched the
    # same way by every common server, and clients do send "auth plain".
    r = plain_session(server)
    rep = r.cmd("auth plain " + sasl_plain(SHIRO, PASSWORD))
    assert rep.code == 235, rep
    r.close()


def test_auth_twice(server):
    r = plain_session(server)
    login(r)
    rep = auth_plain(r, SHIRO)
    assert rep.code == 503, rep
    rep = r.cmd("AUTH LOGIN")
    assert rep.code == 503, rep
    assert_authenticated(r)
    r.close()


def test_auth_twice_does_not_switch_user(server):
    r = plain_session(server)
    login(r, SHIRO)
    assert auth_plain(r, KURO).code == 503
    rep = r.cmd("MAIL FROM:<%s>" % KURO)
    assert rep.code == 553, rep
    r.close()


def test_auth_during_transaction(server):
    subject = unique("authtx")
    r = plain_session(server)
    login(r)
    assert r.cmd("MAIL FROM:<%s>" % SHIRO).code == 250
    assert r.cmd("RCPT TO:<%s>" % KURO).code == 250
    rep = auth_plain(r, SHIRO)
    assert rep.code == 503, rep
    # The transaction goes on.
    assert r.cmd("DATA").code == 354
    r.send(yubintest.dot_stuff(make_msg(subject, frm=SHIRO, to=KURO)))
    assert r.reply().code == 250
    r.close()
    assert len(server.find_mail(KURO, subject)) == 1


def test_failures_then_success_in_one_session(server):
    r = plain_session(server)
    for _ in range(3):
        assert auth_plain(r, SHIRO, "nope").code == 535
    assert auth_plain(r, SHIRO).code == 235
    r.close()


def test_rset_keeps_authentication(server):
    r = plain_session(server)
    login(r)
    assert r.cmd("RSET").code == 250
    assert_authenticated(r)
    r.close()


def test_starttls_forgets_authentication(server):
    # RFC 3207 4.2: everything learnt before TLS is discarded.
    r = plain_session(server)
    login(r)
    rep = r.cmd("STARTTLS")
    if rep.code != 220:
        # Refusing STARTTLS after AUTH is also safe.
        assert 400 <= rep.code < 600, rep
        r.close()
        return
    r.starttls()
    assert r.cmd("EHLO again.example").code == 250
    assert_not_authenticated(r)
    assert auth_plain(r, SHIRO).code == 235
    r.close()


def test_pipelined_auth_plain_then_transaction(server):
    # RFC 4954 4: AUTH PLAIN with an initial response may be pipelined
    # with what follows; nothing sent after it may be lost while the
    # password is checked.
    subject = unique("pipe")
    msg = make_msg(subject, frm=SHIRO, to=KURO)
    r = plain_session(server)
    r.send("AUTH PLAIN %s\r\nMAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
           % (sasl_plain(SHIRO, PASSWORD), SHIRO, KURO))
    codes = [rep.code for rep in r.replies(4)]
    assert codes == [235, 250, 250, 354], codes
    r.send(yubintest.dot_stuff(msg))
    assert r.reply().code == 250
    r.close()
    assert len(server.find_mail(KURO, subject)) == 1


def test_pipelined_failed_auth_then_mail(server):
    r = plain_session(server)
    r.send("AUTH PLAIN %s\r\nMAIL FROM:<%s>\r\n" % (sasl_plain(SHIRO, "nope"), SHIRO))
    first, second = r.replies(2)
    assert first.code == 535, first
    assert second.code == 530, second
    r.close()


# ---- accounts changed while the server runs ----

def test_passwd_changes_plain_and_scram(server):
    user = "changer@example.com"
    new = "a brand new password"
    server.add_user(user)
    r = plain_session(server)
    assert auth_plain(r, user).code == 235      # also fills the login cache
    r.close()
    server.cli_ok("user", "passwd", user, input=new + "\n")

    r = plain_session(server)
    rep = auth_plain(r, user, PASSWORD)
    assert (rep.code, rep.enh) == (535, "5.7.8"), "old password still works: %r" % rep
    assert auth_plain(r, user, new).code == 235
    r.close()
    r = plain_session(server)
    rep, _c, server_final = scram_auth(r, user, PASSWORD)
    assert server_final is None and rep.code == 535, rep
    rep, _c, server_final = scram_auth(r, user, new)
    assert server_final is not None and rep.code == 235, rep
    r.close()


def test_deleted_user_cannot_log_in(server):
    user = "leaving@example.com"
    server.add_user(user)
    r = plain_session(server)
    assert auth_plain(r, user).code == 235
    r.close()
    server.cli_ok("user", "del", user)
    r = plain_session(server)
    rep = auth_plain(r, user)
    assert (rep.code, rep.enh) == (535, "5.7.8"), rep
    rep, _c, server_final = scram_auth(r, user)
    assert server_final is None and rep.code == 535, rep
    r.close()


def test_secrets_not_logged(server):
    wrong = "wrong-" + unique("pw")
    r = plain_session(server)
    assert auth_plain(r, SHIRO, wrong).code == 535
    assert auth_plain(r, SHIRO).code == 235
    r.close()
    r = plain_session(server)
    assert r.cmd("AUTH LOGIN").code == 334
    assert r.cmd(b64(SHIRO)).code == 334
    assert r.cmd(b64(PASSWORD)).code == 235
    r.close()
    log = server.log_text()
    assert "event=auth " in log          # the log is there and has logins
    for secret in (PASSWORD, wrong, sasl_plain(SHIRO, PASSWORD),
                   sasl_plain(SHIRO, wrong), b64(PASSWORD)):
        assert secret not in log, "secret %r in the server log" % secret
