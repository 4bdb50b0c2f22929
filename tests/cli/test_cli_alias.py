"""`yubin alias add|del|list`."""

import pytest


@pytest.fixture
def inst(instance):
    instance.add_domain("example.com")
    instance.add_user("shiroyagi@example.com")
    instance.add_user("kuroyagi@example.com")
    return instance


def aliases(inst):
    return sorted(" ".join(l.split()) for l in inst.lines("alias", "list"))


def test_alias_list_empty(inst):
    rc, out, err = inst.cli("alias", "list")
    assert rc == 0, err
    assert out.strip() == ""


def test_alias_add_list(inst):
    rc, out, err = inst.cli("alias", "add", "info@example.com", "shiroyagi@example.com")
    assert rc == 0, err
    assert aliases(inst) == ["info@example.com shiroyagi@example.com"]


def test_alias_several_targets(inst):
    inst.cli_ok("alias", "add", "team@example.com", "shiroyagi@example.com")
    inst.cli_ok("alias", "add", "team@example.com", "kuroyagi@example.com")
    inst.cli_ok("alias", "add", "team@example.com", "friend@remote.example")
    assert aliases(inst) == ["team@example.com friend@remote.example",
                             "team@example.com kuroyagi@example.com",
                             "team@example.com shiroyagi@example.com"]


def test_alias_catch_all(inst):
    rc, out, err = inst.cli("alias", "add", "@example.com", "shiroyagi@example.com")
    assert rc == 0, err
    assert aliases(inst) == ["@example.com shiroyagi@example.com"]


def test_alias_duplicate_pair(inst):
    inst.cli_ok("alias", "add", "info@example.com", "shiroyagi@example.com")
    rc, out, err = inst.cli("alias", "add", "info@example.com", "shiroyagi@example.com")
    assert rc == 1
    assert err.strip()
    assert aliases(inst) == ["info@example.com shiroyagi@example.com"]


def test_alias_source_in_unknown_domain(inst):
    rc, out, err = inst.cli("alias", "add", "info@unknown.example", "shiroyagi@example.com")
    assert rc == 1
    assert err.strip()
    assert aliases(inst) == []


@pytest.mark.parametrize("source,target", [
    ("no-at-sign", "shiroyagi@example.com"),
    ("a@", "shiroyagi@example.com"),
    ("a b@example.com", "shiroyagi@example.com"),
    ("info@example.com", "no-at-sign"),
    ("info@example.com", "a@"),
    ("info@example.com", "@b"),
    ("info@example.com", "a b@c"),
    ("info@example.com", ""),
])
def test_alias_malformed(inst, source, target):
    rc, out, err = inst.cli("alias", "add", source, target)
    assert rc == 1, (source, target, out, err)
    assert err.strip()
    assert aliases(inst) == []


def test_alias_del_one_target(inst):
    inst.cli_ok("alias", "add", "team@example.com", "shiroyagi@example.com")
    inst.cli_ok("alias", "add", "team@example.com", "kuroyagi@example.com")
    rc, out, err = inst.cli("alias", "del", "team@example.com", "kuroyagi@example.com")
    assert rc == 0, err
    assert aliases(inst) == ["team@example.com shiroyagi@example.com"]


def test_alias_del_all_targets(inst):
    inst.cli_ok("alias", "add", "team@example.com", "shiroyagi@example.com")
    inst.cli_ok("alias", "add", "team@example.com", "kuroyagi@example.com")
    inst.cli_ok("alias", "add", "info@example.com", "kuroyagi@example.com")
    rc, out, err = inst.cli("alias", "del", "team@example.com")
    assert rc == 0, err
    assert aliases(inst) == ["info@example.com kuroyagi@example.com"]


def test_alias_del_missing(inst):
    inst.cli_ok("alias", "add", "info@example.com", "kuroyagi@example.com")
    rc, out, err = inst.cli("alias", "del", "nothere@example.com")
    assert rc == 1
    assert err.strip()
    rc, out, err = inst.cli("alias", "del", "info@example.com", "shiroyagi@example.com")
    assert rc == 1
    assert err.strip()
    assert aliases(inst) == ["info@example.com kuroyagi@example.com"]
