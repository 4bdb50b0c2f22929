#!/usr/bin/python3
"""Runs the SPF test suites (openspf RFC 7208 suite and its YAML cousins)
against the C evaluator.

There is no YAML parser in C here, so this reads the suites with
python3-yaml and writes a line format that tests/unit/test_spf.c reads on
stdin (--suite mode): every field tab-separated and %XX-escaped.

  Z <name> <TYPE> <value>      zone data: A AAAA MX PTR TXT SPF CNAME,
                               TIMEOUT, TXTNONE ("TXT: NONE")
  T <name> <helo> <ip> <mailfrom> <results,comma> <explanation or "-">
  H ...                        the same, the HELO identity checked first
  R <name> <TYPE>              drop the records of that name and type
  E                            end of scenario (the zone is dropped)

Usage: spf_suite.py TEST_SPF_BINARY SUITE.yml|DIR...   (under the testdata dir)
       (openspf format, or Stalwart's format for files in a directory
       named spf-stalwart-mail-auth; a DIR stands for its *.yml)"""
import os
import subprocess
import sys

import yaml


def esc(v):
    if isinstance(v, str):
        b = v.encode('utf-8')
    else:
        b = bytes(v)
    out = []
    for c in b:
        if c < 0x20 or c >= 0x7f or c in (0x25, 0x09):
            out.append('%%%02X' % c)
        else:
            out.append(chr(c))
    return ''.join(out)


def line(*fields):
    return '\t'.join(esc(str(f)) for f in fields) + '\n'


# pyspf's own set has cases for its non-RFC modes ("strict: 0" lax, "2"
# harsh): run with what RFC 7208 says instead.
PYSPF_RFC = {
    'default-modifier': ('neutral',
        'RFC 7208 6: "default=" is an unknown modifier, ignored; no match: neutral (4.7)'),
    'default-modifier-harsh': ('neutral', 'the same'),
}


def openspf(path):
    out = []
    with open(path, encoding='utf-8') as f:
        docs = list(yaml.safe_load_all(f))
    for doc in docs:
        if not doc:
            continue
        for name, records in (doc.get('zonedata') or {}).items():
            for r in records or []:
                if r == 'TIMEOUT':
                    out.append(line('Z', name, 'TIMEOUT', ''))
                    continue
                (typ, val), = r.items()
                if typ in ('TXT', 'SPF'):
                    if val == 'NONE' and typ == 'TXT':
                        out.append(line('Z', name, 'TXTNONE', ''))
                        continue
                    # a list: the record's character-strings, joined
                    # with nothing between (RFC 7208 3.3)
                    if isinstance(val, list):
                        val = ''.join(val)
                elif typ == 'MX':
                    val = val[1]
                out.append(line('Z', name, typ, val))
        for name, t in doc['tests'].items():
            res = t['result']
            res = ','.join(res) if isinstance(res, list) else res
            if 'strict' in t and name in PYSPF_RFC:
                res = PYSPF_RFC[name][0]
            exp = t.get('explanation')
            out.append(line('T', name, t.get('helo', ''), t['host'], t.get('mailfrom', ''),
                            res, '-' if exp is None else '=' + exp))
        out.append('E\n')
    return out


class PairLoader(yaml.SafeLoader):
    """Stalwart's files repeat keys under records: keep them all."""


def _pairs(loader, node):
    return [(loader.construct_object(k), loader.construct_object(v)) for k, v in node.value]


PairLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _pairs)


# Where Stalwart's files expect what RFC 7208 (and the openspf suite, which
# is the reference here) do not allow, the case is run with the RFC's
# result instead, and the reason is given: (file, scenario, item index).
STALWART_RFC = {
    ('all.yml', 'All test', 0): ('permerror',
        'RFC 7208 4.6: a syntax error anywhere (the unknown mechanism "ip:" '
        'after -all) is a permerror'),
    ('basic.yml', 'DNS Lookup Limits', 0): ('permerror',
        'RFC 7208 4.6.4: more than two void lookups is a permerror '
        '(openspf void-over-limit)'),
    ('exists.yml', 'Exists', 1): ('fail',
        'RFC 7208 5.7: exists asks A only, even for IPv6; the name has only AAAA'),
    ('ip.yml', 'IPv6 match', 3): ('fail',
        'RFC 7208 5: an IPv4 client matches ip4 only (openspf cidr6-ip4)'),
    ('macro.yml', 'Macro expansion 2', 1): ('fail',
        'RFC 7208 5.7: exists asks A only; the name has only AAAA'),
}


def stalwart(path):
    """Stalwart's files are sequences: records first, then test items whose
    keys apply in order (domain = HELO name, sender, spf = a record that
    replaces the domain's, ip, expect = "result [explanation]"). Its mock
    resolver maps an MX straight to addresses: here each address gets a
    host name of its own; names starting with _dns_error fail."""
    import ipaddress
    import re
    out = []
    with open(path, encoding='utf-8') as f:
        docs = list(yaml.load_all(f, Loader=PairLoader))

    def add(typ, rec, replace=False):
        name, _, val = rec.strip().partition(' ')
        val = val.strip()
        if typ == 'spf':
            if replace:
                out.append(line('R', name, 'SPF', ''))
            out.append(line('Z', name, 'SPF', val))
            for bad in re.findall(r'_dns_error[A-Za-z0-9._-]*', val):
                out.append(line('Z', bad.rstrip('.'), 'TIMEOUT', ''))
        elif typ == 'a' or typ == 'aaaa':
            for ip in val.split(','):
                ip = ipaddress.ip_address(ip.strip())
                out.append(line('Z', name, 'A' if ip.version == 4 else 'AAAA', str(ip)))
        elif typ == 'mx':
            for n, ip in enumerate(val.split(',')):
                ip = ipaddress.ip_address(ip.strip())
                host = 'mx%d.%s.mx-host.test' % (n, name)
                out.append(line('Z', name, 'MX', host))
                out.append(line('Z', host, 'A' if ip.version == 4 else 'AAAA', str(ip)))
        elif typ == 'ptr':
            rev = ipaddress.ip_address(name).reverse_pointer
            out.append(line('Z', rev, 'PTR', val))
        elif typ == 'txt' or typ == 'exp':
            out.append(line('Z', name, 'TXT', val))
        else:
            raise SystemExit('%s: unknown record type %s' % (path, typ))

    for n, doc in enumerate(docs):
        if not doc:
            continue
        d = dict(doc)
        for typ, rec in d.get('records') or []:
            add(typ, rec)
        state = {'domain': '', 'sender': '', 'ip': None}
        for i, item in enumerate(d.get('tests') or []):
            for k, v in item:
                v = '' if v is None else str(v)
                if k in ('spf', 'a', 'aaaa', 'mx', 'ptr', 'txt'):
                    add(k, v, replace=True)
                elif k in ('domain', 'sender', 'ip'):
                    state[k] = v.strip()
                    if k == 'domain' and v.startswith('_dns_error'):
                        out.append(line('Z', v.strip(), 'TIMEOUT', ''))
                    if k == 'sender' and '@_dns_error' in v:
                        out.append(line('Z', v.strip().split('@')[1], 'TIMEOUT', ''))
                elif k == 'expect':
                    res, _, exp = v.strip().partition(' ')
                    key = (os.path.basename(path), d.get('name', ''), i)
                    if key in STALWART_RFC:
                        res = STALWART_RFC[key][0]
                    # Stalwart's runner checks the HELO identity first, and
                    # a fail there decides (RFC 7208 2.3); line "H".
                    out.append(line('H', '%s: %s #%d' % (os.path.basename(path),
                                                          d.get('name', ''), i),
                                    state['domain'], state['ip'], state['sender'], res,
                                    '=' + exp if exp else '-'))
        out.append('E\n')
    return out


def main():
    exe = os.path.abspath(sys.argv[1])
    text = []
    paths = []
    # The suites live in ../shared/testdata next to the source tree, or
    # where YUBIN_TESTDATA says; a relative name is looked up there.
    here = os.path.dirname(os.path.abspath(__file__))
    roots = [os.environ.get('YUBIN_TESTDATA', ''),
             os.path.join(here, '..', '..', '..', 'shared', 'testdata'),
             '/work/shared/testdata']
    root = next((r for r in roots if r and os.path.isdir(r)), None)
    if root is None:
        raise SystemExit('no testdata directory (set YUBIN_TESTDATA)')
    for arg in sys.argv[2:]:
        arg = os.path.join(root, arg)
        if os.path.isdir(arg):
            paths += sorted(os.path.join(arg, f) for f in os.listdir(arg) if f.endswith('.yml'))
        else:
            paths.append(arg)
    if not paths:
        raise SystemExit('no suite files')
    for path in paths:
        if 'stalwart' in os.path.basename(os.path.dirname(path)):
            text += stalwart(path)
        else:
            text += openspf(path)
    r = subprocess.run([exe, '--suite'], input=''.join(text).encode('ascii'))
    sys.exit(r.returncode)


if __name__ == '__main__':
    main()
