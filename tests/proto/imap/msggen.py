"""A generator of varied, realistic mail messages for client tests.

    msgs = generate(1000, seed=7, to="user@example.com")
    msgs[i].data      the message as bytes (CRLF line ends, not dot-stuffed)
    msgs[i].kind      which shape it has (see KINDS)
    msgs[i].msgid     its Message-ID, without <>, unique within one seed
    msgs[i].bare_lf   True if some of its lines end in a bare LF

The same (n, seed, to, sizes) always give the same bytes: only a
random.Random(seed) is used, never the clock or uuid. Every shape appears
in any batch of len(KINDS) messages or more.

The shapes are those mail clients and servers trip over:
  plain         text/plain us-ascii, 7bit
  utf8          UTF-8 8bit body, RFC 2047 encoded-word Subject and names
  qp            quoted-printable ISO-8859-1 / UTF-8 body (soft breaks, =3D)
  base64        base64 text body
  alternative   multipart/alternative: text/plain + text/html
  mixed         multipart/mixed with attachments, RFC 2231 filenames
                (charset'lang'value and name*0*= continuations)
  rfc822        multipart/mixed holding a message/rfc822 (itself multipart)
  no_ct         no Content-Type and no MIME-Version at all
  long_headers  long folded headers: References, To, Subject, X- fields
  header_8bit   raw UTF-8 in Subject, From and To (RFC 6532 style)
Any shape can also carry lines that start with "." (SMTP dot-stuffing),
"From " lines (mbox quoting) and empty lines; a few messages (about one
in 40, at least one in any batch of 40) get some lines ending in a bare
LF instead of CRLF (`bare_lf`), which SMTP with bare_lf = normalize turns
into CRLF and APPEND may keep. No line after a bare LF starts with ".":
smtplib stuffs a dot after any LF, while a server that frames lines on
CRLF only (yubin: a bare LF never starts a line, against SMTP smuggling)
keeps both dots, so the stored message would depend on that choice.

Sizes run from about 200 bytes to about 200 KB: most are small, a
quarter a few tens of KB, one in twenty 40 to 200 KB.

Over SMTP send with mail_options=["BODY=8BITMIME", "SMTPUTF8"] (8-bit
bodies and headers) and smtplib does the dot-stuffing; for APPEND send
.data as the literal.
"""

import base64
import quopri
import random

KINDS = ("plain", "utf8", "qp", "base64", "alternative", "mixed", "rfc822",
         "no_ct", "long_headers", "header_8bit")

MIN_SIZE = 200
MAX_SIZE = 200 * 1024

WORDS_EN = ("the quick brown fox jumps over lazy dog mail server message "
            "header body folder sync client delivery queue mailbox flag seen "
            "answered draft deleted recent uid fetch append expunge literal "
            "octet boundary charset encoding attachment").split()
WORDS_UTF8 = ("郵便 配達 受信箱 メール 件名 本文 添付 ファイル 日本語 "
              "Grüße Größe Straße naïve café façade élève smörgåsbord "
              "Ελληνικά Привет мир ¡Hola! señor — … “quotes” €100 ✓ 🚀 📬").split()
WORDS_LATIN1 = ("café naïve déjà vu façade über Mädchen señor año "
                "crème brûlée garçon Ærø Øre").split()

NAMES = [("Alice Example", "alice@example.org"),
         ("Bob O'Neil", "bob@example.net"),
         ("山田 太郎", "yamada@example.jp"),
         ("Jürgen Müller", "juergen@example.de"),
         ("Zoë Faß", "zoe@example.de"),
         ("Ωmega Δelta", "omega@example.gr"),
         ("plain", "plain@example.com")]

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
DAYS = "Mon Tue Wed Thu Fri Sat Sun".split()


class Message:
    def __init__(self, data, kind, msgid, bare_lf, index):
        self.data = data
        self.kind = kind
        self.msgid = msgid
        self.bare_lf = bare_lf
        self.index = index

    def crlf(self):
        """The message with every bare LF made CRLF (what SMTP with
        bare_lf = normalize stores)."""
        return normalize_crlf(self.data)

    def __repr__(self):
        return "<Message %d %s %d bytes%s>" % (self.index, self.kind, len(self.data),
                                                " bare-LF" if self.bare_lf else "")


def normalize_crlf(data):
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# ---- header encodings ----

def encoded_words(text, rng, charset="UTF-8"):
    """RFC 2047 encoded-words for text (B or Q), each at most 75
    characters, separated by folding white space."""
    enc = rng.choice("BQ")
    raw = text.encode(charset)
    words = []
    chunk = b""
    # Cut on character boundaries (whole UTF-8 sequences).
    for ch in text:
        b = ch.encode(charset)
        if len(chunk) + len(b) > 30:
            words.append(chunk)
            chunk = b""
        chunk += b
    if chunk:
        words.append(chunk)
    assert b"".join(words) == raw
    out = []
    for w in words:
        if enc == "B":
            payload = base64.b64encode(w).decode()
        else:
            payload = "".join(
                chr(c) if (0x30 <= c <= 0x39 or 0x41 <= c <= 0x5a or 0x61 <= c <= 0x7a)
                else "_" if c == 0x20 else "=%02X" % c for c in w)
        out.append("=?%s?%s?%s?=" % (charset, enc, payload))
    return "\r\n ".join(out)


def fold(name, value, width=76):
    """A header field, folded at spaces into lines of about width."""
    words = value.split(" ")
    lines = []
    cur = name + ":"
    for w in words:
        if len(cur) + 1 + len(w) > width and cur.strip() and cur != name + ":":
            lines.append(cur)
            cur = " " + w
        else:
            cur += " " + w
    lines.append(cur)
    return "\r\n".join(lines)


def rfc2231_param(name, value, rng):
    """A parameter with RFC 2231 encoding: name*=UTF-8''%XX..., or for long
    values name*0*=...; name*1*=... continuations."""
    enc = "".join(chr(c) if (chr(c).isalnum() and c < 128) or chr(c) in ".-_" else "%%%02X" % c
                  for c in value.encode("utf-8"))
    if len(enc) < 40 or rng.random() < 0.3:
        return "%s*=UTF-8''%s" % (name, enc)
    parts = []
    i = 0
    n = 0
    while i < len(enc):
        step = 30
        # do not cut inside a %XX escape
        while i + step < len(enc) and "%" in enc[i + step - 2:i + step]:
            step -= 1
        piece = enc[i:i + step]
        if n == 0:
            parts.append("%s*0*=UTF-8''%s" % (name, piece))
        else:
            parts.append("%s*%d*=%s" % (name, n, piece))
        i += step
        n += 1
    return ";\r\n\t".join(parts)


def address(rng, raw8=False, encode=True):
    name, addr = rng.choice(NAMES)
    if name.isascii():
        if "'" in name or " " in name:
            return '"%s" <%s>' % (name, addr)
        return "%s <%s>" % (name, addr)
    if raw8:
        return '"%s" <%s>' % (name, addr)
    return "%s <%s>" % (encoded_words(name, rng) if encode else name, addr)


# ---- bodies ----

def sentence(rng, words, n=None):
    n = n or rng.randint(4, 14)
    s = " ".join(rng.choice(words) for _ in range(n))
    return s[:1].upper() + s[1:] + rng.choice(".!?;")


def text_lines(rng, words, size, width=72):
    """Lines of text (str, without line ends) of about size bytes in
    UTF-8, with the odd tricky line."""
    lines = []
    total = 0
    cur = ""
    while total < size:
        r = rng.random()
        if r < 0.02:
            line = "." + sentence(rng, words, 3)         # dot-stuffing
        elif r < 0.03:
            line = "."                                   # a lone dot
        elif r < 0.04:
            line = "From the desk of " + rng.choice(["Alice", "Bob"])   # mbox From_
        elif r < 0.08:
            line = ""                                    # paragraph break
        elif r < 0.085:
            line = "x" * rng.randint(200, 990)           # long, still < 998
        else:
            s = sentence(rng, words)
            if len(cur) + len(s) + 1 <= width:
                cur = (cur + " " + s).strip()
                continue
            line, cur = cur, s
        lines.append(line)
        total += len(line.encode("utf-8")) + 2
    if cur:
        lines.append(cur)
    return lines


def crlf_join(lines):
    return "".join(l + "\r\n" for l in lines)


def qp_encode(data):
    out = quopri.encodestring(data, quotetabs=False)
    return normalize_crlf(out)


def b64_encode(data):
    return normalize_crlf(base64.encodebytes(data))


def html_of(lines):
    esc = [l.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for l in lines]
    return ("<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"></head>\r\n<body>\r\n"
            + "".join("<p>%s</p>\r\n" % l for l in esc if l) + "</body></html>\r\n")


def boundary(rng):
    return "=_b%08x.%04x" % (rng.getrandbits(32), rng.getrandbits(16))


def random_bytes(rng, n):
    return rng.getrandbits(8 * n).to_bytes(n, "little")


# ---- the shapes ----

def date_header(rng):
    d = rng.randint(1, 28)
    return "%s, %d %s %d %02d:%02d:%02d %s" % (
        rng.choice(DAYS), d, rng.choice(MONTHS), rng.randint(1999, 2026),
        rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
        rng.choice(["+0000", "+0900", "-0500", "+0530", "-0000"]))


def common_headers(rng, msgid, to, subject, frm=None, mime=True):
    h = ["Date: " + date_header(rng),
         "From: " + (frm or address(rng)),
         "To: " + to,
         "Subject: " + subject,
         "Message-ID: <%s>" % msgid]
    if mime:
        h.append("MIME-Version: 1.0")
    rng.shuffle(h)
    return h


def build(kind, rng, msgid, to, size):
    """(header lines, body str-or-bytes) of one message of kind, with a
    body of about size bytes."""
    tag = msgid.split("@")[0]
    ascii_subject = "%s %s" % (tag, sentence(rng, WORDS_EN, 5))
    if kind == "plain":
        h = common_headers(rng, msgid, to, ascii_subject)
        h += ["Content-Type: text/plain; charset=us-ascii",
              "Content-Transfer-Encoding: 7bit"]
        return h, crlf_join(text_lines(rng, WORDS_EN, size))

    if kind == "utf8":
        subj = encoded_words("%s %s" % (tag, sentence(rng, WORDS_UTF8, 6)), rng)
        h = common_headers(rng, msgid, address(rng) if rng.random() < 0.5 else to,
                           subj, frm=address(rng))
        h += ["Content-Type: text/plain; charset=utf-8; format=flowed",
              "Content-Transfer-Encoding: 8bit"]
        return h, crlf_join(text_lines(rng, WORDS_UTF8 + WORDS_EN, size))

    if kind == "qp":
        latin = rng.random() < 0.5
        words = WORDS_LATIN1 if latin else WORDS_UTF8
        charset = "iso-8859-1" if latin else "utf-8"
        lines = text_lines(rng, words + WORDS_EN + ["a=b", "tab\there", "end "], size * 2 // 3)
        raw = crlf_join(lines).replace("\r\n", "\n").encode(charset)
        h = common_headers(rng, msgid, to, encoded_words(
            "%s %s" % (tag, sentence(rng, words, 4)), rng, "ISO-8859-1" if latin else "UTF-8"))
        h += ["Content-Type: text/plain; charset=%s" % charset,
              "Content-Transfer-Encoding: quoted-printable"]
        return h, qp_encode(raw)

    if kind == "base64":
        raw = crlf_join(text_lines(rng, WORDS_UTF8, size * 3 // 4)).encode()
        h = common_headers(rng, msgid, to, ascii_subject)
        h += ["Content-Type: text/plain; charset=\"UTF-8\"",
              "Content-Transfer-Encoding: base64"]
        return h, b64_encode(raw)

    if kind == "alternative":
        b = boundary(rng)
        lines = text_lines(rng, WORDS_EN + WORDS_UTF8, size // 3)
        plain = crlf_join(lines)
        html = qp_encode(html_of(lines).replace("\r\n", "\n").encode())
        h = common_headers(rng, msgid, to, encoded_words("%s %s" % (tag, "Ünïcödé"), rng))
        h += ['Content-Type: multipart/alternative;\r\n boundary="%s"' % b]
        body = ("This is a multi-part message in MIME format.\r\n"
                "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\n\r\n" % b).encode()
        body += plain.encode()
        body += ("\r\n--%s\r\nContent-Type: text/html; charset=utf-8\r\n"
                 "Content-Transfer-Encoding: quoted-printable\r\n\r\n" % b).encode()
        body += html + ("\r\n--%s--\r\n" % b).encode()
        return h, body

    if kind == "mixed":
        b = boundary(rng)
        h = common_headers(rng, msgid, to, ascii_subject)
        h += ["Content-Type: multipart/mixed; boundary=\"%s\"" % b]
        body = ("--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\n\r\n" % b).encode()
        body += crlf_join(text_lines(rng, WORDS_EN + WORDS_UTF8, 300)).encode()
        left = max(100, size - 600)
        nattach = rng.randint(1, 3)
        names = ["résumé 履歴書.pdf", "Überweisung März.xlsx",
                 "a very long file name that needs RFC 2231 continuations "
                 "— ünïcödé ✓ 郵便.tar.gz", "plain.bin", "写真.png"]
        for k in range(nattach):
            fname = rng.choice(names)
            blob = random_bytes(rng, max(16, left * 3 // 4 // nattach))
            ctype = rng.choice(["application/octet-stream", "application/pdf", "image/png"])
            if fname.isascii() and rng.random() < 0.5:
                disp = 'attachment; filename="%s"' % fname
                ctp = '%s; name="%s"' % (ctype, fname)
            else:
                disp = "attachment;\r\n\t" + rfc2231_param("filename", fname, rng)
                ctp = "%s;\r\n\t%s" % (ctype, rfc2231_param("name", fname, rng))
            body += ("\r\n--%s\r\nContent-Type: %s\r\nContent-Disposition: %s\r\n"
                     "Content-Transfer-Encoding: base64\r\n\r\n" % (b, ctp, disp)).encode()
            body += b64_encode(blob)
        body += ("\r\n--%s--\r\n" % b).encode()
        return h, body

    if kind == "rfc822":
        b = boundary(rng)
        inner_kind = rng.choice(["plain", "utf8", "alternative", "mixed", "qp"])
        inner_id = "inner-" + msgid
        ih, ib = build(inner_kind, rng, inner_id, to, max(100, size - 700))
        inner = ("\r\n".join(ih) + "\r\n\r\n").encode() + (
            ib if isinstance(ib, bytes) else ib.encode())
        h = common_headers(rng, msgid, to, "Fwd: " + ascii_subject)
        h += ['Content-Type: multipart/mixed;\r\n\tboundary="%s"' % b]
        body = ("--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
                "Forwarded message below.\r\n"
                "\r\n--%s\r\nContent-Type: message/rfc822\r\n"
                "Content-Disposition: inline\r\n\r\n" % (b, b)).encode()
        body += inner + ("\r\n--%s--\r\n" % b).encode()
        return h, body

    if kind == "no_ct":
        h = common_headers(rng, msgid, to, ascii_subject, mime=False)
        return h, crlf_join(text_lines(rng, WORDS_EN, size))

    if kind == "long_headers":
        refs = " ".join("<ref%d.%08x@lists.example.org>" % (k, rng.getrandbits(32))
                        for k in range(rng.randint(10, 60)))
        many_to = ", ".join('"Person %d" <p%d@example.net>' % (k, k)
                            for k in range(rng.randint(5, 40)))
        long_subject = "%s %s" % (tag, " ".join(sentence(rng, WORDS_EN, 12)
                                                for _ in range(rng.randint(2, 6))))
        h = ["Date: " + date_header(rng), "From: " + address(rng),
             fold("To", to + ", " + many_to),
             fold("Subject", long_subject),
             "Message-ID: <%s>" % msgid,
             fold("References", refs),
             fold("X-Long-Header", " ".join("token%d" % k for k in range(rng.randint(50, 300)))),
             # one physical line close to (but under) 998 bytes
             "X-Wide: " + "w" * rng.randint(500, 980),
             "MIME-Version: 1.0",
             "Content-Type: text/plain;\r\n\tcharset=us-ascii;\r\n\tformat=flowed"]
        return h, crlf_join(text_lines(rng, WORDS_EN, size))

    if kind == "header_8bit":
        subj = "%s %s" % (tag, sentence(rng, WORDS_UTF8, 5))
        h = common_headers(rng, msgid, '"受取人 Empfänger" <%s>' % to, subj,
                           frm=address(rng, raw8=True))
        h += ["Content-Type: text/plain; charset=utf-8",
              "Content-Transfer-Encoding: 8bit",
              "X-Note: ünïcödé in a header, 8-bit as is"]
        return h, crlf_join(text_lines(rng, WORDS_UTF8, size))

    raise ValueError(kind)


def pick_size(rng, lo, hi):
    r = rng.random()
    if r < 0.70:
        s = rng.randint(lo, max(lo, 4096))
    elif r < 0.95:
        s = rng.randint(4096, 40 * 1024)
    else:
        s = rng.randint(40 * 1024, hi)
    return max(lo, min(hi, s))


def add_bare_lf(rng, data):
    """Turns the CRLF of a few body lines into a bare LF."""
    head_end = data.index(b"\r\n\r\n") + 4
    head, body = data[:head_end], data[head_end:]
    lines = body.split(b"\r\n")
    for _ in range(rng.randint(1, 4)):
        # lines[-1] is the b"" after the last CRLF: keep the last CRLF
        # and no "." right after a bare LF: whether that starts a line (for
        # SMTP dot-stuffing) is up to the server (see the module doc)
        if len(lines) > 2:
            k = rng.randrange(len(lines) - 2)
            if not lines[k + 1].startswith(b"."):
                lines[k] = lines[k] + b"\n" + lines[k + 1]
                del lines[k + 1]
    out = head + b"\r\n".join(lines)
    if b"\n" not in out.replace(b"\r\n", b""):
        out = head + b"bare LF line\nnext\r\n" + body
    return out


def generate(n, seed=0, to="user@example.com", min_size=MIN_SIZE, max_size=MAX_SIZE,
             bare_lf=True):
    """n Messages (see the module doc); bare_lf=False leaves out the ones
    with bare LFs (all lines CRLF)."""
    rng = random.Random(seed)
    kinds = []
    while len(kinds) < n:
        block = list(KINDS)
        rng.shuffle(block)
        kinds.extend(block)
    out = []
    for i in range(n):
        kind = kinds[i]
        msgid = "g%d-%05d.%s@msggen.example" % (seed, i, kind)
        size = pick_size(rng, min_size, max_size)
        while True:
            h, body = build(kind, rng, msgid, to, size)
            head = ("\r\n".join(h) + "\r\n\r\n").encode()
            data = head + (body if isinstance(body, bytes) else body.encode())
            if len(data) <= max_size:
                break
            size = size * 4 // 5      # shapes only estimate: try smaller
        # Text shapes overshoot by up to a line or two: cut them to size.
        if len(data) > size * 1.3 and kind in ("plain", "no_ct", "utf8", "header_8bit"):
            cut = data.rfind(b"\r\n", len(head), max(len(head) + 2, size))
            if cut > len(head):
                data = data[:cut + 2]
        has_lf = bare_lf and i % 40 == 17
        if has_lf:
            data = add_bare_lf(rng, data)
        assert data.endswith(b"\r\n")
        out.append(Message(data, kind, msgid, has_lf, i))
    return out


if __name__ == "__main__":
    import collections
    import sys
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    ms = generate(n, seed=int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    sizes = [len(m.data) for m in ms]
    print("n=%d total=%d min=%d max=%d bare_lf=%d" % (
        n, sum(sizes), min(sizes), max(sizes), sum(m.bare_lf for m in ms)))
    print(collections.Counter(m.kind for m in ms))
