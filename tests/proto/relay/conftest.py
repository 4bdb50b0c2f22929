"""The two-host rig for the relay scenarios ([M6], issue 7).

Two mail hosts, each a network namespace with its own address, a yubin
server started inside it on port 25 (and 587, 143, 110), and a test DNS
server that both reach. See relaytest.py for the topology.

Fixtures:
  rig     function scope: a relaytest.Rig, torn down after the test even
          when it fails (servers stopped with SIGTERM and required to exit
          0 with a log free of sanitizer reports, DNS stopped, namespaces
          and links deleted). Skips when not root.

The Rig:
  rig.example, rig.hogehoge       the two Hosts ("mx-example", "mx-hogehoge");
                                  rig.host(name) as well
  rig.dns                         dnstest.TestDNS on rig.root_ipv4:PORT;
                                  rig.dns.spec is "ADDR:PORT" for [dns] servers;
                                  rig.dns.add(name, type, value),
                                  .remove(name[, type]), .servfail(name),
                                  .refuse(name), .drop(name) (never answered),
                                  .heal(name), .queries, .count(name[, type])
  rig.root_ipv4, rig.root_ipv6    the root namespace's end of the network
  rig.ipv6                        hosts have IPv6 addresses too (default)
  rig.publish_aaaa                the zone holds their AAAA records (default)

A Host:
  h.name, h.ns, h.domain ("example.com"), h.fqdn ("mx.example.com"),
  h.ipv4 ("10.A.B.1"), h.ipv6 ("fd79:6275:..::1" or None), h.users
  h.serve(overrides=None, provision=True, start=True) -> NsInstance
      a yubin installation in its own temp folder, served inside h.ns by
      `ip netns exec NS yubin -c CONF serve`. Config: hostname = h.fqdn,
      [smtp] *:25, [submission] *:587, [imap] *:143, [pop3] *:110,
      [dns] servers = the rig's DNS (timeout 1s, attempts 2), user nobody,
      self-signed TLS, log_level debug; overrides {section: {key: value|None}}
      on top (e.g. {"queue": {"retry_min": "2s"}}). provision=True adds
      h.domain and h.users (password yubintest.PASSWORD); a function(inst)
      provisions instead; False: nothing.
  h.connect(addr, port) -> socket made inside h.ns
  h.smtp_raw(addr, port=25) -> yubintest.RawSMTP-like session from h.ns
      (after the 220): .cmd(), .reply(), .send(); yubintest.send_data() works
  h.smtplib(addr, port=25) -> smtplib.SMTP from h.ns
  h.run(argv) -> subprocess.run inside h.ns (swaks, yubin dns mx ...)
  h.link_down() / h.link_up()     unplug / replug the host (timeouts)

An NsInstance (a yubintest.Instance; the CLI runs in the root namespace on
the same files, so inst.cli(), add_user(), mail_list(), find_mail(),
queue_list(), log_text(), stop(), kill(), restart() work as usual):
  inst.host, inst.addr (h.ipv4)
  inst.start() / inst.stop()      waits for the 220 on addr:25
  inst.smtp(), inst.raw(port=), inst.session()   from the root namespace
  inst.imap(user) -> imaplib.IMAP4 after STARTTLS, logged in
  inst.fetch_inbox(user) -> [bytes] of every INBOX message, over IMAP
  inst.wait_for(predicate, timeout=30, what="...") polls, fails with the log

Example (scenario (a) once the queue relays):

    def test_relay(rig):
        ex = rig.example.serve({"queue": {"retry_min": "1s"}})
        hg = rig.hogehoge.serve()
        ... submit on ex:587 as shiroyagi@example.com to kuroyagi@hogehoge.com ...
        hg.wait_for(lambda: hg.fetch_inbox("kuroyagi@hogehoge.com"), what="delivery")
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import relaytest  # noqa: E402


@pytest.fixture
def rig():
    why = relaytest.available()
    if why is not None:
        pytest.skip(why)
    r = relaytest.Rig()
    try:
        yield r
    except BaseException:
        r.close(check=False)
        raise
    r.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failed test, attach the logs of the rig's servers."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" or not rep.failed:
        return
    r = getattr(item, "funcargs", {}).get("rig")
    if r is None:
        return
    for inst in r.instances:
        if os.path.exists(inst.log_path):
            rep.sections.append(("yubin log (%s, %s)" % (inst.host.name, inst.dir),
                                 inst.log()))
