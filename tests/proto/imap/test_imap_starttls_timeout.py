"""After STARTTLS the session's own timeout holds (30 minutes once logged
in), not the login timeout that the socket layer under TLS had: a client
quiet for longer (in IDLE, say) stays connected. login_timeout is 5 s
here (60 s by default), so the test waits seconds."""

import time

import pytest

import imaptest
import yubintest
from imaptest import RawIMAP

LOGIN_TIMEOUT = 5


@pytest.fixture(scope="module")
def server(module_yubin_factory):
    return imaptest.make_server(module_yubin_factory, login_timeout="%ds" % LOGIN_TIMEOUT)


def test_starttls_session_quiet_past_login_timeout(server):
    user = imaptest.new_user(server, "st")
    c = RawIMAP(server)
    c.starttls()
    c.login(user, imaptest.PASSWORD)
    c.select()
    tag = c.next_tag()
    c.send(tag + " IDLE\r\n")
    assert c.line().startswith(b"+ ")
    time.sleep(LOGIN_TIMEOUT + 3)
    imaptest.deliver(server, yubintest.make_msg("late", to=user), rcpt=user)
    assert c.line() == b"* 1 EXISTS\r\n"
    c.send("DONE\r\n")
    assert c.read_until_tagged(tag).status == "OK"
    c.ok("LOGOUT")
    c.close()
