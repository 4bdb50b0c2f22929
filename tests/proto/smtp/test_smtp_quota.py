"""SMTP to an account over its quota (RFC 9208 limits set with `yubin user
quota`): RCPT gets 452 4.2.2 (RFC 3463: temporary, the sender retries),
also when the SIZE that MAIL declared would not fit; other recipients of
the same transaction still get the message."""

import yubintest


def new_user(inst, prefix):
    addr = "%s@example.com" % yubintest.unique(prefix)
    inst.add_user(addr)
    return addr


def test_over_quota_rcpt_is_452(instance):
    inst = instance
    inst.add_domain("example.com")
    inst.start()
    full = new_user(inst, "full")
    other = new_user(inst, "other")
    inst.cli_ok("user", "quota", full, "10K", "1")
    with inst.smtp() as s:
        s.sendmail("alice@example.org", [full], yubintest.make_msg("first", to=full))
    # Now at the MESSAGE limit.
    r = inst.session()
    assert r.cmd("MAIL FROM:<alice@example.org>").code == 250
    rep = r.cmd("RCPT TO:<%s>" % full)
    assert rep.code == 452 and "4.2.2" in rep.text, rep
    assert r.cmd("RCPT TO:<%s>" % other).code == 250
    r.close()
    assert len(inst.mail_list(full)) == 1
    # Room again: accepted.
    inst.cli_ok("user", "quota", full, "10K", "5")
    r = inst.session()
    assert r.cmd("MAIL FROM:<alice@example.org>").code == 250
    assert r.cmd("RCPT TO:<%s>" % full).code == 250
    r.cmd("RSET")
    # A declared SIZE that would not fit in 10K.
    assert r.cmd("MAIL FROM:<alice@example.org> SIZE=20000").code == 250
    rep = r.cmd("RCPT TO:<%s>" % full)
    assert rep.code == 452 and "4.2.2" in rep.text, rep
    assert r.cmd("RCPT TO:<%s>" % other).code == 250
    r.cmd("RSET")
    assert r.cmd("MAIL FROM:<alice@example.org> SIZE=2000").code == 250
    assert r.cmd("RCPT TO:<%s>" % full).code == 250
    r.close()
