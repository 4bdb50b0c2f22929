"""SMTP smuggling (SEC Consult, 2023; CVE-2023-51764 class): only
CR LF . CR LF ends DATA (RFC 5321 4.1.1.4), so a message can never be
split into two by bare LF / bare CR tricks around a dot."""

import pytest

import yubintest
from yubintest import make_msg, dot_stuff, unique, send_data, split_stored

# Fake end-of-data sequences that lenient servers took for the real one.
VARIANTS = {
    "lf-dot-crlf": b"\n.\r\n",
    "cr-dot-crlf": b"\r.\r\n",
    "crlf-dot-lf": b"\r\n.\n",
    "lf-dot-lf": b"\n.\n",
    "crlf-dot-cr": b"\r\n.\r",
    "cr-dot-cr": b"\r.\r",
}


@pytest.fixture(scope="module")
def normalize_server(module_yubin_factory):
    return module_yubin_factory(overrides={"smtp": {"bare_lf": "normalize"}},
                                provision=yubintest.provision_standard)


def smuggle(srv, fake_end, subject, victim="kuroyagi@example.com"):
    """Sends one message with a fake end of data, a smuggled transaction
    after it, then the real end and QUIT. Returns every reply after 354."""
    r = srv.session()
    assert r.cmd("MAIL FROM:<sender@example.org>").code == 250
    assert r.cmd("RCPT TO:<shiroyagi@example.com>").code == 250
    assert r.cmd("DATA").code == 354
    payload = (("From: sender@example.org\r\nTo: shiroyagi@example.com\r\n"
                "Subject: %s\r\n\r\nfirst text" % subject).encode()
               + fake_end
               + b"MAIL FROM:<evil@example.org>\r\n"
               + b"RCPT TO:<" + victim.encode() + b">\r\n"
               + b"DATA\r\n"
               + ("From: ceo@example.com\r\nSubject: smuggled %s\r\n\r\n"
                  "smuggled\r\n" % subject).encode()
               + b".\r\n")
    # The genuine end, on a line of its own.
    if not payload.endswith(b"\r\n.\r\n"):
        payload += b"\r\n.\r\n"
    r.send(payload + b"QUIT\r\n")
    reps = r.all_replies_until_close(timeout=10)
    r.close()
    return reps


def assert_no_smuggled_message(srv, subject, victim):
    got = srv.mail_containing(victim, "smuggled %s" % subject)
    assert got == [], "smuggled message delivered to %s" % victim
    for rows in (srv.mail_list("shiroyagi@example.com"),):
        assert not any(x.subject == "smuggled %s" % subject for x in rows)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_smuggling_rejected_by_default(server, variant):
    subject = unique("smug-" + variant)
    reps = smuggle(server, VARIANTS[variant], subject)
    assert reps, "no reply after DATA"
    first = reps[0]
    assert first.code == 550 and first.enh and first.enh.startswith("5.6."), reps
    # Exactly: the end-of-data reply, then the QUIT reply. A 250 for the
    # smuggled MAIL (or a second 354) means the message was split.
    assert [x.code for x in reps] == [550, 221], reps
    assert not any(x.enh == "2.1.0" for x in reps)
    assert_no_smuggled_message(server, subject, "kuroyagi@example.com")
    assert server.find_mail("shiroyagi@example.com", subject) == []
    assert server.mail_containing("shiroyagi@example.com", subject) == []


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_smuggling_normalized_is_one_message(normalize_server, variant):
    srv = normalize_server
    subject = unique("smugn-" + variant)
    reps = smuggle(srv, VARIANTS[variant], subject)
    assert [x.code for x in reps] == [250, 221], reps
    assert reps[0].enh == "2.0.0"
    assert_no_smuggled_message(srv, subject, "kuroyagi@example.com")
    got = srv.find_mail("shiroyagi@example.com", subject)
    assert len(got) == 1, got
    stored = got[0][1]
    # The smuggled text is inside the one message ...
    assert b"smuggled" in stored
    assert b"MAIL FROM:<evil@example.org>" in stored
    # ... and every line end of the stored message is CR LF.
    assert b"\n" not in stored.replace(b"\r\n", b"")
    assert b"\r" not in stored.replace(b"\r\n", b"")


def test_bare_lf_rejected_by_default(server):
    subject = unique("barelf")
    r = server.session()
    assert r.cmd("MAIL FROM:<lf@example.org>").code == 250
    assert r.cmd("RCPT TO:<shiroyagi@example.com>").code == 250
    assert r.cmd("DATA").code == 354
    r.send(("Subject: %s\r\n\r\nunix\nline ends\n\r\n.\r\n" % subject).encode())
    rep = r.reply()
    assert rep.code == 550 and rep.enh and rep.enh.startswith("5.6."), rep
    # The session goes on.
    ok = unique("afterlf")
    assert send_data(r, "lf@example.org", ["shiroyagi@example.com"], make_msg(ok)).code == 250
    r.close()
    assert server.find_mail("shiroyagi@example.com", subject) == []
    assert len(server.find_mail("shiroyagi@example.com", ok)) == 1


def test_bare_cr_rejected_by_default(server):
    subject = unique("barecr")
    r = server.session()
    assert r.cmd("MAIL FROM:<cr@example.org>").code == 250
    assert r.cmd("RCPT TO:<shiroyagi@example.com>").code == 250
    assert r.cmd("DATA").code == 354
    r.send(("Subject: %s\r\n\r\nold mac\rline\r\n.\r\n" % subject).encode())
    rep = r.reply()
    assert rep.code == 550 and rep.enh and rep.enh.startswith("5.6."), rep
    assert r.cmd("NOOP").code == 250
    r.close()
    assert server.find_mail("shiroyagi@example.com", subject) == []


def test_bare_lf_normalized(normalize_server):
    srv = normalize_server
    subject = unique("normlf")
    r = srv.session()
    assert r.cmd("MAIL FROM:<lf@example.org>").code == 250
    assert r.cmd("RCPT TO:<shiroyagi@example.com>").code == 250
    assert r.cmd("DATA").code == 354
    r.send(("Subject: %s\n\nunix\nline ends\r\n.\r\n" % subject).encode())
    rep = r.reply()
    assert rep.code == 250, rep
    r.close()
    (row, stored), = srv.find_mail("shiroyagi@example.com", subject)
    assert split_stored(stored)[1] == ("Subject: %s\r\n\r\nunix\r\nline ends\r\n" % subject).encode()


def test_dot_lf_is_not_end_of_data(normalize_server):
    # ".\n" alone is not the end even when LF is normalised; the real end
    # comes later, and what was between is part of the message.
    srv = normalize_server
    subject = unique("dotlf")
    r = srv.session()
    assert r.cmd("MAIL FROM:<lf@example.org>").code == 250
    assert r.cmd("RCPT TO:<shiroyagi@example.com>").code == 250
    assert r.cmd("DATA").code == 354
    r.send(("Subject: %s\r\n\r\nbody\r\n.\nNOOP\r\n.\r\n" % subject).encode())
    rep = r.reply()
    assert rep.code == 250, rep
    rep = r.cmd("NOOP")
    assert rep.code == 250 and rep.enh == "2.0.0", rep
    r.close()
    (row, stored), = srv.find_mail("shiroyagi@example.com", subject)
    assert b"NOOP" in split_stored(stored)[1]
