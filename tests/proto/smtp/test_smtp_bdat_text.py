"""BDAT carries text too (RFC 3030 without BINARYMIME): bare CR/LF get the
listener's bare_lf policy, as in DATA, even split across chunks."""

import pytest

from yubintest import make_msg, unique, split_stored


def bdat(r, chunk, last=False):
    r.send(b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"") + chunk)
    return r.reply()


def start(r, rcpt="shiroyagi@example.com"):
    assert r.cmd("MAIL FROM:<bdattext@example.org>").code == 250
    assert r.cmd("RCPT TO:<%s>" % rcpt).code == 250


@pytest.mark.parametrize("body", [b"a\nb\r\n", b"a\rb\r\n", b"a\x00b\r\n"])
def test_bdat_bare_line_ends_refused_on_port_25(server, body):
    subject = unique("bdatbare")
    msg = make_msg(subject, body=body)
    r = server.session()
    start(r)
    rep = bdat(r, msg, last=True)
    assert rep.code == 550 and rep.enh.startswith("5.6."), rep
    # The session goes on.
    assert r.cmd("NOOP").code == 250
    r.close()
    assert server.find_mail("shiroyagi@example.com", subject) == []


def test_bdat_crlf_split_across_chunks_is_not_bare(server):
    subject = unique("bdatsplit")
    msg = make_msg(subject, body=b"line one\r\nline two\r\n")
    cut = msg.index(b"\r\nline two") + 1  # between CR and LF
    r = server.session()
    start(r)
    assert bdat(r, msg[:cut]).code == 250
    rep = bdat(r, msg[cut:], last=True)
    assert (rep.code, rep.enh) == (250, "2.0.0"), rep
    r.close()
    (row, stored), = server.find_mail("shiroyagi@example.com", subject)
    assert split_stored(stored)[1] == msg


def test_bdat_trailing_bare_cr_refused(server):
    subject = unique("bdatcr")
    msg = make_msg(subject) + b"\r"
    r = server.session()
    start(r)
    assert bdat(r, msg).code == 250
    rep = bdat(r, b"", last=True)
    assert rep.code == 550, rep
    r.close()
