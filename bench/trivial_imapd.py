#!/usr/bin/env python3
"""A trivial IMAP responder for checking the load generator: it answers
each of mailload.py's commands at once with canned responses of realistic
size (a 200-message mailbox; 4 KB bodies), stores nothing and checks
nothing. If mailload.py makes far more operations per second against this
than against a real server, the generator is not what limits the real
figures. Not an IMAP server: only for bench/.

  trivial_imapd.py PORT
"""

import asyncio
import sys

EXISTS = 200
ENVELOPE = (b'(UID %d FLAGS (\\Seen) ENVELOPE ("Tue, 01 Nov 2026 10:00:00 +0000" '
            b'"invoice meeting photo report" (("Aiko Tanaka" NIL "aiko.tanaka" "sender.test")) '
            b'(("Aiko Tanaka" NIL "aiko.tanaka" "sender.test")) '
            b'(("Aiko Tanaka" NIL "aiko.tanaka" "sender.test")) '
            b'((NIL NIL "bench" "example.com")) NIL NIL NIL "<bench-7-1@sender.test>"))')
BODYSTRUCTURE = (b'(BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 3000 60 '
                 b'NIL NIL NIL NIL)("application" "octet-stream" ("name" "f1.bin") NIL NIL '
                 b'"base64" 9000 NIL ("attachment" ("filename" "f1.bin")) NIL NIL) "mixed" '
                 b'("boundary" "mix-1") NIL NIL NIL))')
BODY = b"x" * 4094 + b"\r\n"


def seqrange(s):
    a, _, b = s.partition(b":")
    a = int(a)
    return range(a, (int(b) if b else a) + 1)


async def serve(r, w):
    w.write(b"* OK [CAPABILITY IMAP4rev1 LITERAL+ IDLE MOVE] trivial ready\r\n")
    while True:
        line = await r.readline()
        if not line:
            break
        if line.endswith(b"+}\r\n"):
            n = int(line[line.rfind(b"{") + 1:-4])
            await r.readexactly(n)
            await r.readline()
        parts = line.rstrip(b"\r\n").split(b" ")
        tag, cmd = parts[0], parts[1].upper() if len(parts) > 1 else b""
        out = []
        if cmd == b"SELECT":
            out.append(b"* %d EXISTS\r\n" % EXISTS)
        elif cmd == b"FETCH":
            for i in seqrange(parts[2]):
                if b"BODY.PEEK[]" in line:
                    out.append(b"* %d FETCH (BODY[] {%d}\r\n%s)\r\n" % (i, len(BODY), BODY))
                elif b"BODYSTRUCTURE" in line:
                    out.append(b"* %d FETCH %s\r\n" % (i, BODYSTRUCTURE))
                else:
                    out.append(b"* %d FETCH %s\r\n" % (i, ENVELOPE % i))
        elif cmd == b"SEARCH":
            out.append(b"* SEARCH 3 17 42 99 150\r\n")
        elif cmd == b"APPEND":
            out.append(b"* %d EXISTS\r\n" % (EXISTS + 1))
        elif cmd in (b"MOVE", b"EXPUNGE"):
            out.append(b"* %d EXPUNGE\r\n" % (EXISTS + 1))
        elif cmd == b"LOGOUT":
            out.append(b"* BYE\r\n")
        out.append(tag + b" OK done\r\n")
        w.write(b"".join(out))
        await w.drain()
        if cmd == b"LOGOUT":
            break
    w.close()


async def main(port):
    srv = await asyncio.start_server(serve, "127.0.0.1", port, limit=1 << 24)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
