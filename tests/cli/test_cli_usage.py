"""The command line itself: usage errors exit 2 with usage on stderr."""

import subprocess

import pytest

import yubintest


def run(*args):
    p = subprocess.run([yubintest.YUBIN_BIN] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
                       cwd="/tmp", env=yubintest.sanitizer_env())
    err = p.stderr.decode("utf-8", "replace")
    assert not yubintest.sanitizer_lines(err), err
    return p.returncode, p.stdout.decode("utf-8", "replace"), err


def test_no_arguments():
    rc, out, err = run()
    assert rc == 2
    assert "usage" in err.lower(), err


def test_config_but_no_subcommand(instance):
    rc, out, err = run("-c", instance.conf)
    assert rc == 2
    assert "usage" in err.lower(), err


@pytest.mark.parametrize("args", [["frobnicate"], ["domain"], ["user"], ["alias"],
                                  ["mail"], ["queue", "frobnicate"]])
def test_unknown_subcommand(instance, args):
    rc, out, err = run("-c", instance.conf, *args)
    assert rc == 2, (args, rc, err)
    assert "usage" in err.lower(), err


def test_password_never_on_command_line(instance):
    instance.add_domain("example.com")
    rc, out, err = run("-c", instance.conf, "user", "add", "a@example.com", "hunter2")
    assert rc == 2, (rc, out, err)
    assert instance.lines("user", "list") == []


def test_mail_list_unknown_user(instance):
    instance.add_domain("example.com")
    rc, out, err = instance.cli("mail", "list", "ghost@example.com")
    assert rc == 1
    assert err.strip()


def test_mail_list_new_user_is_empty(instance):
    instance.add_domain("example.com")
    instance.add_user("a@example.com")
    rows = instance.mail_list("a@example.com")
    assert rows == []


def test_mail_show_missing_uid(instance):
    instance.add_domain("example.com")
    instance.add_user("a@example.com")
    rc, out, err = instance.cli("mail", "show", "a@example.com", "INBOX", "1")
    assert rc == 1
    assert err.strip()


def test_queue_list_empty(instance):
    instance.add_domain("example.com")
    rc, out, err = instance.cli("queue", "list")
    assert rc == 0, err
