"""`yubin queue list|show|flush|delete|bounce` against a running server
whose peer is down, with a retry schedule of an hour: only the CLI moves
things. The operator sees every message's fate."""

import email

from test_queue_smarthost import (KURO, SHIRO, example, found, hogehoge, queue_rows,
                                  submit, wait)
import yubintest


def make_pair(factory):
    b = hogehoge(factory)
    a = example(factory, b.port, extra={"queue": {"retry_min": "1h", "retry_max": "2h"}})
    b.stop()
    return a, b


def queue_ids(a):
    return [r.split("\t")[0] for r in queue_rows(a)]


def test_show_delete_bounce_flush(yubin_factory):
    a, b = make_pair(yubin_factory)
    subjects = [yubintest.unique("cli") for _ in range(3)]
    for s in subjects:
        submit(a, [KURO], s)
    # All three tried once (peer down) and waiting an hour.
    assert wait(lambda: len(queue_rows(a)) == 3 and
                all(r.split("\t")[2] == "1" for r in queue_rows(a))), queue_rows(a)
    ids = queue_ids(a)

    # show: the envelope, each recipient's state, then the message.
    out = a.cli_ok("queue", "show", ids[0])
    head, _, body = out.partition("\n\n")
    assert "Queue-ID: %s" % ids[0] in head
    assert "Sender: %s" % SHIRO in head
    assert "Recipient: %s attempts=1" % KURO in head and "last-error=" in head
    assert "Subject: %s" % subjects[0] in body

    # delete: gone without a bounce, its body file too.
    files = len(a.msg_files())
    assert "1 recipient deleted" in a.cli_ok("queue", "delete", ids[0])
    assert ids[0] not in queue_ids(a)
    assert len(a.msg_files()) == files - 1
    rc, out, err = a.cli("queue", "delete", ids[0])
    assert rc == 1 and "no such message" in err
    rc, out, err = a.cli("queue", "delete", "not-an-id")
    assert rc == 1 and "not a queue id" in err

    # bounce: the server returns it to the sender at once.
    assert "to be bounced" in a.cli_ok("queue", "bounce", ids[1])
    row = wait(lambda: found(a, SHIRO, "Undelivered Mail Returned to Sender"))
    assert row, a.log_text()[-2000:]
    dsn = email.message_from_bytes(a.mail_show(SHIRO, "INBOX", row.uid))
    status = dsn.get_payload()[1].get_payload()[1]
    assert status["Final-Recipient"] == "rfc822; " + KURO
    assert status["Status"] == "5.0.0"
    assert "postmaster" in status["Diagnostic-Code"]
    assert wait(lambda: ids[1] not in queue_ids(a))

    # flush: the peer is back; without flush the last one would wait an
    # hour.
    b.start()
    assert "1 recipient due now" in a.cli_ok("queue", "flush")
    assert wait(lambda: found(b, KURO, subjects[2]))
    assert wait(lambda: queue_rows(a) == [])
    assert not found(b, KURO, subjects[0]) and not found(b, KURO, subjects[1])
