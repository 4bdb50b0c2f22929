"""`yubin domain add|del|list`."""

import pytest


def domains(inst):
    return inst.lines("domain", "list")


def test_domain_list_empty(instance):
    rc, out, err = instance.cli("domain", "list")
    assert rc == 0, err
    assert out.strip() == ""


def test_domain_add_list_del(instance):
    assert instance.cli("domain", "add", "example.com")[0] == 0
    assert instance.cli("domain", "add", "example.net")[0] == 0
    assert sorted(domains(instance)) == ["example.com", "example.net"]
    rc, out, err = instance.cli("domain", "del", "example.net")
    assert rc == 0, err
    assert domains(instance) == ["example.com"]


def test_domain_add_duplicate(instance):
    instance.add_domain("example.com")
    rc, out, err = instance.cli("domain", "add", "example.com")
    assert rc == 1
    assert err.strip(), "no message on stderr"
    assert "example.com" in err
    assert domains(instance) == ["example.com"]


def test_domain_add_duplicate_other_case(instance):
    # Domain names are case-insensitive (RFC 5321 2.4).
    instance.add_domain("example.com")
    rc, out, err = instance.cli("domain", "add", "EXAMPLE.Com")
    assert rc == 1, (out, err)
    assert err.strip()
    assert domains(instance) == ["example.com"]


@pytest.mark.parametrize("bad", ["", "a b.example", "exa@mple.com", "-bad.example",
                                 "example..com", "[127.0.0.1]"])
def test_domain_add_malformed(instance, bad):
    rc, out, err = instance.cli("domain", "add", bad)
    assert rc == 1, (bad, out, err)
    assert err.strip()
    assert domains(instance) == []


def test_domain_del_missing(instance):
    instance.add_domain("example.com")
    rc, out, err = instance.cli("domain", "del", "nowhere.example")
    assert rc == 1
    assert err.strip()
    assert domains(instance) == ["example.com"]


def test_domain_del_with_users(instance):
    instance.add_domain("example.com")
    instance.add_user("shiroyagi@example.com")
    rc, out, err = instance.cli("domain", "del", "example.com")
    assert rc == 1
    assert err.strip()
    assert domains(instance) == ["example.com"]
    assert instance.lines("user", "list") == ["shiroyagi@example.com"]
    # Once the users are gone, the domain can go.
    instance.cli_ok("user", "del", "shiroyagi@example.com")
    rc, out, err = instance.cli("domain", "del", "example.com")
    assert rc == 0, err
    assert domains(instance) == []


def test_domain_del_with_aliases(instance):
    instance.add_domain("example.com")
    instance.cli_ok("alias", "add", "info@example.com", "someone@example.org")
    rc, out, err = instance.cli("domain", "del", "example.com")
    assert rc == 1
    assert err.strip()
    assert domains(instance) == ["example.com"]


def test_domain_missing_argument(instance):
    rc, out, err = instance.cli("domain", "add")
    assert rc == 2
    assert err.strip()


def test_domain_unknown_action(instance):
    rc, out, err = instance.cli("domain", "frobnicate", "example.com")
    assert rc == 2
    assert err.strip()
    assert domains(instance) == []
