"""Privileges ([M8] item 5) beyond tests/proto/smtp/test_smtp_serve.py
(which checks the uid and gid after the drop and the refusal to start as
root without [server] user): what the server holds after start-up, the
modes of what it writes, and the systemd unit in contrib/.
"""

import os
import re
import shutil
import stat
import subprocess

import pytest

import yubintest
from yubintest import make_msg, send_data, unique

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
UNIT = os.path.join(ROOT, "contrib", "yubin.service")

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


@as_root
def test_no_way_back_to_root_after_start(yubin_factory):
    """Started as root: after the drop, every uid and gid is the user's,
    and no capability is left in any set (so setuid(0) cannot work; the
    server itself checks that it fails and dies otherwise)."""
    srv = yubin_factory(overrides={"server": {"user": "nobody"}},
                        provision=yubintest.provision_standard)
    st = proc_status(srv.proc.pid)
    assert "0" not in st["Uid"] and "0" not in st["Gid"], st
    for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(st[cap][0], 16) == 0, (cap, st[cap])
    # It still serves after all that.
    rep = send_data(srv.session(), "a@example.org", ["ushi@example.com"],
                    make_msg(unique("caps"), to="ushi@example.com"))
    assert rep.code == 250, rep


def test_data_files_have_restrictive_modes(yubin_factory):
    """Nothing in data_dir is readable or writable by others, nor writable
    by the group: files 0640 at most (the TLS key 0600), folders 0750."""
    srv = yubin_factory(provision=yubintest.provision_standard)
    rep = send_data(srv.session(), "a@example.org", ["ushi@example.com"],
                    make_msg(unique("modes"), to="ushi@example.com"))
    assert rep.code == 250, rep
    srv.stop_clean()
    seen = 0
    for root, dirs, files in os.walk(srv.data_dir):
        for name in dirs + files:
            path = os.path.join(root, name)
            mode = stat.S_IMODE(os.lstat(path).st_mode)
            assert mode & 0o027 == 0, "%s has mode %04o" % (path, mode)
            seen += 1
    assert seen >= 4     # the database, msg/ and a body at least
    key = os.path.join(srv.dir, "tls", "key.pem")
    if os.path.exists(key):
        mode = stat.S_IMODE(os.stat(key).st_mode)
        assert mode & 0o077 == 0, "the TLS key has mode %04o" % mode


def unit_settings():
    out = {}
    with open(UNIT) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", ";", "[")):
                continue
            k, _, v = line.partition("=")
            out.setdefault(k, []).append(v)
    return out


def test_systemd_unit_sandboxing():
    """contrib/yubin.service runs as its own user with only
    CAP_NET_BIND_SERVICE, and sandboxes the rest."""
    s = unit_settings()
    want = {
        "User": "yubin", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
        "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
        "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
        "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
        "ReadWritePaths": "/var/lib/yubin", "RestrictSUIDSGID": "yes",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes", "MemoryDenyWriteExecute": "yes",
    }
    for k, v in want.items():
        assert s.get(k) == [v], (k, s.get(k))
    assert re.match(r"^/\S+/yubin -c /etc/yubin/yubin.conf serve$", s["ExecStart"][0])


def test_systemd_unit_verifies(tmp_path):
    """`systemd-analyze verify` accepts the unit (with ExecStart pointing
    at the binary under test, as verify wants it to exist), and `security
    --offline` rates its exposure low (below 3.0 of 10)."""
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is missing (apt-get install systemd)"
    unit = tmp_path / "yubin.service"
    with open(UNIT) as f:
        text = f.read()
    unit.write_text(text.replace("/usr/local/bin/yubin", yubintest.YUBIN_BIN))
    p = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True)
    assert p.returncode == 0 and "yubin.service" not in p.stderr, p.stderr
    p = subprocess.run([tool, "security", "--offline=yes", "--no-pager", str(unit)],
                       capture_output=True, text=True)
    m = re.search(r"Overall exposure level for yubin.service: (\d+\.\d+)", p.stdout)
    assert m, p.stdout[-2000:] + p.stderr
    assert float(m.group(1)) < 3.0, p.stdout
