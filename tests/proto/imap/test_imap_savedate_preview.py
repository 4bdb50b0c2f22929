"""SAVEDATE (RFC 8514) and PREVIEW (RFC 8970)."""

import base64
import calendar
import os
import re
import sqlite3
import time

import imaptest
import yubintest

DATE = re.compile(r"^(\d\d)-([A-Z][a-z]{2})-(\d{4}) (\d\d):(\d\d):(\d\d) \+0000$")
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def epoch(value):
    """A date-time as FETCH writes it (always +0000 here) to seconds."""
    m = DATE.match(value.decode() if isinstance(value, bytes) else value)
    assert m, value
    d, mon, y, hh, mm, ss = m.groups()
    return calendar.timegm((int(y), MONTHS.index(mon) + 1, int(d), int(hh), int(mm), int(ss)))


def imap_day(t):
    return time.strftime("%d-%b-%Y", time.gmtime(t))


def append(c, mailbox, msg, date=None):
    head = "APPEND %s" % mailbox
    if date:
        head += ' "%s"' % date
    c.send("%s %s {%d+}\r\n" % (c.next_tag(), head, len(msg)))
    c.send(msg + b"\r\n")
    r = c.read_until_tagged("t%03d" % c.ntag)
    assert r.status == "OK", r
    return r


# ---- SAVEDATE ----

def test_4_2_fetch_savedate_append_copy_move(mailbox):
    mailbox.fill(1)
    c = mailbox.session(select=None)
    caps = set(imaptest.parse_caps(c.ok("CAPABILITY").lines("CAPABILITY")[0]))
    assert "SAVEDATE" in caps
    c.ok("CREATE Box")
    c.ok("CREATE Trash2")
    before = int(time.time())
    # 3: APPEND's internal date is the client's; the save date is now.
    append(c, "Box", yubintest.make_msg("old one"), "01-Jan-2020 10:00:00 +0000")
    c.ok("SELECT Box")
    f = c.ok("FETCH 1 (INTERNALDATE SAVEDATE)").fetches()[0][1]
    assert epoch(f["INTERNALDATE"]) == calendar.timegm((2020, 1, 1, 10, 0, 0))
    saved = epoch(f["SAVEDATE"])
    assert before - 1 <= saved <= time.time() + 1, f
    # Delivery: the save date is the arrival.
    c.ok("SELECT INBOX")
    f = c.ok("FETCH 1 (INTERNALDATE SAVEDATE)").fetches()[0][1]
    assert f["INTERNALDATE"] == f["SAVEDATE"], f
    # 3: a COPY or MOVE gets a new save date; the source keeps its own.
    c.ok("SELECT Box")
    time.sleep(1.1)
    c.ok("COPY 1 Trash2")
    assert epoch(c.ok("FETCH 1 (SAVEDATE)").fetches()[0][1]["SAVEDATE"]) == saved
    c.ok("SELECT Trash2")
    f = c.ok("FETCH 1 (INTERNALDATE SAVEDATE)").fetches()[0][1]
    copied = epoch(f["SAVEDATE"])
    assert copied > saved and epoch(f["INTERNALDATE"]) == calendar.timegm((2020, 1, 1, 10, 0, 0))
    time.sleep(1.1)
    c.ok("MOVE 1 Box")
    c.ok("SELECT Box")
    dates = [epoch(f["SAVEDATE"]) for _, f in c.ok("FETCH 1:* (SAVEDATE)").fetches()]
    assert dates[0] == saved and dates[1] > copied, dates


def test_4_3_search_saved_keys(mailbox):
    c = mailbox.session(select=None)
    c.ok("CREATE Arch")
    append(c, "Arch", yubintest.make_msg("a"), "01-Jan-2020 10:00:00 +0000")
    append(c, "Arch", yubintest.make_msg("b"), "15-Mar-2021 10:00:00 +0000")
    c.ok("SELECT Arch")
    today = imap_day(time.time())
    tomorrow = imap_day(time.time() + 86400)
    yesterday = imap_day(time.time() - 86400)

    def search(keys):
        return c.ok("SEARCH %s" % keys).lines("SEARCH")

    # Save dates (today), not internal dates (2020, 2021).
    assert search("SAVEDON %s" % today) == ["SEARCH 1 2"]
    assert search("SAVEDSINCE %s" % today) == ["SEARCH 1 2"]
    assert search("SAVEDSINCE %s" % tomorrow) == ["SEARCH"]
    assert search("SAVEDBEFORE %s" % today) == ["SEARCH"]
    assert search("SAVEDBEFORE %s" % tomorrow) == ["SEARCH 1 2"]
    assert search("SAVEDON %s" % yesterday) == ["SEARCH"]
    assert search("SAVEDBEFORE 02-Jan-2020") == ["SEARCH"]
    assert search("BEFORE 02-Jan-2020") == ["SEARCH 1"]
    assert search("SAVEDATESUPPORTED") == ["SEARCH 1 2"]
    assert search("NOT SAVEDATESUPPORTED") == ["SEARCH"]
    assert search("OR SAVEDON %s ON 15-Mar-2021" % yesterday) == ["SEARCH 2"]
    assert c.cmd("SEARCH SAVEDON 2020-01-01").status == "BAD"
    assert c.cmd("SEARCH SAVEDSINCE").status == "BAD"


# ---- PREVIEW ----

def mime(headers, body):
    return ("\r\n".join(["From: <alice@example.org>", "To: <bob@example.com>",
                         "Subject: preview", "Date: Sun, 22 Nov 2026 07:38:12 +0000",
                         "Message-ID: <%s@example.org>" % yubintest.unique("p"),
                         "MIME-Version: 1.0"] + headers) + "\r\n\r\n").encode() + body


CASES = [
    # plain text: white space runs become one space, none at the ends
    (["Content-Type: text/plain; charset=us-ascii"],
     b"\r\n  Hello   there,\r\n\r\n\tthis is\r\n the text.  \r\n",
     "Hello there, this is the text."),
    # HTML: tags, comments, head, style and script go; entities decode
    (["Content-Type: text/html; charset=utf-8"],
     b"<html><head><title>T</title><style>p { color: red; }</style></head>"
     b"<body><!-- hidden --><script>var x = 1;</script><p>Tom &amp; Jerry</p>"
     b"<p>caf&#233; &#x263A; &lt;ok&gt;&nbsp;end</p></body></html>\r\n",
     "Tom & Jerry caf\u00e9 \u263a <ok> end"),
    # multipart/alternative: the plain part, decoded (quoted-printable)
    (['Content-Type: multipart/alternative; boundary="b1"'],
     b"--b1\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
     b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
     b"Gr=FC=DFe aus K=F6ln\r\n--b1\r\nContent-Type: text/html\r\n\r\n"
     b"<p>HTML version</p>\r\n--b1--\r\n",
     "Gr\u00fc\u00dfe aus K\u00f6ln"),
    # base64 UTF-8 in a mixed message; the attachment is not looked at
    (['Content-Type: multipart/mixed; boundary="b2"'],
     b"--b2\r\nContent-Type: text/plain; charset=utf-8\r\n"
     b"Content-Transfer-Encoding: base64\r\n\r\n" +
     base64.encodebytes("\u65e5\u672c\u8a9e\u306e\u672c\u6587\u3067\u3059\u3002".encode())
     .replace(b"\n", b"\r\n") +
     b"--b2\r\nContent-Type: text/plain; name=a.txt\r\n"
     b"Content-Disposition: attachment; filename=a.txt\r\n\r\nattached\r\n--b2--\r\n",
     "\u65e5\u672c\u8a9e\u306e\u672c\u6587\u3067\u3059\u3002"),
    # nothing to show: an attachment only, an image
    (['Content-Type: multipart/mixed; boundary="b3"'],
     b"--b3\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
     b"iVBORw0KGgo=\r\n--b3\r\nContent-Type: text/plain\r\n"
     b"Content-Disposition: attachment\r\n\r\nnot this\r\n--b3--\r\n",
     ""),
]


def previews(c, items="PREVIEW"):
    return [f["PREVIEW"] for _, f in c.ok("FETCH 1:* (%s)" % items).fetches()]


def test_3_preview_text(mailbox, server):
    for headers, body, _ in CASES:
        imaptest.deliver(server, mime(headers, body), rcpt=mailbox.user)
    c = mailbox.session()
    caps = set(imaptest.parse_caps(c.ok("CAPABILITY").lines("CAPABILITY")[0]))
    assert "PREVIEW" in caps
    got = previews(c)
    assert [g.decode("utf-8") for g in got] == [want for _, _, want in CASES]
    # 3.3: UTF-8, not transfer-encoded; non-ASCII goes as a literal, so
    # an IMAP4rev1 client gets no 8-bit quoted string.
    r = c.ok("FETCH 2 (PREVIEW)")
    assert re.search(rb"PREVIEW \{\d+\}\r\nTom & Jerry", r.untagged[0].raw), r
    r = c.ok("FETCH 1 (PREVIEW)")
    assert r.untagged[0].raw.endswith(b'PREVIEW "Hello there, this is the text.")'), r
    # 3.2: no meaningful text: the empty string, never NIL.
    assert c.ok("FETCH 5 (PREVIEW)").untagged[0].raw.endswith(b'PREVIEW "")')


def test_3_3_preview_length_limit(mailbox, server):
    words = " ".join("w%03d" % i for i in range(200))
    long_utf8 = "\u00e9" * 300
    for body in (words, long_utf8):
        imaptest.deliver(server, mime(["Content-Type: text/plain; charset=utf-8"],
                                      body.encode() + b"\r\n"), rcpt=mailbox.user)
    c = mailbox.session()
    got = [g.decode("utf-8") for g in previews(c)]
    # At most 256 characters (we cut at 200): characters, not octets;
    # the 200th would be a space, which is not sent without a character
    # after it.
    assert words[199] == " " and got[0] == words[:199], got[0]
    assert got[1] == "\u00e9" * 200


def test_4_1_lazy_and_messages_stored_before(mailbox, server):
    """Messages stored before previews were (NULL in the database): LAZY
    gets NIL, a plain FETCH makes it, and it is stored for next time."""
    imaptest.deliver(server, mime(["Content-Type: text/plain"], b"Older message.\r\n"),
                     rcpt=mailbox.user)
    c = mailbox.session()
    # Stored at delivery: LAZY has it at once.
    assert previews(c, "PREVIEW (LAZY)") == [b"Older message."]
    assert previews(c, "UID PREVIEW (LAZY) FLAGS") == [b"Older message."]
    db = sqlite3.connect(os.path.join(server.data_dir, "yubin.db"), timeout=10)
    try:
        with db:
            db.execute("UPDATE messages SET preview = NULL WHERE id IN (SELECT l.message_id"
                       " FROM mail l JOIN mailboxes b ON b.id = l.mailbox_id"
                       " JOIN accounts a ON a.id = b.account_id"
                       " WHERE a.localpart = ?)", (mailbox.user.split("@")[0],))
    finally:
        db.close()
    r = c.ok("FETCH 1 (PREVIEW (LAZY))")
    assert r.untagged[0].raw.endswith(b"PREVIEW NIL)"), r
    # The form without the list parentheses (RFC 8970 6: fetch-att).
    r = c.ok("FETCH 1 PREVIEW (LAZY)")
    assert r.untagged[0].raw.endswith(b"PREVIEW NIL)"), r
    assert previews(c) == [b"Older message."]
    assert imaptest.wait_for(
        lambda: previews(c, "PREVIEW (LAZY)") == [b"Older message."], timeout=10)
    # Only LAZY is a preview modifier.
    assert c.cmd("FETCH 1 (PREVIEW (FAST))").status == "BAD"
    assert c.cmd("FETCH 1 (PREVIEW ())").status == "BAD"
    assert c.cmd("FETCH 1 (FLAGS (LAZY))").status == "BAD"
