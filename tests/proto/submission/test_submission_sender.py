"""What an authenticated user may send (RFC 6409): the envelope sender and
every From: address must be the user's own (address, alias of theirs,
user+tag, a send-as address); Message-ID: and Date: are added when
missing (RFC 6409 8.2, 8.3); mail to anywhere is relayed; the Received:
field says ESMTPA / ESMTPSA (RFC 3848)."""

import email.utils
import re
import time

import pytest

import yubintest
from yubintest import unique, split_stored
from subtest import SHIRO, KURO, plain_session, starttls_session, tls_session, login, \
    submit, msg_from

HITSUJI = "hitsuji@example.com"


def authed(server, user=SHIRO, connect=plain_session):
    return login(connect(server), user)


def mail_from(server, sender, user=SHIRO):
    r = authed(server, user)
    rep = r.cmd("MAIL FROM:<%s>" % sender)
    r.close()
    return rep


def header_block(stored):
    """The message's own header (after the trace fields), unfolded lines."""
    _trace, rest = split_stored(stored)
    head = rest.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    return re.sub(r"\r\n[ \t]+", " ", head).split("\r\n")


def fields(stored, name):
    prefix = name.lower() + ":"
    return [l.split(":", 1)[1].strip() for l in header_block(stored)
            if l.lower().startswith(prefix)]


def delivered(server, rcpt, subject):
    return server.find_mail(rcpt, subject)


# ---- the envelope sender ----

@pytest.mark.parametrize("sender", [
    SHIRO,
    "shiroyagi@EXAMPLE.COM",          # domains are case-insensitive
    "shiro@example.com",              # an alias that delivers to shiroyagi
    "shiroyagi+news@example.com",     # subaddress
    "",                               # the null sender
], ids=["own", "domain-case", "alias", "plus-tag", "null"])
def test_mail_from_allowed(server, sender):
    rep = mail_from(server, sender)
    assert (rep.code, rep.enh) == (250, "2.1.0"), rep


@pytest.mark.parametrize("sender", [
    KURO,                             # another user
    "boss@example.com",               # an alias of another user
    "kuroyagi+x@example.com",         # another user's subaddress
    "team@catchall.example",          # caught by a catch-all of kuroyagi
    "someone@remote.example",         # a foreign address
    "shiroyagi@remote.example",       # own local part, foreign domain
    "shiroyagi@example.com.evil.example",
    "xshiroyagi@example.com",
], ids=["other-user", "other-alias", "other-plus", "catchall", "foreign",
        "own-localpart-other-domain", "suffix-domain", "prefix-localpart"])
def test_mail_from_refused(server, sender):
    rep = mail_from(server, sender)
    assert (rep.code, rep.enh) == (553, "5.7.1"), rep


def test_implicit_postmaster_route_is_not_send_as(server):
    """Nobody set up postmaster@example.com; the server delivers it to the
    domain's first account (shiroyagi) so that postmaster works (RFC 5321
    4.5.1). That fallback is no alias the administrator made, so, like a
    catch-all, it gives no right to send as postmaster."""
    for user in (SHIRO, KURO):
        rep = mail_from(server, "postmaster@example.com", user=user)
        assert (rep.code, rep.enh) == (553, "5.7.1"), (user, rep)


def test_catchall_owner_cannot_send_as_anything(server):
    # kuroyagi receives all of @catchall.example, yet may not send as it.
    for sender in ("anything@catchall.example", "owner@catchall.example"):
        rep = mail_from(server, sender, user=KURO)
        assert (rep.code, rep.enh) == (553, "5.7.1"), (sender, rep)
    assert mail_from(server, KURO, user=KURO).code == 250


def test_session_goes_on_after_refused_sender(server):
    subject = unique("after553")
    r = authed(server)
    assert r.cmd("MAIL FROM:<%s>" % KURO).code == 553
    rep = r.cmd("RCPT TO:<%s>" % KURO)
    assert rep.code == 503, rep          # no transaction was opened
    rep = submit(r, SHIRO, [KURO], msg_from(subject, SHIRO, to=KURO))
    assert rep.code == 250, rep
    r.close()
    assert len(delivered(server, KURO, subject)) == 1


def test_sendas(server):
    """user sendas add|list|del, taking effect on the running server."""
    user = "sender@example.com"
    extra = "press@other.example"
    server.add_user(user)
    rc, out, err = server.cli("user", "sendas", "add", user, extra)
    if rc != 0 and "usage" in (out + err).lower():
        pytest.fail("`yubin user sendas` is missing: %s" % err)
    assert rc == 0, (rc, out, err)
    assert extra in server.cli_ok("user", "sendas", "list", user).split()
    assert mail_from(server, extra, user=user).code == 250
    # Only for that user.
    assert mail_from(server, extra, user=SHIRO).code == 553

    subject = unique("sendas")
    r = authed(server, user)
    rep = submit(r, extra, [KURO], msg_from(subject, "Press <%s>" % extra, to=KURO))
    assert rep.code == 250, rep
    r.close()
    assert len(delivered(server, KURO, subject)) == 1

    server.cli_ok("user", "sendas", "del", user, extra)
    assert extra not in server.cli_ok("user", "sendas", "list", user).split()
    rep = mail_from(server, extra, user=user)
    assert (rep.code, rep.enh) == (553, "5.7.1"), rep


def test_sendas_unknown_user(server):
    rc, out, err = server.cli("user", "sendas", "add", "nobody-here@example.com",
                              "x@other.example")
    assert rc != 0, (out, err)


# ---- the From: field ----

@pytest.mark.parametrize("from_header", [
    SHIRO,
    "Shiro Yagi <shiroyagi@example.com>",
    '"boss@example.com" <shiroyagi@example.com>',   # a name that looks like an address
    '"kuroyagi@example.com" <shiroyagi@example.com>',
    "shiroyagi@example.com (kuroyagi@example.com)",  # a comment
    "Shiro <shiro@example.com>",                     # own alias
    "shiroyagi+x@example.com",
    "shiroyagi@example.com, Shiro <shiro@example.com>",  # two, both owned
    "=?UTF-8?B?55m95bGx576K?= <shiroyagi@example.com>",
    "Shiro\r\n <shiroyagi@example.com>",              # folded
], ids=["bare", "name", "name-like-address", "name-like-other-user", "comment",
        "alias", "plus", "two-owned", "encoded-word", "folded"])
def test_from_allowed(server, from_header):
    subject = unique("fromok")
    r = authed(server)
    rep = submit(r, SHIRO, [KURO], msg_from(subject, from_header, to=KURO))
    assert rep.code == 250, rep
    r.close()
    assert len(delivered(server, KURO, subject)) == 1


@pytest.mark.parametrize("from_header", [
    KURO,
    "Shiro Yagi <kuroyagi@example.com>",
    '"shiroyagi@example.com" <kuroyagi@example.com>',
    "kuroyagi@example.com (shiroyagi@example.com)",
    "shiroyagi@example.com, kuroyagi@example.com",    # one of two is not ours
    "Boss <boss@example.com>",
    "anyone@catchall.example",
    "Shiro\r\n <kuroyagi@example.com>",                # folded
], ids=["other-user", "name", "name-like-own", "comment-like-own", "second-foreign",
        "other-alias", "catchall", "folded"])
@pytest.mark.parametrize("bdat", [False, True], ids=["data", "bdat"])
def test_from_refused(server, from_header, bdat):
    subject = unique("fromspoof")
    r = authed(server)
    rep = submit(r, SHIRO, [KURO], msg_from(subject, from_header, to=KURO), bdat=bdat)
    assert (rep.code, rep.enh) == (553, "5.7.1"), rep
    # Refused means not delivered, and the session goes on.
    assert r.cmd("NOOP").code == 250
    r.close()
    assert delivered(server, KURO, subject) == []


@pytest.mark.parametrize("from_header", [
    "Team: shiroyagi@example.com, kuroyagi@example.com;",   # a group (not for From:)
    "<kuroyagi@example.com",                                # broken
    "kuroyagi@example.com <shiroyagi@example.com",
    "",
], ids=["group", "unclosed", "unclosed-own", "empty"])
def test_odd_from_refused(server, from_header):
    # Whatever the reason given (553 not ours, 550 unreadable), a From:
    # that names somebody else or cannot be read is not delivered.
    subject = unique("oddfrom")
    r = authed(server)
    rep = submit(r, SHIRO, [KURO], msg_from(subject, from_header, to=KURO))
    assert rep.code in (550, 553), rep
    r.close()
    assert delivered(server, KURO, subject) == []


def test_second_from_field_refused(server):
    # RFC 5322 3.6: one From: field. A second one naming somebody else is
    # spoofing all the same (some readers show the last one).
    subject = unique("twofrom")
    r = authed(server)
    msg = msg_from(subject, SHIRO, to=KURO, extra_headers=["From: %s" % KURO])
    rep = submit(r, SHIRO, [KURO], msg)
    assert 500 <= rep.code < 600, rep
    r.close()
    assert delivered(server, KURO, subject) == []


def test_from_checked_even_with_null_sender(server):
    subject = unique("nullspoof")
    r = authed(server)
    rep = submit(r, "", [KURO], msg_from(subject, KURO, to=KURO))
    assert (rep.code, rep.enh) == (553, "5.7.1"), rep
    subject = unique("nullok")
    rep = submit(r, "", [KURO], msg_from(subject, SHIRO, to=KURO))
    assert rep.code == 250, rep
    r.close()
    (row, stored), = delivered(server, KURO, subject)
    assert split_stored(stored)[0][0] == b"Return-Path: <>"


def test_from_checked_on_465(server):
    subject = unique("tlsspoof")
    r = authed(server, connect=tls_session)
    rep = submit(r, SHIRO, [KURO], msg_from(subject, KURO, to=KURO))
    assert (rep.code, rep.enh) == (553, "5.7.1"), rep
    r.close()
    assert delivered(server, KURO, subject) == []


@pytest.mark.parametrize("bdat", [False, True], ids=["data", "bdat"])
def test_message_without_from(server, bdat):
    subject = unique("nofrom")
    r = authed(server)
    # A From: line in the body is not a From: field.
    msg = msg_from(subject, None, to=KURO, body="From: %s\r\nHello.\r\n" % SHIRO)
    rep = submit(r, SHIRO, [KURO], msg, bdat=bdat)
    assert (rep.code, rep.enh) == (550, "5.6.0"), rep
    r.close()
    assert delivered(server, KURO, subject) == []


def test_from_after_the_header_limit(server):
    # More header than the server keeps before checking (300 KB), the
    # From: field at its end: refused all the same.
    subject = unique("hugehead")
    filler = ["X-Filler-%d: %s" % (i, "y" * 990) for i in range(300)]
    r = authed(server)
    head = ["Subject: %s" % subject, "To: %s" % KURO] + filler + ["From: %s" % KURO]
    rep = submit(r, SHIRO, [KURO], ("\r\n".join(head) + "\r\n\r\nbody\r\n").encode())
    assert rep.code in (550, 553), rep
    r.close()
    assert delivered(server, KURO, subject) == []


def test_message_without_header(server):
    r = authed(server)
    rep = submit(r, SHIRO, [KURO], b"\r\nonly a body\r\n")
    assert (rep.code, rep.enh) == (550, "5.6.0"), rep
    r.close()


def test_from_in_a_large_header(server):
    # The From: field comes after 200 KB of other fields.
    subject = unique("bighead")
    filler = ["X-Filler-%d: %s" % (i, "y" * 990) for i in range(200)]
    r = authed(server)
    head = ["Subject: %s" % subject, "To: %s" % KURO] + filler + ["From: %s" % KURO]
    msg = ("\r\n".join(head) + "\r\n\r\nbody\r\n").encode()
    rep = submit(r, SHIRO, [KURO], msg)
    assert (rep.code, rep.enh) == (553, "5.7.1"), rep
    r.close()
    assert delivered(server, KURO, subject) == []


# ---- Message-ID: and Date: ----

def submit_and_fetch(server, subject, msg, rcpt=KURO):
    r = authed(server)
    rep = submit(r, SHIRO, [rcpt], msg)
    assert rep.code == 250, rep
    r.close()
    (row, stored), = delivered(server, rcpt, subject)
    return stored


def test_message_id_and_date_added(server):
    subject = unique("nomid")
    before = time.time()
    msg = msg_from(subject, SHIRO, to=KURO, date=False, message_id=False)
    stored = submit_and_fetch(server, subject, msg)
    mids = fields(stored, "Message-ID")
    dates = fields(stored, "Date")
    assert len(mids) == 1 and len(dates) == 1, header_block(stored)
    # RFC 5322 3.6.4: msg-id = "<" id-left "@" id-right ">"
    assert re.match(r"^<[^<>@\s]+@[^<>@\s]+>$", mids[0]), mids
    when = email.utils.parsedate_to_datetime(dates[0])
    assert when.tzinfo is not None, dates
    assert abs(when.timestamp() - before) < 86400, dates
    # The original fields are all still there, in order, after the new ones.
    _trace, rest = split_stored(stored)
    assert rest.endswith(msg), rest


def test_two_messages_get_different_message_ids(server):
    mids = []
    for _ in range(2):
        subject = unique("mid2")
        stored = submit_and_fetch(
            server, subject, msg_from(subject, SHIRO, to=KURO, message_id=False))
        mids += fields(stored, "Message-ID")
    assert len(mids) == 2 and mids[0] != mids[1], mids


def test_existing_message_id_and_date_kept(server):
    subject = unique("hasmid")
    msg = msg_from(subject, SHIRO, to=KURO)
    stored = submit_and_fetch(server, subject, msg)
    _trace, rest = split_stored(stored)
    assert rest == msg


def test_lowercase_field_names_count(server):
    subject = unique("lcmid")
    msg = ("from: %s\r\nto: %s\r\nsubject: %s\r\nmessage-id: <lc.%s@client.example>\r\n"
           "DATE: Sun, 22 Nov 2026 07:38:12 +0000\r\n\r\nbody\r\n"
           % (SHIRO, KURO, subject, subject)).encode()
    stored = submit_and_fetch(server, subject, msg)
    _trace, rest = split_stored(stored)
    assert rest == msg


def test_only_date_added(server):
    subject = unique("nodate")
    msg = msg_from(subject, SHIRO, to=KURO, date=False)
    stored = submit_and_fetch(server, subject, msg)
    assert len(fields(stored, "Date")) == 1
    mids = fields(stored, "Message-ID")
    assert len(mids) == 1 and mids[0].startswith("<mid-"), mids


def test_date_in_body_does_not_count(server):
    subject = unique("bodydate")
    msg = msg_from(subject, SHIRO, to=KURO, date=False, message_id=False,
                   body="Date: yesterday\r\nMessage-ID: <fake@body>\r\n")
    stored = submit_and_fetch(server, subject, msg)
    assert len(fields(stored, "Date")) == 1
    assert fields(stored, "Message-ID") != ["<fake@body>"]


# ---- relay ----

def queue_rows(server):
    lines = server.cli_ok("queue", "list").splitlines()
    assert lines and lines[0].split("\t")[:5] == \
        ["QUEUE-ID", "CREATED", "ATTEMPTS", "SENDER", "RECIPIENT"], lines[:1]
    return [l.split("\t") for l in lines[1:] if l.strip()]


@pytest.mark.parametrize("connect", [plain_session, starttls_session, tls_session],
                         ids=["587", "587-starttls", "465"])
def test_relay_to_remote_and_local(server, connect):
    subject = unique("relay")
    remote = "%s@remote.example" % unique("someone")
    r = authed(server, connect=connect)
    assert r.cmd("MAIL FROM:<%s>" % SHIRO).code == 250
    for rcpt in (remote, KURO):
        rep = r.cmd("RCPT TO:<%s>" % rcpt)
        assert rep.code == 250, (rcpt, rep)
    assert r.cmd("DATA").code == 354
    r.send(yubintest.dot_stuff(msg_from(subject, SHIRO, to=remote)))
    rep = r.reply()
    assert rep.code == 250, rep
    r.close()
    # Local: in the INBOX at once. Remote: waiting in the queue.
    assert len(delivered(server, KURO, subject)) == 1
    rows = [row for row in queue_rows(server) if row[4] == remote]
    assert len(rows) == 1, rows
    assert rows[0][3] == SHIRO, rows
    assert not any(row[4] == KURO for row in queue_rows(server))


def test_relay_many_remote_domains(server):
    remotes = ["%s@%s" % (unique("r"), d)
               for d in ("one.example", "two.example", "xn--bcher-kva.example")]
    r = authed(server)
    rep = submit(r, SHIRO, remotes, msg_from(unique("many"), SHIRO, to=remotes[0]))
    assert rep.code == 250, rep
    r.close()
    queued = {row[4] for row in queue_rows(server)}
    assert set(remotes) <= queued, queued


def test_unauthenticated_port_25_still_no_relay(server):
    r = server.session()
    assert r.cmd("MAIL FROM:<%s>" % SHIRO).code == 250
    rep = r.cmd("RCPT TO:<someone@remote.example>")
    assert 500 <= rep.code < 600, rep
    r.close()


# ---- Received: ----

@pytest.mark.parametrize("connect,proto", [
    (plain_session, "ESMTPA"),
    (starttls_session, "ESMTPSA"),
    (tls_session, "ESMTPSA"),
], ids=["587", "587-starttls", "465"])
def test_received_protocol(server, connect, proto):
    subject = unique("rcvd")
    r = authed(server, connect=connect)
    rep = submit(r, SHIRO, [KURO], msg_from(subject, SHIRO, to=KURO))
    assert rep.code == 250, rep
    r.close()
    (row, stored), = delivered(server, KURO, subject)
    trace, _rest = split_stored(stored)
    received = [f.decode() for f in trace if f.lower().startswith(b"received:")]
    assert len(received) == 1, trace
    assert re.search(r"\bwith %s\b" % proto, received[0]), received[0]


def test_received_on_port_25_not_authenticated(server):
    subject = unique("rcvd25")
    r = server.session()
    rep = yubintest.send_data(r, "x@remote.example", [KURO], msg_from(subject, "x@remote.example", to=KURO))
    assert rep.code == 250, rep
    r.close()
    (row, stored), = delivered(server, KURO, subject)
    received = split_stored(stored)[0][2].decode()
    assert not re.search(r"\bwith ESMTPS?A\b", received), received
