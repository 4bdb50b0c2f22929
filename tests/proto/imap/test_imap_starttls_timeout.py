"""After STARTTLS the session's own timeout holds (30 minutes once logged
in), not the 60 s login timeout that the socket layer under TLS had: a
client quiet for longer (in IDLE, say) stays connected. Slow: about 65 s."""

import time

import imaptest
import yubintest
from imaptest import RawIMAP


def test_starttls_session_quiet_past_login_timeout(server):
    user = imaptest.new_user(server, "st")
    c = RawIMAP(server)
    c.starttls()
    c.login(user, imaptest.PASSWORD)
    c.select()
    tag = c.next_tag()
    c.send(tag + " IDLE\r\n")
    assert c.line().startswith(b"+ ")
    time.sleep(66)
    imaptest.deliver(server, yubintest.make_msg("late", to=user), rcpt=user)
    assert c.line() == b"* 1 EXISTS\r\n"
    c.send("DONE\r\n")
    assert c.read_until_tagged(tag).status == "OK"
    c.ok("LOGOUT")
    c.close()
