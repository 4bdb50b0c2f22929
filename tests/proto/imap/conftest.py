"""IMAP fixtures: see imaptest.py for the helpers.

The test modules that define their own `srv` fixture (APPEND, SEARCH,
management) do not use these."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import imaptest  # noqa: E402


@pytest.fixture(scope="module")
def server(module_yubin_factory):
    """One running server per test module, with [imap] and [imaps],
    max_errors = 5 and no login failure delay."""
    return imaptest.make_server(module_yubin_factory)


@pytest.fixture
def imap(server):
    """Opens RawIMAP sessions on server; closes them at the end."""
    opened = []

    def make(tls=False, greet=True, inst=None):
        c = imaptest.RawIMAP(inst or server, tls=tls, greet=greet)
        opened.append(c)
        return c
    yield make
    for c in opened:
        c.close()


@pytest.fixture
def mailbox(server, imap):
    """A fresh account (empty INBOX) and a helper to fill it:
    mailbox.fill(n) delivers n messages and returns their subjects;
    mailbox.session() is a RawIMAP session logged in and with INBOX
    selected."""
    return Mailbox(server, imap)


class Mailbox:
    def __init__(self, server, imap):
        self.server = server
        self.imap = imap
        self.user = imaptest.new_user(server, "box")

    def fill(self, n, prefix=None, body=None):
        import yubintest
        prefix = prefix or yubintest.unique("m")
        subjects = ["%s-%d" % (prefix, i + 1) for i in range(n)]
        imaptest.deliver_many(
            self.server,
            [yubintest.make_msg(s, to=self.user,
                                body=body or ("Body of %s.\r\n" % s)) for s in subjects],
            rcpt=self.user)
        return subjects

    def session(self, select="INBOX", examine=False):
        c = self.imap()
        c.login(self.user)
        if select:
            c.select(select, examine=examine)
        return c

    def rows(self, mailbox="INBOX"):
        return self.server.mail_list(self.user, mailbox)

    def uids(self, mailbox="INBOX"):
        return [r.uid for r in self.rows(mailbox)]

    def stored(self, uid, mailbox="INBOX"):
        return self.server.mail_show(self.user, mailbox, uid)
