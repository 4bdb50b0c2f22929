"""`yubin dkim keygen|sign|verify`, and DKIM interop with an independent
implementation (Debian's python3-dkim, "dkimpy"): signed by yubin and
verified by dkimpy, signed by dkimpy and verified by yubin, for rsa-sha256
and ed25519-sha256 (RFC 8463) and every canonicalisation pair dkimpy makes.
"""

import base64
import os
import re
import stat
import subprocess

import dkim  # python3-dkim (scripts/deps.sh test)
import nacl.signing  # python3-nacl, a python3-dkim dependency
import pytest

TESTDATA = os.environ.get("YUBIN_TESTDATA", "/work/shared/testdata")

MESSAGE = (b"From: Shiro Yagi <shiroyagi@example.com>\r\n"
           b"To: Kuro Yagi <kuroyagi@example.org>\r\n"
           b"Subject: a letter   you will\r\n"
           b" not read\r\n"
           b"Date: Fri, 04 Dec 2026 05:00:00 +0000\r\n"
           b"Message-ID: <letter.1@example.com>\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n"
           b"\r\n"
           b"Kuro-san,\r\n"
           b"\r\n"
           b"  I ate your letter  before reading it. \t\r\n"
           b"What did it say?\r\n"
           b"\r\n"
           b"\r\n")


def keygen(instance, domain, selector, algorithm):
    rc, out, err = instance.cli("dkim", "keygen", domain, "--selector", selector,
                                "--algorithm", algorithm)
    assert rc == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    m = re.match(r'^(\S+)\. IN TXT((?: "[^"]*")+)$', lines[0])
    assert m, lines[0]
    assert m.group(1) == "%s._domainkey.%s" % (selector.lower(), domain.lower())
    txt = "".join(re.findall(r'"([^"]*)"', m.group(2)))
    path = os.path.join(instance.data_dir, "dkim", domain, selector + ".pem")
    return path, txt


def dnsfunc_for(records):
    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        txt = records.get(name.rstrip(".").lower())
        return txt.encode() if txt is not None else None
    return dnsfunc


def yubin_sign(instance, key_path, msg):
    path = os.path.join(instance.dir, "msg.eml")
    with open(path, "wb") as f:
        f.write(msg)
    rc, out, err = instance.cli_bytes("dkim", "sign", key_path, path)
    assert rc == 0, err
    return out


def yubin_verify(instance, msg, records, now=None):
    mpath = os.path.join(instance.dir, "verify.eml")
    dpath = os.path.join(instance.dir, "verify.dns")
    with open(mpath, "wb") as f:
        f.write(msg)
    with open(dpath, "w") as f:
        for name, txt in records.items():
            f.write("%s %s\n" % (name, txt))
    args = ["dkim", "verify", mpath, "--dns", dpath]
    if now is not None:
        args += ["--now", str(now)]
    rc, out, err = instance.cli(*args)
    return rc, out.strip().splitlines()


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
def test_keygen_layout_and_record(instance, algorithm):
    path, txt = keygen(instance, "Example.COM", "sel1", algorithm)
    # the domain is stored in lower case
    path = os.path.join(instance.data_dir, "dkim", "example.com", "sel1.pem")
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    with open(path) as f:
        assert f.read().startswith("-----BEGIN PRIVATE KEY-----")
    tags = dict(t.strip().split("=", 1) for t in txt.split(";"))
    assert tags["v"] == "DKIM1"
    assert tags["k"] == algorithm
    raw = base64.b64decode(tags["p"])
    if algorithm == "ed25519":
        assert len(raw) == 32          # RFC 8463 4.2: the bare key
    else:
        assert len(raw) > 256           # SubjectPublicKeyInfo of 2048 bits
    # a second key of the same name is refused, the first kept
    rc, out, err = instance.cli("dkim", "keygen", "example.com", "--selector", "sel1",
                                "--algorithm", algorithm)
    assert rc == 1 and "exists" in err, err
    with open(path) as f:
        assert f.read().startswith("-----BEGIN PRIVATE KEY-----")


def test_keygen_rsa_bits(instance):
    rc, out, err = instance.cli("dkim", "keygen", "example.com", "--selector", "big",
                                "--bits", "3072")
    assert rc == 0, err
    p = subprocess.run(["openssl", "pkey", "-in",
                        os.path.join(instance.data_dir, "dkim", "example.com", "big.pem"),
                        "-noout", "-text"], stdout=subprocess.PIPE, check=True).stdout
    assert b"3072 bit" in p


def test_keygen_default_selector(instance):
    rc, out, err = instance.cli("dkim", "keygen", "example.com", "--algorithm", "ed25519")
    assert rc == 0, err
    assert re.match(r"^ed25519-\d{6}\._domainkey\.example\.com\. IN TXT ", out), out
    sel = out.split(".", 1)[0]
    assert os.path.exists(os.path.join(instance.data_dir, "dkim", "example.com",
                                       sel + ".pem"))


@pytest.mark.parametrize("args", [
    ["dkim", "keygen", "example.com", "--algorithm", "dsa"],
    ["dkim", "keygen", "example.com", "--bits", "512"],
    ["dkim", "keygen", "example.com", "--bits", "2k"],
    ["dkim", "keygen", "../etc", "--selector", "x"],
    ["dkim", "keygen", "example.com", "--selector", "a/b"],
    ["dkim", "keygen", "example.com", "--selector", "../x"],
    ["dkim", "keygen"],
])
def test_keygen_refuses(instance, args):
    rc, out, err = instance.cli(*args)
    assert rc in (1, 2), (out, err)
    assert err.strip()
    assert not os.path.exists(os.path.join(instance.data_dir, "dkim", "etc"))


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
def test_signed_by_yubin_verified_by_dkimpy(instance, algorithm):
    path, txt = keygen(instance, "example.com", "y" + algorithm, algorithm)
    signed = yubin_sign(instance, path, MESSAGE)
    assert signed.startswith(b"DKIM-Signature: v=1; a=%s-sha256; c=relaxed/relaxed;"
                             % algorithm.encode())
    assert signed.endswith(MESSAGE)
    sig = signed[:len(signed) - len(MESSAGE)]
    assert b"h=from:from:" in sig.replace(b"\r\n\t", b"")  # From oversigned
    records = {"y%s._domainkey.example.com" % algorithm: txt}
    assert dkim.verify(signed, dnsfunc=dnsfunc_for(records))
    # and yubin agrees
    rc, res = yubin_verify(instance, signed, records)
    assert rc == 0 and res[0].startswith("pass d=example.com s=y%s" % algorithm), res
    # what the signature protects
    assert not dkim.verify(signed.replace(b"What did", b"What does"),
                           dnsfunc=dnsfunc_for(records))
    assert not dkim.verify(b"From: mallory@example.net\r\n" + signed,
                           dnsfunc=dnsfunc_for(records))
    assert not dkim.verify(signed.replace(b"MIME-Version: 1.0\r\n",
                                          b"MIME-Version: 1.0\r\nCc: eve@example.net\r\n"),
                           dnsfunc=dnsfunc_for(records))
    # relaxed/relaxed: refolding and trailing white space do not matter
    assert dkim.verify(b"Received: from a by b; Fri, 04 Dec 2026 05:00:01 +0000\r\n"
                       + signed.replace(b"you will\r\n not read", b"you will not read")
                       .replace(b"What did it say?", b"What did it say?  "),
                       dnsfunc=dnsfunc_for(records))


def dkimpy_keys(tmpdir):
    """Keys made outside yubin: an RSA-2048 PEM by openssl, an Ed25519 one
    by libsodium (python3-nacl), as dkimpy takes them."""
    rsa_path = os.path.join(tmpdir, "dkimpy-rsa.pem")
    subprocess.run(["openssl", "genrsa", "-out", rsa_path, "2048"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(rsa_path, "rb") as f:
        rsa_priv = f.read()
    pub = subprocess.run(["openssl", "rsa", "-in", rsa_path, "-pubout", "-outform", "DER"],
                         check=True, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL).stdout
    rsa_txt = "v=DKIM1; k=rsa; p=" + base64.b64encode(pub).decode()
    sk = nacl.signing.SigningKey.generate()
    ed_priv = base64.b64encode(bytes(sk))
    ed_txt = "v=DKIM1; k=ed25519; p=" + base64.b64encode(bytes(sk.verify_key)).decode()
    return {"rsa": (rsa_priv, rsa_txt), "ed25519": (ed_priv, ed_txt)}


@pytest.fixture(scope="module")
def foreign_keys(tmp_path_factory):
    return dkimpy_keys(str(tmp_path_factory.mktemp("dkimpy")))


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
@pytest.mark.parametrize("canon", [(b"simple", b"simple"), (b"simple", b"relaxed"),
                                   (b"relaxed", b"simple"), (b"relaxed", b"relaxed")])
def test_signed_by_dkimpy_verified_by_yubin(instance, foreign_keys, algorithm, canon):
    priv, txt = foreign_keys[algorithm]
    sig = dkim.sign(MESSAGE, b"py", b"example.com", priv, canonicalize=canon,
                    signature_algorithm=algorithm.encode() + b"-sha256",
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    signed = sig + MESSAGE
    records = {"py._domainkey.example.com": txt}
    rc, res = yubin_verify(instance, signed, records)
    assert rc == 0, res
    assert res == ["pass d=example.com s=py a=%s-sha256" % algorithm]
    # a changed body or header fails; an appended empty line does not
    rc, res = yubin_verify(instance, signed.replace(b"ate your", b"read your"), records)
    assert rc == 1 and res[0].startswith("fail "), res
    rc, res = yubin_verify(instance, signed.replace(b"Subject: a", b"Subject: A"), records)
    assert rc == 1 and res[0].startswith("fail "), res
    rc, res = yubin_verify(instance, signed + b"\r\n", records)
    assert rc == 0, res
    # the key revoked, or another one published
    rc, res = yubin_verify(instance, signed, {"py._domainkey.example.com": "v=DKIM1; p="})
    assert rc == 1 and res[0].startswith("permerror ") and "revoked" in res[0], res
    other = foreign_keys["ed25519" if algorithm == "rsa" else "rsa"][1]
    rc, res = yubin_verify(instance, signed, {"py._domainkey.example.com": other})
    assert rc == 1 and res[0].startswith("permerror "), res
    rc, res = yubin_verify(instance, signed, {"py._domainkey.example.com": "TEMPFAIL"})
    assert rc == 1 and res[0].startswith("temperror "), res


def test_dkimpy_length_tag_is_policy(instance, foreign_keys):
    # RFC 6376 8.2: with l= anyone may append to the body; yubin never
    # calls such a signature a pass once something was appended.
    priv, txt = foreign_keys["rsa"]
    sig = dkim.sign(MESSAGE, b"py", b"example.com", priv, length=True,
                    canonicalize=(b"relaxed", b"relaxed"))
    records = {"py._domainkey.example.com": txt}
    rc, res = yubin_verify(instance, sig + MESSAGE, records)
    assert rc == 0 and res[0].startswith("pass "), res
    rc, res = yubin_verify(instance, sig + MESSAGE + b"Click here: http://x.example/\r\n",
                           records)
    assert rc == 1 and res[0].startswith("policy "), res


def test_rfc8463_example_by_cli(instance):
    records = {}
    with open(os.path.join(TESTDATA, "dkim-rfc8463-example", "dns-txt-records.txt")) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            name, txt = line.rstrip("\n").split("\t", 1)
            records[name.rstrip(".")] = txt
    with open(os.path.join(TESTDATA, "dkim-rfc8463-example", "signed-message.eml"),
              "rb") as f:
        msg = f.read()
    rc, res = yubin_verify(instance, msg, records)
    assert rc == 0, res
    assert res == ["pass d=football.example.com s=brisbane a=ed25519-sha256",
                   "pass d=football.example.com s=test a=rsa-sha256"]
    # dkimpy agrees
    assert dkim.verify(msg, dnsfunc=dnsfunc_for(records))


def test_unsigned_message(instance):
    rc, res = yubin_verify(instance, MESSAGE, {})
    assert rc == 1 and res == ["none"], res
