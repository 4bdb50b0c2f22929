"""A small DNS server for yubin's tests, on python3-dnslib (Debian).

It answers like a recursive resolver that knows everything: from a zone
held in memory, following CNAME chains into the answer, NXDOMAIN for names
it does not know (and that have no names under them), NOERROR with no
answer (NODATA) for names that exist without the asked type. Some names can
be made to fail on purpose: SERVFAIL, REFUSED, or no answer at all.

    dns = TestDNS(address="127.0.0.1")        # a free UDP+TCP port
    dns.add("example.com", "MX", "10 mx1.example.com")
    dns.add("mx1.example.com", "A", "192.0.2.11")
    dns.servfail("broken.example")
    dns.start()
    dns.spec                                  # "127.0.0.1:PORT" for [dns] servers
    dns.queries                               # [(name, type, "udp"|"tcp"), ...]
    dns.stop()

UDP answers over 512 bytes are truncated (TC), so clients retry over TCP,
as with a real server. The zone may be changed while it runs.

BlackHole() is a UDP and TCP port that takes queries and never answers: a
resolver that times out.
"""

import socket
import struct
import threading

import dnslib
from dnslib import QTYPE, RCODE, RR, DNSRecord

UDP_MAX = 512   # RFC 1035 4.2.1, without EDNS


def _norm(name):
    return str(name).rstrip(".").lower()


def _rdata(rtype, value):
    if rtype == "A":
        return dnslib.A(value)
    if rtype == "AAAA":
        return dnslib.AAAA(value)
    if rtype == "MX":
        pref, host = value.split(None, 1)
        return dnslib.MX(host, int(pref))
    if rtype == "CNAME":
        return dnslib.CNAME(value)
    if rtype == "TXT":
        return dnslib.TXT(value)
    if rtype == "NS":
        return dnslib.NS(value)
    raise ValueError("record type %s not supported here" % rtype)


class TestDNS:
    """The server: a zone in memory, UDP and TCP on the same port."""

    def __init__(self, address="127.0.0.1", port=0):
        self.address = address
        self.family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.records = {}        # name -> [(type, value, ttl)]
        self.failures = {}       # name -> "SERVFAIL" | "REFUSED" | "DROP"
        self.queries = []
        self.lock = threading.Lock()
        self.udp = self.tcp = None
        self.port = port
        self.threads = []
        self.running = False

    # ---- the zone ----

    def add(self, name, rtype, value, ttl=60):
        _rdata(rtype, value)     # refuse a bad value now, not at query time
        with self.lock:
            self.records.setdefault(_norm(name), []).append((rtype, value, ttl))

    def remove(self, name, rtype=None):
        with self.lock:
            recs = self.records.get(_norm(name), [])
            recs[:] = [r for r in recs if rtype is not None and r[0] != rtype]
            if not recs:
                self.records.pop(_norm(name), None)

    def servfail(self, name):
        self.failures[_norm(name)] = "SERVFAIL"

    def refuse(self, name):
        self.failures[_norm(name)] = "REFUSED"

    def drop(self, name):
        """Queries for name get no answer at all."""
        self.failures[_norm(name)] = "DROP"

    def heal(self, name):
        self.failures.pop(_norm(name), None)

    def load(self, zone):
        """zone: [(name, type, value)]."""
        for name, rtype, value in zone:
            self.add(name, rtype, value)

    def _exists(self, name):
        if name in self.records:
            return True
        suffix = "." + name
        return any(n.endswith(suffix) for n in self.records)

    def answer(self, request, proto="udp"):
        """The reply to a parsed request, or None for no reply."""
        q = request.q
        qname = _norm(q.qname)
        qtype = QTYPE.get(q.qtype)
        with self.lock:
            self.queries.append((qname, qtype, proto))
            reply = request.reply()      # qr, aa, ra; the question copied
            name = qname
            for _ in range(8):
                fail = self.failures.get(name)
                if fail == "DROP":
                    return None
                if fail is not None:
                    reply.header.rcode = getattr(RCODE, fail)
                    return reply
                recs = self.records.get(name, [])
                found = [r for r in recs if r[0] == qtype]
                if found:
                    for rtype, value, ttl in found:
                        reply.add_answer(RR(name, getattr(QTYPE, rtype),
                                            rdata=_rdata(rtype, value), ttl=ttl))
                    return reply
                cname = [r for r in recs if r[0] == "CNAME"]
                if cname and qtype != "CNAME":
                    rtype, value, ttl = cname[0]
                    reply.add_answer(RR(name, QTYPE.CNAME, rdata=_rdata(rtype, value),
                                        ttl=ttl))
                    name = _norm(value)
                    continue
                if not self._exists(name):
                    reply.header.rcode = RCODE.NXDOMAIN   # RFC 6604: of the last name
                return reply
            reply.header.rcode = RCODE.SERVFAIL          # a CNAME loop
            return reply

    # ---- the sockets ----

    @property
    def spec(self):
        """The server as [dns] servers wants it: ADDR:PORT or [ADDR6]:PORT."""
        if self.family == socket.AF_INET6:
            return "[%s]:%d" % (self.address, self.port)
        return "%s:%d" % (self.address, self.port)

    def start(self):
        for _ in range(50):
            udp = socket.socket(self.family, socket.SOCK_DGRAM)
            udp.bind((self.address, self.port))
            port = udp.getsockname()[1]
            tcp = socket.socket(self.family, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((self.address, port))
            except OSError:
                udp.close()
                tcp.close()
                if self.port:
                    raise
                continue
            tcp.listen(16)
            self.udp, self.tcp, self.port = udp, tcp, port
            break
        else:
            raise OSError("no port free for both UDP and TCP")
        self.running = True
        for fn in (self._serve_udp, self._serve_tcp):
            t = threading.Thread(target=fn, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def _reply_bytes(self, data, proto):
        try:
            request = DNSRecord.parse(data)
        except Exception:
            return None
        reply = self.answer(request, proto)
        if reply is None:
            return None
        out = reply.pack()
        if proto == "udp" and len(out) > UDP_MAX:
            reply = request.reply()
            reply.header.tc = 1
            out = reply.pack()
        return out

    def _serve_udp(self):
        while self.running:
            try:
                data, peer = self.udp.recvfrom(65535)
            except OSError:
                return
            out = self._reply_bytes(data, "udp")
            if out is not None:
                try:
                    self.udp.sendto(out, peer)
                except OSError:
                    pass

    def _serve_tcp(self):
        while self.running:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._tcp_conn, args=(conn,), daemon=True).start()

    def _tcp_conn(self, conn):
        conn.settimeout(10)
        buf = b""
        try:
            while True:
                while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
                    chunk = conn.recv(65535)
                    if not chunk:
                        return
                    buf += chunk
                n = struct.unpack("!H", buf[:2])[0]
                data, buf = buf[2:2 + n], buf[2 + n:]
                out = self._reply_bytes(data, "tcp")
                if out is not None:
                    conn.sendall(struct.pack("!H", len(out)) + out)
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self.running = False
        for s in (self.udp, self.tcp):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        for t in self.threads:
            t.join(5)
        self.threads = []

    def count(self, name, rtype=None):
        """How many queries asked for name (of rtype)."""
        with self.lock:
            return sum(1 for n, t, _ in self.queries
                       if n == _norm(name) and (rtype is None or t == rtype))


class BlackHole:
    """A resolver address that never answers (UDP read and dropped)."""

    def __init__(self, address="127.0.0.1"):
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((address, 0))
        self.address = address
        self.port = self.udp.getsockname()[1]

    @property
    def spec(self):
        return "%s:%d" % (self.address, self.port)

    def close(self):
        self.udp.close()


def dns_overrides(*servers, timeout="1s", attempts="1"):
    """Config overrides (yubintest.Instance) for a [dns] section."""
    return {"dns": {"servers": " ".join(servers), "timeout": timeout,
                    "attempts": attempts}}


# The names every DNS test can count on (192.0.2.0/24 and 2001:db8::/32 are
# for documentation, RFC 5737 and RFC 3849: nothing real answers there).
STANDARD_ZONE = [
    # preference order: mx1 (10) before mx2 (20)
    ("example.com", "MX", "20 mx2.example.com"),
    ("example.com", "MX", "10 mx1.example.com"),
    ("mx1.example.com", "A", "192.0.2.11"),
    ("mx1.example.com", "AAAA", "2001:db8::11"),
    ("mx2.example.com", "A", "192.0.2.12"),
    # two at 10 (in random order) before one at 20
    ("hogehoge.com", "MX", "10 mx-a.hogehoge.com"),
    ("hogehoge.com", "MX", "10 mx-b.hogehoge.com"),
    ("hogehoge.com", "MX", "20 mx-c.hogehoge.com"),
    ("mx-a.hogehoge.com", "A", "192.0.2.21"),
    ("mx-b.hogehoge.com", "A", "192.0.2.22"),
    ("mx-c.hogehoge.com", "A", "192.0.2.23"),
    # RFC 7505
    ("nullmx.example", "MX", "0 ."),
    ("nullmx.example", "A", "192.0.2.40"),
    # no MX, but addresses: the implicit MX (RFC 5321 5.1)
    ("nomx.example", "A", "192.0.2.30"),
    ("nomx.example", "AAAA", "2001:db8::30"),
    # exists, but neither MX nor address
    ("noaddr.example", "TXT", "v=spf1 -all"),
    # only IPv6; several addresses of each family
    ("v6only.example", "AAAA", "2001:db8::60"),
    ("multi.example", "A", "192.0.2.51"),
    ("multi.example", "A", "192.0.2.52"),
    ("multi.example", "AAAA", "2001:db8::51"),
    ("multi.example", "AAAA", "2001:db8::52"),
    # a CNAME'd domain: its MX are example.com's
    ("alias.example", "CNAME", "example.com"),
    ("alias-host.example", "CNAME", "mx1.example.com"),
    # a CNAME to nothing
    ("dangling.example", "CNAME", "nowhere.example"),
]
# Broken on purpose: SERVFAIL, REFUSED and silence.
STANDARD_SERVFAIL = ["servfail.example"]
STANDARD_REFUSED = ["refused.example"]
STANDARD_DROP = ["silent.example"]
MANY_MX = 40   # many.example: more than fits in 512 bytes, more than DNS_MX_MAX


def standard_server(address="127.0.0.1"):
    dns = TestDNS(address)
    dns.load(STANDARD_ZONE)
    for i in range(MANY_MX):
        dns.add("many.example", "MX", "%d mx%02d.many.example" % (i, i))
    for n in STANDARD_SERVFAIL:
        dns.servfail(n)
    for n in STANDARD_REFUSED:
        dns.refuse(n)
    for n in STANDARD_DROP:
        dns.drop(n)
    return dns.start()
