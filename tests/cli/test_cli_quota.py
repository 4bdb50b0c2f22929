"""`yubin user quota ADDRESS [SIZE [MESSAGES]]`: sets and shows an
account's quota (RFC 9208 STORAGE and MESSAGE) and its usage."""

import pytest


@pytest.fixture
def inst(instance):
    instance.add_domain("example.com")
    instance.add_user("shiroyagi@example.com")
    return instance


def show(inst, address="shiroyagi@example.com"):
    head, row = inst.lines("user", "quota", address)
    assert head.split("\t") == ["ADDRESS", "STORAGE", "STORAGE_LIMIT", "MESSAGES",
                                "MESSAGE_LIMIT"]
    return row.split("\t")


def test_default_is_unlimited(inst):
    assert show(inst) == ["shiroyagi@example.com", "0", "none", "0", "none"]


@pytest.mark.parametrize("size,expect", [
    ("500M", str(500 << 20)), ("2G", str(2 << 30)), ("100k", str(100 << 10)),
    ("1048576", "1048576"), ("10MB", str(10 << 20)), ("3KiB", None),
    ("0", "none"), ("none", "none"),
])
def test_set_sizes(inst, size, expect):
    if expect is None:
        rc, out, err = inst.cli("user", "quota", "shiroyagi@example.com", size)
        assert rc != 0 and "not a size" in err
        return
    inst.cli_ok("user", "quota", "shiroyagi@example.com", size)
    assert show(inst)[2] == expect


def test_set_messages_and_clear(inst):
    inst.cli_ok("user", "quota", "SHIROYAGI@example.com", "1G", "5000")
    assert show(inst)[2:] == [str(1 << 30), "0", "5000"]
    # Without MESSAGES: no message limit.
    inst.cli_ok("user", "quota", "shiroyagi@example.com", "1G")
    assert show(inst)[4] == "none"
    inst.cli_ok("user", "quota", "shiroyagi@example.com", "none", "none")
    assert show(inst)[2:] == ["none", "0", "none"]


def test_errors(inst):
    rc, out, err = inst.cli("user", "quota", "nobody@example.com", "1M")
    assert rc != 0 and "no such user" in err
    rc, out, err = inst.cli("user", "quota", "nobody@example.com")
    assert rc != 0 and "no such user" in err
    rc, out, err = inst.cli("user", "quota", "shiroyagi@example.com", "1M", "many")
    assert rc != 0 and "not a number" in err
    rc, out, err = inst.cli("user", "quota", "shiroyagi@example.com", "-1")
    assert rc != 0
    rc, out, err = inst.cli("user", "quota", "shiroyagi@example.com", "99999999999T")
    assert rc != 0
