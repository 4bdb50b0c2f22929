"""SORT, ESORT and THREAD compare strings case-insensitively beyond ASCII
(RFC 5256 2 with i;unicode-casemap in mind, RFC 5051): "\u00c9mile" and
"\u00e9mile" are equal, so they sort together and share an
ORDEREDSUBJECT thread; ASCII keeps the i;ascii-casemap order."""

import base64

import imaptest


def enc(text):
    return "=?UTF-8?B?%s?=" % base64.b64encode(text.encode()).decode()


# (subject, display name of From, internal date); sequence numbers 1..6
MESSAGES = [
    ("\u00e9mile b", "\u00c4rger", "01-Feb-2026 10:00:00 +0000"),
    ("Zeta", "Zorro", "01-Feb-2026 11:00:00 +0000"),
    ("\u00c9MILE", "\u00e4bc", "01-Feb-2026 12:00:00 +0000"),
    ("\u00e9clair", "\u00c4RGER", "01-Feb-2026 13:00:00 +0000"),
    ("Re: \u00c9mile", "zorro", "01-Feb-2026 14:00:00 +0000"),
    ("_under", "\u00df\u00e9", "01-Feb-2026 15:00:00 +0000"),
]


def test_rfc5256_unicode_casemap(mailbox):
    c = mailbox.session(select=None)
    for i, (subject, name, date) in enumerate(MESSAGES):
        msg = ("From: %s <u%d@example.org>\r\nTo: <bob@example.com>\r\nSubject: %s\r\n"
               "Date: Sun, 01 Feb 2026 10:00:00 +0000\r\nMessage-ID: <uc%d-%s@x>\r\n"
               "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nBody.\r\n"
               % (enc(name), i, enc(subject), i, mailbox.user)).encode()
        c.send('%s APPEND INBOX "%s" {%d+}\r\n' % (c.next_tag(), date, len(msg)))
        c.send(msg + b"\r\n")
        assert c.read_until_tagged("t%03d" % c.ntag).status == "OK"
    c.ok("SELECT INBOX")

    def sort(args):
        lines = c.ok("SORT %s" % args).lines("SORT")
        assert len(lines) == 1, lines
        return [int(x) for x in lines[0].split()[1:]]

    # Base subjects folded: "ZETA" < "_UNDER" (i;ascii-casemap: "Z" 0x5A
    # before "_" 0x5F) < "\u00e9clair" < "\u00e9mile" (1 then 5 by the
    # order in the mailbox) < "\u00e9mile b". By bytes alone "\u00c9MILE"
    # (C3 89) would come before "\u00e9clair" (C3 A9).
    assert sort("(SUBJECT) UTF-8 ALL") == [2, 6, 4, 3, 5, 1]
    assert sort("(REVERSE SUBJECT) UTF-8 ALL") == [1, 3, 5, 4, 6, 2]
    # DISPLAYFROM (RFC 5957): "zorro" = "Zorro" first, then by folded
    # UTF-8 bytes: "\u00df\u00e9" (C3 9F) < "\u00e4bc" (C3 A4 62) <
    # "\u00e4rger" = "\u00c4RGER" (1 then 4); by bytes alone "\u00c4"
    # (C3 84) would come first of them.
    assert sort("(DISPLAYFROM) UTF-8 ALL") == [2, 5, 6, 3, 1, 4]
    # ESORT the same way.
    r = c.ok("SORT RETURN (MIN MAX) (SUBJECT) UTF-8 ALL")
    assert r.lines("ESEARCH") == ["ESEARCH (TAG \"%s\") MIN 2 MAX 1" % r.tag], r
    # THREAD=ORDEREDSUBJECT: one thread for "\u00c9MILE" and
    # "Re: \u00c9mile", ordered by sent date (all equal: then by the
    # order in the mailbox); threads by their first message's date.
    r = c.ok("THREAD ORDEREDSUBJECT UTF-8 ALL")
    assert r.lines("THREAD") == ["THREAD (1)(2)(3 5)(4)(6)"], r
