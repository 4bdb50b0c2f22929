"""`yubin user add|del|list|passwd` (passwords and hashes on stdin)."""

import os
import stat

import pytest

import yubintest
from yubintest import HASH_SHA512_CRYPT, HASH_YESCRYPT, HASH_ARGON2ID


@pytest.fixture
def inst(instance):
    instance.add_domain("example.com")
    return instance


def users(inst):
    return [l.split()[0] for l in inst.lines("user", "list")]


def test_user_list_empty(inst):
    rc, out, err = inst.cli("user", "list")
    assert rc == 0, err
    assert out.strip() == ""


def test_user_add_list(inst):
    rc, out, err = inst.cli("user", "add", "shiroyagi@example.com", input="pw one\n")
    assert rc == 0, err
    rc, out, err = inst.cli("user", "add", "kuroyagi@example.com", input="pw two\n")
    assert rc == 0, err
    assert sorted(users(inst)) == ["kuroyagi@example.com", "shiroyagi@example.com"]


def test_user_add_password_not_echoed_or_stored_plain(inst):
    secret = "Sup3r-secret-passw0rd"
    rc, out, err = inst.cli("user", "add", "shiroyagi@example.com", input=secret + "\n")
    assert rc == 0, err
    assert secret not in out and secret not in err
    # Nothing under data_dir holds the password in clear.
    for root, _dirs, names in os.walk(inst.data_dir):
        for n in names:
            with open(os.path.join(root, n), "rb") as f:
                assert secret.encode() not in f.read(), os.path.join(root, n)


def test_user_add_duplicate(inst):
    inst.add_user("shiroyagi@example.com")
    rc, out, err = inst.cli("user", "add", "shiroyagi@example.com", input="x\n")
    assert rc == 1
    assert err.strip()
    assert users(inst) == ["shiroyagi@example.com"]


def test_user_add_duplicate_domain_case(inst):
    inst.add_user("shiroyagi@example.com")
    rc, out, err = inst.cli("user", "add", "shiroyagi@EXAMPLE.COM", input="x\n")
    assert rc == 1
    assert users(inst) == ["shiroyagi@example.com"]


def test_user_add_unknown_domain(inst):
    rc, out, err = inst.cli("user", "add", "someone@unknown.example", input="pw\n")
    assert rc == 1
    assert err.strip()
    assert "unknown.example" in err
    assert users(inst) == []
    assert inst.lines("domain", "list") == ["example.com"]


@pytest.mark.parametrize("bad", ["no-at-sign", "a@", "@b", "@example.com", "a b@c",
                                 "a b@example.com", "a@b@example.com", "",
                                 "<a@example.com>", "a@example.com\n"])
def test_user_add_malformed(inst, bad):
    rc, out, err = inst.cli("user", "add", bad, input="pw\n")
    assert rc == 1, (bad, out, err)
    assert err.strip()
    assert users(inst) == []


def test_user_add_empty_password(inst):
    for pw in ("\n", ""):
        rc, out, err = inst.cli("user", "add", "shiroyagi@example.com", input=pw)
        assert rc == 1, repr(pw)
        assert err.strip()
    assert users(inst) == []


def test_user_del(inst):
    inst.add_user("shiroyagi@example.com")
    inst.add_user("kuroyagi@example.com")
    rc, out, err = inst.cli("user", "del", "shiroyagi@example.com")
    assert rc == 0, err
    assert users(inst) == ["kuroyagi@example.com"]


def test_user_del_missing(inst):
    inst.add_user("kuroyagi@example.com")
    rc, out, err = inst.cli("user", "del", "shiroyagi@example.com")
    assert rc == 1
    assert err.strip()
    assert users(inst) == ["kuroyagi@example.com"]


def test_user_readd_after_del(inst):
    inst.add_user("shiroyagi@example.com")
    inst.cli_ok("user", "del", "shiroyagi@example.com")
    rc, out, err = inst.cli("user", "add", "shiroyagi@example.com", input="again\n")
    assert rc == 0, err
    assert users(inst) == ["shiroyagi@example.com"]


def test_user_passwd(inst):
    inst.add_user("shiroyagi@example.com")
    rc, out, err = inst.cli("user", "passwd", "shiroyagi@example.com", input="new password\n")
    assert rc == 0, err
    assert users(inst) == ["shiroyagi@example.com"]


def test_user_passwd_empty_refused(inst):
    inst.add_user("shiroyagi@example.com")
    rc, out, err = inst.cli("user", "passwd", "shiroyagi@example.com", input="\n")
    assert rc == 1
    assert err.strip()


def test_user_passwd_missing_user(inst):
    rc, out, err = inst.cli("user", "passwd", "ghost@example.com", input="pw\n")
    assert rc == 1
    assert err.strip()
    assert users(inst) == []


@pytest.mark.parametrize("hash_", [
    HASH_SHA512_CRYPT,
    "{SHA512-CRYPT}" + HASH_SHA512_CRYPT,
    HASH_YESCRYPT,
    HASH_ARGON2ID,
], ids=["sha512-crypt", "dovecot-sha512-crypt", "yescrypt", "argon2id"])
def test_user_add_hash(inst, hash_):
    rc, out, err = inst.cli("user", "add", "--hash", "shiroyagi@example.com", input=hash_ + "\n")
    assert rc == 0, err
    assert users(inst) == ["shiroyagi@example.com"]


@pytest.mark.parametrize("hash_", [
    "{PLAIN}secret",
    "{CLEARTEXT}secret",
    "secret",
    "",
    "$1$saltsalt$abcdefghijklmnopqrstuv",      # MD5-crypt: too weak
    "$6$short",                                 # truncated
    "$argon2id$garbage",
], ids=["plain", "cleartext", "bare-word", "empty", "md5-crypt", "truncated-sha512",
        "bad-argon2"])
def test_user_add_hash_refused(inst, hash_):
    rc, out, err = inst.cli("user", "add", "--hash", "shiroyagi@example.com", input=hash_ + "\n")
    assert rc == 1, (hash_, out, err)
    assert err.strip()
    assert users(inst) == []


def test_user_passwd_hash(inst):
    inst.add_user("shiroyagi@example.com")
    rc, out, err = inst.cli("user", "passwd", "--hash", "shiroyagi@example.com",
                            input=HASH_ARGON2ID + "\n")
    assert rc == 0, err
    rc, out, err = inst.cli("user", "passwd", "--hash", "shiroyagi@example.com",
                            input="{PLAIN}secret\n")
    assert rc == 1


def test_data_files_belong_to_service_user(inst):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    import pwd
    nobody = pwd.getpwnam("nobody").pw_uid
    inst.add_user("shiroyagi@example.com")
    st = os.stat(inst.data_dir)
    assert st.st_uid == nobody
    for root, dirs, names in os.walk(inst.data_dir):
        for n in dirs + names:
            p = os.path.join(root, n)
            st = os.lstat(p)
            assert st.st_uid == nobody, "%s belongs to uid %d" % (p, st.st_uid)
            assert not st.st_mode & stat.S_IWOTH, p
