"""`yubin dns mx` and `yubin dns addr` against a test DNS server: the MX
rules of RFC 5321 5.1 and RFC 7505 as the relay will apply them, and the
line between permanent failures (exit 1: bounce) and temporary ones
(exit 75: retry)."""

import socket
import time

import pytest

import dnstest
from dnstest import dns_overrides

EX_TEMPFAIL = 75


def mx(inst, domain):
    rc, out, err = inst.cli("dns", "mx", domain)
    return rc, out.splitlines(), err


def addr(inst, host):
    rc, out, err = inst.cli("dns", "addr", host)
    return rc, out.splitlines(), err


def test_mx_preference_order(resolver):
    rc, lines, err = mx(resolver, "example.com")
    assert rc == 0, err
    assert lines == ["10 mx1.example.com", "20 mx2.example.com"]


def test_mx_case_and_final_dot(resolver):
    rc, lines, err = mx(resolver, "EXAMPLE.com.")
    assert rc == 0, err
    assert lines == ["10 mx1.example.com", "20 mx2.example.com"]


def test_mx_equal_preferences_shuffled(resolver):
    """RFC 5321 5.1: equal preferences in random order. Over 50 runs both
    of the two at 10 come first (the chance that one never does is 2^-49),
    and the one at 20 is always last."""
    firsts = set()
    for _ in range(50):
        rc, lines, err = mx(resolver, "hogehoge.com")
        assert rc == 0, err
        assert len(lines) == 3
        assert sorted(lines[:2]) == ["10 mx-a.hogehoge.com", "10 mx-b.hogehoge.com"]
        assert lines[2] == "20 mx-c.hogehoge.com"
        firsts.add(lines[0])
        if len(firsts) == 2:
            break
    assert firsts == {"10 mx-a.hogehoge.com", "10 mx-b.hogehoge.com"}


def test_mx_implicit(resolver):
    """No MX record but an address: the domain is its own exchanger."""
    rc, lines, err = mx(resolver, "nomx.example")
    assert rc == 0, err
    assert lines == ["0 nomx.example implicit"]
    rc, lines, err = addr(resolver, "nomx.example")
    assert rc == 0, err
    assert lines == ["2001:db8::30", "192.0.2.30"]


def test_mx_implicit_without_address(resolver):
    """No MX and no address: the implicit MX leads nowhere, permanently."""
    rc, lines, err = mx(resolver, "noaddr.example")
    assert rc == 0, err
    assert lines == ["0 noaddr.example implicit"]
    rc, lines, err = addr(resolver, "noaddr.example")
    assert rc == 1
    assert lines == []
    assert "no address" in err


def test_null_mx(resolver):
    """RFC 7505: '0 .' alone means no mail, even though the domain has an
    A record."""
    rc, lines, err = mx(resolver, "nullmx.example")
    assert rc == 1
    assert lines == []
    assert "null MX" in err and "accepts no mail" in err


def test_nxdomain(resolver):
    rc, lines, err = mx(resolver, "nx.example")
    assert rc == 1
    assert lines == []
    assert "NXDOMAIN" in err
    rc, lines, err = addr(resolver, "nx.example")
    assert rc == 1
    assert "NXDOMAIN" in err


def test_servfail_is_temporary(resolver):
    for cmd in (mx, addr):
        rc, lines, err = cmd(resolver, "servfail.example")
        assert rc == EX_TEMPFAIL, err
        assert lines == []
        assert "temporary" in err


def test_refused_is_temporary(resolver):
    rc, lines, err = mx(resolver, "refused.example")
    assert rc == EX_TEMPFAIL, err


def test_timeout_is_temporary(yubin_factory, dns_server):
    """A server that never answers: temporary, after [dns] timeout."""
    hole = dnstest.BlackHole()
    try:
        inst = yubin_factory(dns_overrides(hole.spec, timeout="1s", attempts="1"),
                             start=False)
        t0 = time.monotonic()
        rc, lines, err = mx(inst, "example.com")
        took = time.monotonic() - t0
        assert rc == EX_TEMPFAIL, err
        assert "timeout" in err
        assert 0.9 < took < 10, took
    finally:
        hole.close()


def test_silent_name_is_temporary(resolver):
    """Our own server drops queries for one name: a timeout too."""
    rc, lines, err = mx(resolver, "silent.example")
    assert rc == EX_TEMPFAIL, err
    assert "timeout" in err


def test_second_server_after_silent_first(yubin_factory, dns_server):
    """servers on two lines: the second is asked when the first is silent."""
    hole = dnstest.BlackHole()
    try:
        inst = yubin_factory(start=False)
        inst.cfg["dns"] = {"servers": hole.spec, "timeout": "1s", "attempts": "1"}
        inst.write_config(None)
        with open(inst.conf, "a") as f:
            f.write("servers = %s\n" % dns_server.spec)
        rc, lines, err = mx(inst, "example.com")
        assert rc == 0, err
        assert lines == ["10 mx1.example.com", "20 mx2.example.com"]
    finally:
        hole.close()


def test_no_server_listening_is_temporary(yubin_factory):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # nothing listens there now: ICMP port unreachable
    inst = yubin_factory(dns_overrides("127.0.0.1:%d" % port), start=False)
    rc, lines, err = mx(inst, "example.com")
    assert rc == EX_TEMPFAIL, err


def test_addr_ipv6_first_interleaved(resolver):
    rc, lines, err = addr(resolver, "multi.example")
    assert rc == 0, err
    assert lines == ["2001:db8::51", "192.0.2.51", "2001:db8::52", "192.0.2.52"]


def test_addr_ipv6_only(resolver):
    rc, lines, err = addr(resolver, "v6only.example")
    assert rc == 0, err
    assert lines == ["2001:db8::60"]


def test_addr_ipv4_only(resolver):
    rc, lines, err = addr(resolver, "mx2.example.com")
    assert rc == 0, err
    assert lines == ["192.0.2.12"]


def test_cname_domain(resolver):
    """A CNAME'd domain: the MX of its target, as the resolver returns the
    chain; a CNAME'd host: the target's addresses."""
    rc, lines, err = mx(resolver, "alias.example")
    assert rc == 0, err
    assert lines == ["10 mx1.example.com", "20 mx2.example.com"]
    rc, lines, err = addr(resolver, "alias-host.example")
    assert rc == 0, err
    assert lines == ["2001:db8::11", "192.0.2.11"]
    rc, lines, err = addr(resolver, "dangling.example")
    assert rc == 1
    assert "NXDOMAIN" in err


def test_large_answer_over_tcp(resolver, dns_server):
    """40 MX do not fit in 512 bytes of UDP: truncated, asked again over
    TCP; the best 32 (DNS_MX_MAX) are kept."""
    rc, lines, err = mx(resolver, "many.example")
    assert rc == 0, err
    assert lines == ["%d mx%02d.many.example" % (i, i) for i in range(32)]
    assert ("many.example", "MX", "tcp") in dns_server.queries


@pytest.mark.parametrize("name", ["bad..example", "sp ace.example", "a.b$c", "a" * 64 + ".example"])
def test_bad_names_are_permanent(resolver, dns_server, name):
    before = len(dns_server.queries)
    rc, lines, err = mx(resolver, name)
    assert rc == 1, err
    assert "not a valid domain name" in err
    assert len(dns_server.queries) == before


def test_ipv6_server(yubin_factory):
    """[dns] servers takes [ADDR]:PORT."""
    try:
        dns = dnstest.standard_server("::1")
    except OSError as e:
        pytest.skip("no IPv6 loopback: %s" % e)
    try:
        inst = yubin_factory(dns_overrides(dns.spec), start=False)
        rc, lines, err = mx(inst, "example.com")
        assert rc == 0, err
        assert lines == ["10 mx1.example.com", "20 mx2.example.com"]
    finally:
        dns.stop()


@pytest.mark.parametrize("value", ["dns.example", "127.0.0.1:0", "[::1", "1.2.3.4:x"])
def test_bad_servers_config(yubin_factory, value):
    inst = yubin_factory(dns_overrides(value), start=False)
    rc, out, err = inst.cli("dns", "mx", "example.com")
    assert rc == 2
    assert "[dns] servers" in err


def test_usage(resolver):
    rc, out, err = resolver.cli("dns", "mx")
    assert rc == 2
    assert "yubin dns mx DOMAIN" in err
    rc, out, err = resolver.cli("dns")
    assert rc == 2
    assert "yubin dns addr HOST" in err
