"""The two-host rig of the relay tests ([M6]): yubin servers on their own
addresses, each in a network namespace, with a test DNS server that tells
them where the other one is.

Topology (all made with iproute2, as root):

    root namespace (the test)              switch namespace TAG-sw
      TAGr 10.A.B.254, fd79:..::fe  --veth--  up0 ─┐
      test DNS server on 10.A.B.254:PORT           br0 (bridge)
                                                   ├─ h1 --veth-- eth0 in TAG-mx-example
                                                   │     10.A.B.1, fd79:..::1  ("mx.example.com")
                                                   └─ h2 --veth-- eth0 in TAG-mx-hogehoge
                                                         10.A.B.2, fd79:..::2  ("mx.hogehoge.com")

The bridge sits in a namespace of its own, so traffic between the hosts
never meets the root namespace's firewall, and the only interface the root
namespace sees is TAGr (gone with the namespaces). TAG is "yb" + the test
process's pid (+ a letter per rig), and A.B come from the pid too, so
parallel runs do not collide; namespaces left by a killed run (their pid is
dead) are removed when the next rig starts.

The DNS zone (dnstest.TestDNS, changeable while running):
    example.com   MX 10 mx.example.com     mx.example.com  A 10.A.B.1 (AAAA fd79:..::1)
    hogehoge.com  MX 10 mx.hogehoge.com    mx.hogehoge.com A 10.A.B.2 (AAAA fd79:..::2)
    nullmx.example  MX 0 .   (RFC 7505)    nowhere.example TXT only (no MX, no address)
    anything else: NXDOMAIN
"""

import collections
import ctypes
import imaplib
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "dns"))

import dnstest  # noqa: E402
import yubintest  # noqa: E402

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
_libc = ctypes.CDLL(None, use_errno=True)
_rig_count = 0

# name -> (domain, fqdn, host number, users provisioned by default)
HOSTS = collections.OrderedDict([
    ("mx-example", ("example.com", "mx.example.com", 1, ["shiroyagi@example.com"])),
    ("mx-hogehoge", ("hogehoge.com", "mx.hogehoge.com", 2, ["kuroyagi@hogehoge.com"])),
])


def ip(*args, check=True):
    p = subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if check and p.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), p.stderr.strip()))
    return p


def available():
    """None when the rig can run here, else why not (for pytest.skip)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    try:
        p = ip("netns", "list", check=False)
    except FileNotFoundError:
        return "no ip command (iproute2)"
    if p.returncode != 0:
        return "ip netns does not work: %s" % p.stderr.strip()
    return None


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale():
    """Removes the namespaces of rigs whose process is gone."""
    p = ip("netns", "list", check=False)
    for line in p.stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        m = re.match(r"^yb(\d+)[a-z]-", name)
        if m and not _pid_alive(int(m.group(1))):
            _kill_netns_pids(name)
            ip("netns", "del", name, check=False)


def _kill_netns_pids(ns):
    p = ip("netns", "pids", ns, check=False)
    for tok in p.stdout.split():
        try:
            os.kill(int(tok), signal.SIGKILL)
        except (ValueError, ProcessLookupError):
            pass


def in_netns(ns, fn, *args):
    """Runs fn(*args) on a thread inside network namespace ns and returns
    its result: sockets made there stay in that namespace. The test's own
    threads never change namespace."""
    out = {}

    def run():
        try:
            fd = os.open(os.path.join(NETNS_DIR, ns), os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    e = ctypes.get_errno()
                    raise OSError(e, "setns %s: %s" % (ns, os.strerror(e)))
            finally:
                os.close(fd)
            out["value"] = fn(*args)
        except BaseException as e:   # handed to the caller
            out["error"] = e
    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


class SockSMTP(yubintest.RawSMTP):
    """yubintest.RawSMTP over a socket made elsewhere (in a namespace)."""

    def __init__(self, sock, timeout=yubintest.IO_TIMEOUT):
        self.sock = sock
        self.timeout = timeout
        self.buf = b""


class Host:
    """One mail host: a namespace with an address, and the yubin servers
    started there."""

    def __init__(self, rig, name, domain, fqdn, number, users):
        self.rig = rig
        self.name = name
        self.domain = domain
        self.fqdn = fqdn
        self.users = users
        self.ns = "%s-%s" % (rig.tag, name)
        self.ipv4 = "%s.%d" % (rig.net4, number)
        self.ipv6 = "%s::%x" % (rig.net6, number) if rig.ipv6 else None
        self.number = number
        self.instances = []

    def __repr__(self):
        return "<Host %s %s ns=%s>" % (self.name, self.ipv4, self.ns)

    # ---- servers ----

    def serve(self, overrides=None, provision=True, start=True, config_text=None):
        """A yubin installation for this host (own temp folder, config and
        data), started with `ip netns exec NS yubin -c CONF serve`.

        Config: hostname = the host's fqdn; [smtp] *:25, [submission] *:587,
        [imap] *:143, [pop3] *:110; [dns] servers = the rig's DNS (timeout
        1s, attempts 2); user nobody; self-signed TLS. overrides
        ({section: {key: value or None}}) apply on top.
        provision: True = add the host's domain and its users (password
        yubintest.PASSWORD); a function(inst) = that instead; False = none.
        """
        inst = NsInstance(self, overrides, config_text=config_text)
        self.instances.append(inst)
        self.rig.instances.append(inst)
        if provision is True:
            inst.add_domain(self.domain)
            for u in self.users:
                inst.add_user(u)
        elif provision:
            provision(inst)
        if start:
            inst.start()
        return inst

    # ---- clients inside the namespace ----

    def connect(self, addr, port, timeout=yubintest.IO_TIMEOUT):
        """A TCP socket from this host to addr:port."""
        return in_netns(self.ns, socket.create_connection, (addr, port), timeout)

    def smtp_raw(self, addr, port=25, greet=True, timeout=yubintest.IO_TIMEOUT):
        """A byte-exact SMTP client (yubintest.RawSMTP API) from this host."""
        r = SockSMTP(self.connect(addr, port, timeout), timeout)
        if greet:
            rep = r.reply()
            assert rep.code == 220, rep
        return r

    def smtplib(self, addr, port=25, timeout=yubintest.IO_TIMEOUT):
        """smtplib.SMTP connected from this host, after the greeting."""
        host = self

        class NsSMTP(smtplib.SMTP):
            def _get_socket(self, h, p, t):
                return host.connect(h, p, t)
        return NsSMTP(addr, port, local_hostname=self.fqdn, timeout=timeout)

    def run(self, argv, **kw):
        """subprocess.run of argv inside the namespace (text, captured)."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 60)
        return subprocess.run(["ip", "netns", "exec", self.ns] + list(argv), **kw)

    # ---- the network ----

    def link_down(self):
        """Cuts the host off (its switch port down): peers time out."""
        ip("-n", self.rig.sw, "link", "set", "h%d" % self.number, "down")

    def link_up(self):
        ip("-n", self.rig.sw, "link", "set", "h%d" % self.number, "up")


class NsInstance(yubintest.Instance):
    """yubintest.Instance whose server runs in a host's namespace. The CLI
    (inst.cli, add_user, mail_list, queue_list, ...) runs in the root
    namespace on the same files; smtp()/raw()/session() and imap() connect
    from the root namespace to the host's address."""

    def __init__(self, host, overrides=None, config_text=None):
        self.host = host
        rig = host.rig
        merged = collections.OrderedDict()
        base = {
            "server": {"hostname": host.fqdn},
            "smtp": {"listen": "*:25"},
            "submission": {"listen": "*:587"},
            "imap": {"listen": "*:143"},
            "pop3": {"listen": "*:110"},
            "dns": {"servers": rig.dns.spec, "timeout": "1s", "attempts": "2"},
        }
        for section, keys in list(base.items()) + list((overrides or {}).items()):
            merged.setdefault(section, collections.OrderedDict()).update(keys)
        super().__init__(merged, config_text=config_text)
        self.addr = host.ipv4
        self.port = self.listener_port("smtp")

    def __repr__(self):
        return "<NsInstance %s %s>" % (self.host.name, self.dir)

    def start(self, timeout=yubintest.START_TIMEOUT, wait_greeting=True):
        assert self.proc is None
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.host.ns, yubintest.YUBIN_BIN, "-c", self.conf,
             "serve"],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, cwd=self.dir,
            env=yubintest.sanitizer_env())
        logf.close()
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                self.exit_codes.append(rc)
                raise AssertionError("yubin serve (%s) exited %d at start-up\n%s"
                                     % (self.host.name, rc, self.log()))
            try:
                with socket.create_connection((self.addr, self.port), timeout=1) as c:
                    if not wait_greeting:
                        return self
                    c.settimeout(max(0.1, deadline - time.monotonic()))
                    if c.recv(3) == b"220":
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError("yubin serve (%s) did not listen on %s:%d within %gs\n%s"
                                     % (self.host.name, self.addr, self.port, timeout,
                                        self.log()))
            time.sleep(0.05)

    # ---- clients from the root namespace ----

    def smtp(self, ehlo=True, timeout=yubintest.IO_TIMEOUT, port=None):
        s = smtplib.SMTP(self.addr, port or self.port, local_hostname=yubintest.EHLO_NAME,
                         timeout=timeout)
        if ehlo:
            code, _ = s.ehlo()
            assert code == 250
        return s

    def raw(self, greet=True, timeout=yubintest.IO_TIMEOUT, port=None, tls=None,
            server_hostname=None):
        r = yubintest.RawSMTP(self.addr, port or self.port, timeout=timeout, tls=tls,
                              server_hostname=server_hostname or self.host.fqdn)
        if greet:
            rep = r.reply()
            assert rep.code == 220, rep
        return r

    def imap(self, user=None, password=yubintest.PASSWORD, timeout=yubintest.IO_TIMEOUT):
        """imaplib.IMAP4 on port 143 after STARTTLS (certificate not
        checked), logged in as user when given."""
        c = imaplib.IMAP4(self.addr, self.listener_port("imap"), timeout=timeout)
        c.starttls(yubintest.client_tls_context())
        if user is not None:
            c.login(user, password)
        return c

    def fetch_inbox(self, user, password=yubintest.PASSWORD):
        """Every message of user's INBOX over IMAP, as bytes, in UID order."""
        c = self.imap(user, password)
        try:
            typ, _ = c.select("INBOX")
            assert typ == "OK"
            typ, data = c.uid("SEARCH", None, "ALL")
            assert typ == "OK"
            out = []
            for uid in data[0].split():
                typ, msg = c.uid("FETCH", uid, "(BODY.PEEK[])")
                assert typ == "OK"
                out.append(msg[0][1])
            return out
        finally:
            try:
                c.logout()
            except (imaplib.IMAP4.error, OSError):
                pass

    def wait_for(self, predicate, timeout=30, interval=0.2, what="condition"):
        """Polls predicate() until true; fails with the server log."""
        deadline = time.monotonic() + timeout
        while True:
            v = predicate()
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError("%s: not within %gs\n%s" % (what, timeout, self.log()))
            time.sleep(interval)


class Rig:
    """The namespaces, links, addresses and DNS of one test. Use as a
    context manager or call close(); close() always removes everything."""

    def __init__(self, ipv6=True, publish_aaaa=None):
        global _rig_count
        pid = os.getpid()
        self.tag = "yb%d%s" % (pid, chr(ord("a") + _rig_count % 26))
        _rig_count += 1
        self.sw = self.tag + "-sw"
        self.root_if = self.tag + "r"
        if len(self.root_if) > 15:
            raise RuntimeError("pid too large for an interface name: %d" % pid)
        self.net4 = self._pick_net4(pid)
        self.net6 = "fd79:6275:%x:%x" % ((pid >> 16) & 0xffff, pid & 0xffff)
        self.ipv6 = ipv6
        self.root_ipv4 = self.net4 + ".254"
        self.root_ipv6 = self.net6 + "::fe"
        self.namespaces = []
        self.instances = []
        self.hosts = collections.OrderedDict()
        self.dns = None
        self.publish_aaaa = ipv6 if publish_aaaa is None else publish_aaaa
        try:
            sweep_stale()
            self._build()
        except BaseException:
            self.close(check=False)
            raise

    @staticmethod
    def _pick_net4(pid):
        """10.A.B from the pid, skipping /24s the root namespace routes."""
        routes = ip("-4", "route", "show", "table", "all", check=False).stdout
        for i in range(256):
            n = (pid + i * 7919) % 16384
            net = "10.%d.%d" % (64 + n // 256, n % 256)
            if (net + ".") not in routes:
                return net
        raise RuntimeError("no free 10.x.y.0/24")

    def _netns(self, name):
        ip("netns", "add", name)
        self.namespaces.append(name)
        ip("-n", name, "link", "set", "lo", "up")

    def _build(self):
        self._netns(self.sw)
        ip("-n", self.sw, "link", "add", "br0", "type", "bridge")
        ip("-n", self.sw, "link", "set", "br0", "up")
        for name, (domain, fqdn, number, users) in HOSTS.items():
            h = Host(self, name, domain, fqdn, number, users)
            self._netns(h.ns)
            port = "h%d" % number
            ip("-n", self.sw, "link", "add", port, "type", "veth", "peer", "name", "eth0",
               "netns", h.ns)
            ip("-n", self.sw, "link", "set", port, "master", "br0", "up")
            ip("-n", h.ns, "addr", "add", h.ipv4 + "/24", "dev", "eth0")
            if self.ipv6:
                ip("-n", h.ns, "addr", "add", h.ipv6 + "/64", "dev", "eth0", "nodad")
            ip("-n", h.ns, "link", "set", "eth0", "up")
            self.hosts[name] = h
        ip("link", "add", self.root_if, "type", "veth", "peer", "name", "up0",
           "netns", self.sw)
        ip("-n", self.sw, "link", "set", "up0", "master", "br0", "up")
        ip("addr", "add", self.root_ipv4 + "/24", "dev", self.root_if)
        if self.ipv6:
            ip("addr", "add", self.root_ipv6 + "/64", "dev", self.root_if, "nodad")
        ip("link", "set", self.root_if, "up")
        self._wait_links()
        self.dns = dnstest.TestDNS(self.root_ipv4).start()
        self.dns.load(self.zone())

    def _wait_links(self, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            down = [h.name for h in self.hosts.values()
                    if "LOWER_UP" not in ip("-n", h.ns, "link", "show", "eth0").stdout]
            if "LOWER_UP" not in ip("link", "show", self.root_if).stdout:
                down.append("root")
            if not down:
                return
            if time.monotonic() > deadline:
                raise RuntimeError("links not up: %s" % down)
            time.sleep(0.02)

    def zone(self):
        z = []
        for h in self.hosts.values():
            z.append((h.domain, "MX", "10 " + h.fqdn))
            z.append((h.fqdn, "A", h.ipv4))
            if self.publish_aaaa and h.ipv6:
                z.append((h.fqdn, "AAAA", h.ipv6))
        z.append(("nullmx.example", "MX", "0 ."))
        z.append(("nowhere.example", "TXT", "exists, without MX or address"))
        return z

    def host(self, name):
        return self.hosts[name]

    @property
    def example(self):
        return self.hosts["mx-example"]

    @property
    def hogehoge(self):
        return self.hosts["mx-hogehoge"]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close(check=exc[0] is None)

    def close(self, check=True):
        """Stops every server (SIGTERM; exit 0 and a log free of sanitizer
        reports expected when check), stops the DNS server, deletes the
        namespaces (and with them every link). Problems are raised after
        everything is gone."""
        problems = []
        for inst in self.instances:
            if inst.running():
                rc = inst.stop()
                if rc != 0:
                    problems.append("yubin serve (%s) exited %r after SIGTERM (want 0)\n%s"
                                    % (inst.host.name, rc, inst.log()))
                    continue
            if os.path.exists(inst.log_path) and yubintest.sanitizer_lines(inst.log_text()):
                problems.append("sanitizer report in the log of %s\n%s"
                                % (inst.host.name, inst.log()))
        if self.dns is not None:
            self.dns.stop()
            self.dns = None
        for ns in reversed(self.namespaces):
            _kill_netns_pids(ns)
            ip("netns", "del", ns, check=False)
        self.namespaces = []
        ip("link", "del", self.root_if, check=False)   # normally gone already
        keep = bool(problems) or bool(os.environ.get("YUBIN_KEEP"))
        for inst in self.instances:
            if keep:
                sys.stderr.write("kept %s\n" % inst.dir)
            else:
                inst.cleanup()
        self.instances = []
        if problems and check:
            raise AssertionError("\n\n".join(problems))
