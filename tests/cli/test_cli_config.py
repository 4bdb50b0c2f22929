"""Config file errors: exit 2 with FILE:LINE and the key; listen errors."""

import os
import socket
import subprocess

import pytest

import yubintest


def config_lines(inst, extra_server=(), extra_smtp=(), extra_limits=(), extra_sections=()):
    """The default config as a list of lines, with extra lines appended to
    sections. Returns (lines, {marker: 1-based line number})."""
    lines = []
    marks = {}
    extras = {"server": extra_server, "smtp": extra_smtp, "limits": extra_limits}
    for section, keys in inst.cfg.items():
        lines.append("[%s]" % section)
        for k, v in keys.items():
            lines.append("%s = %s" % (k, v))
        for e in extras.get(section, ()):
            lines.append(e)
            marks[e] = len(lines)
        lines.append("")
    for e in extra_sections:
        for l in e.split("\n"):
            lines.append(l)
            marks[l] = len(lines)
    return lines, marks


def run(inst, *args, cwd=None):
    p = subprocess.run([yubintest.YUBIN_BIN, "-c", inst.conf] + list(args),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, cwd=cwd or inst.dir,
                       env=yubintest.sanitizer_env(), timeout=30)
    err = p.stderr.decode("utf-8", "replace")
    assert not yubintest.sanitizer_lines(err), err
    return p.returncode, p.stdout.decode("utf-8", "replace"), err


def check_error(inst, marker_line, marks, name, commands=(("domain", "list"), ("serve",))):
    line = marks[marker_line]
    for cmd in commands:
        rc, out, err = run(inst, *cmd)
        assert rc == 2, "`yubin %s` exited %d (want 2)\n%s" % (" ".join(cmd), rc, err)
        assert "%s:%d" % (inst.conf, line) in err, \
            "`yubin %s`: no %s:%d in %r" % (" ".join(cmd), inst.conf, line, err)
        assert name in err, err


def test_unknown_key(instance):
    lines, marks = config_lines(instance, extra_server=["bogus_key = 1"])
    instance.write_config("\n".join(lines) + "\n")
    check_error(instance, "bogus_key = 1", marks, "bogus_key")


def test_unknown_key_in_limits(instance):
    lines, marks = config_lines(instance, extra_limits=["max_frobs = 3"])
    instance.write_config("\n".join(lines) + "\n")
    check_error(instance, "max_frobs = 3", marks, "max_frobs")


def test_unknown_section(instance):
    lines, marks = config_lines(instance, extra_sections=["[bogus_section]\nkey = value"])
    instance.write_config("\n".join(lines) + "\n")
    rc, out, err = run(instance, "domain", "list")
    assert rc == 2, err
    assert "bogus_section" in err, err
    assert ("%s:%d" % (instance.conf, marks["[bogus_section]"]) in err or
            "%s:%d" % (instance.conf, marks["key = value"]) in err), err
    rc, out, err = run(instance, "serve")
    assert rc == 2, err
    assert "bogus_section" in err, err


@pytest.mark.parametrize("section,line,name", [
    ("limits", "max_recipients = lots", "max_recipients"),
    ("limits", "max_recipients = -1", "max_recipients"),
    ("limits", "max_message_size = 12Q", "max_message_size"),
    ("limits", "smtp_timeout = soon", "smtp_timeout"),
    ("limits", "max_errors = 99999999999999999999", "max_errors"),
    ("server", "tls_selfsigned = maybe", "tls_selfsigned"),
    ("server", "log_level = chatty", "log_level"),
    ("smtp", "bare_lf = sometimes", "bare_lf"),
])
def test_bad_value(instance, section, line, name):
    key = line.split(" = ")[0]
    # Replace the key if it is already set, else add it.
    instance.cfg[section].pop(key, None)
    lines, marks = config_lines(instance, **{"extra_" + section: [line]})
    instance.write_config("\n".join(lines) + "\n")
    check_error(instance, line, marks, name)


@pytest.mark.parametrize("value", ["127.0.0.1:notaport", "127.0.0.1:99999", "127.0.0.1"])
def test_bad_listen(instance, value):
    instance.cfg["smtp"].pop("listen")
    line = "listen = " + value
    lines, marks = config_lines(instance, extra_smtp=[line])
    instance.write_config("\n".join(lines) + "\n")
    rc, out, err = run(instance, "serve")
    assert rc == 2, err
    assert "listen" in err, err
    assert "%s:%d" % (instance.conf, marks[line]) in err, err


def test_missing_config_file(instance):
    p = subprocess.run([yubintest.YUBIN_BIN, "-c", os.path.join(instance.dir, "nope.conf"),
                        "domain", "list"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
                       env=yubintest.sanitizer_env())
    assert p.returncode == 2
    assert b"nope.conf" in p.stderr


def test_listen_port_in_use(instance):
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        instance.cfg["smtp"]["listen"] = "127.0.0.1:%d" % port
        instance.write_config()
        rc, out, err = run(instance, "serve")
        assert rc == 2, err
        assert "127.0.0.1:%d" % port in err, err
        assert len(err.strip().splitlines()) <= 3, "want a short clear message: %r" % err
    finally:
        busy.close()


def test_relative_paths_are_relative_to_config(instance):
    # Run from another folder: data_dir = data is next to the config file.
    rc, out, err = run(instance, "domain", "add", "example.com", cwd="/")
    assert rc == 0, err
    assert os.path.isdir(os.path.join(instance.dir, "data"))
    assert not os.path.exists("/data")
    rc, out, err = run(instance, "domain", "list", cwd="/tmp")
    assert rc == 0, err
    assert out.split() == ["example.com"]


def test_serve_makes_selfsigned_cert_relative_to_config(yubin_factory):
    srv = yubin_factory()
    assert os.path.exists(os.path.join(srv.dir, "tls", "cert.pem"))
    assert os.path.exists(os.path.join(srv.dir, "tls", "key.pem"))
    # A restart reuses the pair.
    with open(os.path.join(srv.dir, "tls", "cert.pem"), "rb") as f:
        first = f.read()
    srv.restart()
    with open(os.path.join(srv.dir, "tls", "cert.pem"), "rb") as f:
        assert f.read() == first


def test_comments_and_blank_lines(instance):
    text = open(instance.conf).read()
    text = "; a comment\n# another\n\n" + text.replace("[limits]", "[limits]\n; inline\n")
    instance.write_config(text)
    rc, out, err = run(instance, "domain", "list")
    assert rc == 0, err
