"""Password checks run off the event loop (M2 item 3): while many clients
wait for their Argon2id verification, other sessions are answered at once."""

import select
import socket
import time

import yubintest

# The number of the issue ([M2] item 3): 100 clients logging in at once.
CLIENTS = 100


def _provision(inst):
    inst.add_domain("example.com")
    inst.add_user("pool@example.com", "pool-secret")


def test_logins_do_not_stall_other_sessions(yubin_factory):
    port = yubintest.free_port()
    srv = yubin_factory({
        "submission": {"listen": "127.0.0.1:%d" % port},
        # Every login really verifies the hash.
        "limits": {"auth_cache_time": "0", "auth_fail_delay": "0",
                   "max_connections_per_ip": "200"},
    }, provision=_provision)

    plain = yubintest.sasl_plain("pool@example.com", "pool-secret")
    socks = []
    for _ in range(CLIENTS):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.recv(4096)  # greeting
        s.sendall(b"EHLO pool.example\r\nAUTH PLAIN %s\r\n" % plain.encode())
        socks.append(s)

    # An unrelated session, started after every login was asked for.
    other = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    assert other.recv(4096).startswith(b"220")
    other.sendall(b"NOOP\r\n")
    assert other.recv(4096).startswith(b"250")

    # Look, without waiting, how many logins have been answered so far.
    answered = 0
    bufs = {s: b"" for s in socks}
    readable, _, _ = select.select(socks, [], [], 0)
    for s in readable:
        bufs[s] += s.recv(65536)
    answered = sum(1 for b in bufs.values() if b"235 " in b)
    assert answered < CLIENTS, "the NOOP was answered only after every login"

    # And every login succeeds in the end.
    deadline = time.monotonic() + 120
    while any(b"235 " not in b for b in bufs.values()) and time.monotonic() < deadline:
        waiting = [s for s, b in bufs.items() if b"235 " not in b]
        readable, _, _ = select.select(waiting, [], [], 1)
        for s in readable:
            data = s.recv(65536)
            assert data, "connection closed before the AUTH answer"
            bufs[s] += data
    assert all(b"235 2.7.0" in b for b in bufs.values())
    for s in socks:
        s.close()
    other.close()
