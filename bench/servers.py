"""Private instances of the servers `make bench` compares: yubin, Postfix,
Dovecot and smtp-sink, each in its own temp folder, on loopback ports the
OS hands out, with nothing system-wide touched and nothing able to leave
the machine. Standard library only."""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time

DOMAIN = "example.com"
PASSWORD = "bench-password"
NOBODY = pwd.getpwnam("nobody")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_greeting(port, prefix, timeout=60.0):
    """Seconds until a connection to port gets a greeting starting with
    prefix (bytes); raises after timeout."""
    t0 = time.monotonic()
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
                if c.recv(64).startswith(prefix):
                    return time.monotonic() - t0
        except OSError:
            pass
        if time.monotonic() - t0 > timeout:
            raise RuntimeError("no greeting on port %d after %gs" % (port, timeout))
        time.sleep(0.01)


def rss_kb(pid):
    """(RSS, PSS) in KiB of one process."""
    rss = pss = 0
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def process_tree(root):
    """root and every process descended from it."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def proc_name(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


def chown_tree(path, uid, gid):
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            os.lchown(os.path.join(root, n), uid, gid)


class Yubin:
    name = "yubin"

    def __init__(self, binary, workdir, users=(), io_threads=0):
        self.bin = binary
        self.dir = os.path.join(workdir, "yubin")
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.smtp_port, self.imap_port, self.pop3_port = free_port(), free_port(), free_port()
        self.conf = os.path.join(self.dir, "yubin.conf")
        with open(self.conf, "w") as f:
            f.write("""[server]
hostname = bench.yubin.test
data_dir = data
tls_cert = tls/cert.pem
tls_key = tls/key.pem
tls_selfsigned = yes
log_level = warn
io_threads = %d
%s
[smtp]
listen = 127.0.0.1:%d

[imap]
listen = 127.0.0.1:%d

[pop3]
listen = 127.0.0.1:%d

[limits]
max_message_size = 20M
max_connections = 0
max_connections_per_ip = 0
# 10,000 IDLE connections over 100 accounts; Dovecot's
# mail_max_userip_connections is raised the same way.
max_sessions_per_user = 0

# The peers check no SPF, DKIM or DMARC (Postfix's defaults); so that
# the servers do the same work, neither does yubin here. The machine has
# no Internet: with the checks on, each message would wait on the
# resolver instead.
[mailauth]
spf = no
dkim = no
dmarc = no
""" % (io_threads, "user = nobody" if os.geteuid() == 0 else "",
       self.smtp_port, self.imap_port, self.pop3_port))
        self.proc = None
        self.cli("domain", "add", DOMAIN)
        self.add_users(users)

    def cli(self, *args, input=b""):
        p = subprocess.run([self.bin, "-c", self.conf] + list(args), input=input,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.dir)
        if p.returncode != 0:
            raise RuntimeError("yubin %s: %s" % (" ".join(args), p.stderr.decode()))
        return p.stdout.decode()

    def add_users(self, users):
        for u in users:
            self.cli("user", "add", "%s@%s" % (u, DOMAIN), input=(PASSWORD + "\n").encode())

    def start(self):
        log = open(os.path.join(self.dir, "server.log"), "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen([self.bin, "-c", self.conf, "serve"], cwd=self.dir,
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        wait_greeting(self.smtp_port, b"220")
        wait_greeting(self.imap_port, b"* OK")
        return time.monotonic() - t0

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def count(self, user):
        out = self.cli("mail", "list", "%s@%s" % (user, DOMAIN))
        return max(0, len([l for l in out.splitlines() if l.strip()]) - 1)

    def delivered(self, user, want):
        return self.count(user) >= want

    def pids(self):
        return process_tree(self.proc.pid)

    def version(self):
        try:
            return subprocess.run(["git", "-C", os.path.dirname(os.path.dirname(
                os.path.abspath(__file__))), "describe", "--always", "--dirty"],
                stdout=subprocess.PIPE, text=True).stdout.strip()
        except OSError:
            return "?"


class Postfix:
    """Postfix with its own config_directory and queue_directory, SMTP on a
    loopback high port, delivering to Maildir virtual mailboxes with its
    default durability (cleanup fsyncs the queue file before smtpd's 250;
    virtual(8) fsyncs each Maildir file). default, relay and local
    transports are error: nothing can leave."""
    name = "postfix"

    def __init__(self, workdir, users):
        self.dir = os.path.join(workdir, "postfix")
        self.etc = os.path.join(self.dir, "etc")
        self.queue = os.path.join(self.dir, "queue")
        self.data = os.path.join(self.dir, "data")
        self.vmail = os.path.join(self.dir, "vmail")
        for d in (self.etc, self.queue, self.data, self.vmail):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.dir, 0o755)
        pf = pwd.getpwnam("postfix")
        os.chown(self.data, pf.pw_uid, pf.pw_gid)
        chown_tree(self.vmail, NOBODY.pw_uid, NOBODY.pw_gid)
        self.smtp_port = free_port()
        with open(os.path.join(self.etc, "vmailbox"), "w") as f:
            for u in users:
                f.write("%s@%s %s/%s/Maildir/\n" % (u, DOMAIN, DOMAIN, u))
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("""compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
mail_owner = postfix
setgid_group = postdrop
myhostname = bench.postfix.test
mydomain = postfix.test
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_peername_lookup = no
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
default_process_limit = 200
message_size_limit = 20971520
virtual_mailbox_limit = 0
mailbox_size_limit = 0
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {vmail}
virtual_mailbox_maps = texthash:{etc}/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_minimum_uid = 1
default_transport = error:bench: nothing leaves this machine
relay_transport = error:bench: nothing leaves this machine
local_transport = error:bench: no local delivery
alias_maps =
alias_database =
biff = no
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
""".format(queue=self.queue, data=self.data, vmail=self.vmail, etc=self.etc,
           domain=DOMAIN, uid=NOBODY.pw_uid, gid=NOBODY.pw_gid, dir=self.dir))
        # master.cf: the stock services, without chroot (the queue folder
        # here holds no copy of /etc), smtpd on our port only, and the
        # postlogd that maillog_file needs.
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write("""127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
""".format(port=self.smtp_port))
        self.master_pid = None

    def postfix(self, *args):
        p = subprocess.run(["postfix", "-c", self.etc] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            raise RuntimeError("postfix %s: %s" % (" ".join(args), p.stdout))
        return p.stdout

    def start(self):
        t0 = time.monotonic()
        self.postfix("start")
        wait_greeting(self.smtp_port, b"220")
        with open(os.path.join(self.data, "master.lock")) as f:
            self.master_pid = int(f.read().split()[0])
        return time.monotonic() - t0

    def stop(self):
        try:
            self.postfix("stop")
        except RuntimeError:
            pass
        # postfix stop returns before master has exited
        for _ in range(100):
            if self.master_pid is None or not os.path.exists("/proc/%d" % self.master_pid):
                break
            time.sleep(0.1)

    def queue_empty(self):
        for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
            for _root, _dirs, files in os.walk(os.path.join(self.queue, sub)):
                if files:
                    return False
        return True

    def count(self, user):
        n = 0
        for sub in ("new", "cur"):
            try:
                n += len(os.listdir(os.path.join(self.vmail, DOMAIN, user, "Maildir", sub)))
            except FileNotFoundError:
                pass
        return n

    def delivered(self, user, want):
        return self.queue_empty() and self.count(user) >= want

    def version(self):
        return subprocess.run(["postconf", "-d", "-h", "mail_version"], stdout=subprocess.PIPE,
                              text=True).stdout.strip()


class Sink:
    """smtp-sink: speaks SMTP and stores nothing (the protocol's upper bound)."""
    name = "smtp-sink"

    def __init__(self, workdir):
        self.smtp_port = free_port()
        self.proc = None

    def start(self):
        t0 = time.monotonic()
        self.proc = subprocess.Popen(["smtp-sink", "-u", "nobody", "-c",
                                      "127.0.0.1:%d" % self.smtp_port, "1024"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_greeting(self.smtp_port, b"220")
        return time.monotonic() - t0

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait()
            self.proc = None

    def delivered(self, user, want):
        return True


class Dovecot:
    """Dovecot with its own config (-c), base_dir and state under a temp
    folder, IMAP and POP3 on loopback high ports, users from a passwd-file
    (PLAIN scheme), Maildir mailboxes with its default durability
    (mail_fsync = optimized). The login processes run in Dovecot's
    documented high-performance mode (service_count = 0: each serves many
    connections), which is how large installations run it; the imap and
    pop3 processes stay one per connection (Dovecot's default), with
    process_limit raised from 1024 for the 10,000 IDLE connections."""
    name = "dovecot"

    def __init__(self, workdir, users, mail_location="maildir:~/Maildir"):
        self.dir = os.path.join(workdir, "dovecot")
        self.run = os.path.join(self.dir, "run")
        self.mail = os.path.join(self.dir, "mail")
        for d in (self.run, self.mail, os.path.join(self.dir, "state")):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.dir, 0o755)
        chown_tree(self.mail, NOBODY.pw_uid, NOBODY.pw_gid)
        self.imap_port, self.pop3_port = free_port(), free_port()
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.passwd = os.path.join(self.dir, "passwd")
        self.write_users(users)
        with open(self.conf, "w") as f:
            f.write("""base_dir = {run}
state_dir = {dir}/state
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
instance_name = bench-dovecot
protocols = imap pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = {mail_location}
first_valid_uid = 1
default_process_limit = 12000
default_client_limit = 24000
default_vsz_limit = 1G
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/%d/%n
}}
service imap-login {{
  service_count = 0
  process_min_avail = 2
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  service_count = 0
  process_min_avail = 2
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service imap {{
  process_limit = 12000
}}
service pop3 {{
  process_limit = 12000
}}
service anvil {{
  client_limit = 30000
}}
service auth {{
  client_limit = 30000
}}
protocol imap {{
  mail_max_userip_connections = 100000
}}
protocol pop3 {{
  mail_max_userip_connections = 100000
}}
""".format(run=self.run, dir=self.dir, mail_location=mail_location, passwd=self.passwd,
           uid=NOBODY.pw_uid, gid=NOBODY.pw_gid, mail=self.mail,
           imap=self.imap_port, pop3=self.pop3_port))
        self.proc = None

    def write_users(self, users):
        with open(self.passwd, "w") as f:
            for u in users:
                f.write("%s@%s:{PLAIN}%s\n" % (u, DOMAIN, PASSWORD))

    def maildir(self, user):
        return os.path.join(self.mail, DOMAIN, user, "Maildir")

    def start(self):
        t0 = time.monotonic()
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", self.conf],
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_greeting(self.imap_port, b"* OK")
        wait_greeting(self.pop3_port, b"+OK")
        return time.monotonic() - t0

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def pids(self):
        return process_tree(self.proc.pid)

    def version(self):
        return subprocess.run(["dovecot", "--version"], stdout=subprocess.PIPE,
                              text=True).stdout.strip()
