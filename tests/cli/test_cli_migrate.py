"""Schema migrations: a database written by an older yubin (schema version
1 or 2, with the SQL those versions ran, copied here as released) is opened
by the current binary through an ordinary CLI command. Every row must
survive, user_version must be the current one, and the old rows must work
with what came later (a login, FETCH BODYSTRUCTURE from a row that has no
parse results stored, SEARCH TEXT over a row the index never saw)."""

import imaplib
import os
import pwd
import re
import sqlite3

import pytest

import yubintest
from yubintest import HASH_ARGON2ID

# Version 0 -> 1, as released (src/store/store.c migrations[0]).
SCHEMA_V1 = """
CREATE TABLE domains (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
  created INTEGER NOT NULL);
CREATE TABLE accounts (id INTEGER PRIMARY KEY,
  domain_id INTEGER NOT NULL REFERENCES domains(id), localpart TEXT NOT NULL,
  password TEXT NOT NULL, created INTEGER NOT NULL, UNIQUE (domain_id, localpart));
CREATE TABLE aliases (id INTEGER PRIMARY KEY,
  domain_id INTEGER NOT NULL REFERENCES domains(id), localpart TEXT NOT NULL,
  target TEXT NOT NULL, UNIQUE (domain_id, localpart, target));
CREATE TABLE mailboxes (id INTEGER PRIMARY KEY,
  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  name TEXT NOT NULL, special_use TEXT, subscribed INTEGER NOT NULL DEFAULT 1,
  uidvalidity INTEGER NOT NULL, uidnext INTEGER NOT NULL DEFAULT 1,
  highestmodseq INTEGER NOT NULL DEFAULT 1, UNIQUE (account_id, name));
CREATE TABLE messages (id INTEGER PRIMARY KEY, queue_id TEXT NOT NULL UNIQUE,
  body TEXT NOT NULL, size INTEGER NOT NULL, received INTEGER NOT NULL,
  sender TEXT NOT NULL, hdr_from TEXT NOT NULL DEFAULT '',
  hdr_subject TEXT NOT NULL DEFAULT '', hdr_date TEXT, hdr_message_id TEXT,
  envelope TEXT, bodystructure TEXT);
CREATE TABLE mail (
  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  uid INTEGER NOT NULL, message_id INTEGER NOT NULL REFERENCES messages(id),
  prefix BLOB NOT NULL DEFAULT '', flags INTEGER NOT NULL DEFAULT 0,
  keywords TEXT, modseq INTEGER NOT NULL, internaldate INTEGER NOT NULL,
  savedate INTEGER NOT NULL, PRIMARY KEY (mailbox_id, uid)) WITHOUT ROWID;
CREATE INDEX mail_message ON mail(message_id);
CREATE INDEX mail_modseq ON mail(mailbox_id, modseq);
CREATE TABLE expunged (
  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  uid INTEGER NOT NULL, modseq INTEGER NOT NULL,
  PRIMARY KEY (mailbox_id, uid)) WITHOUT ROWID;
CREATE TABLE queue (id INTEGER PRIMARY KEY,
  message_id INTEGER NOT NULL REFERENCES messages(id), recipient TEXT NOT NULL,
  created INTEGER NOT NULL, next_attempt INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT);
CREATE INDEX queue_next ON queue(next_attempt);
CREATE INDEX queue_message ON queue(message_id);
"""

# Version 1 -> 2, as released (migrations[1]).
SCHEMA_V2 = """
ALTER TABLE accounts ADD COLUMN scram TEXT;
CREATE TABLE sendas (
  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  address TEXT NOT NULL, PRIMARY KEY (account_id, address)) WITHOUT ROWID;
"""

BODY = (b"From: Old Timer <old@example.org>\r\n"
        b"To: shiroyagi@example.com\r\n"
        b"Subject: written by schema one\r\n"
        b"Date: Sun, 22 Nov 2026 07:38:12 +0000\r\n"
        b"Message-ID: <old-1@example.org>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=us-ascii\r\n"
        b"\r\n"
        b"A message from before the upgrade, with xylophone in it.\r\n")
PREFIX = (b"Return-Path: <old@example.org>\r\n"
          b"Delivered-To: shiroyagi@example.com\r\n")
BUCKET = "2026112207"
QUEUE_ID = "0123456789ABCDEF"
WHEN = 1795333092


def make_old_store(data_dir, version):
    os.makedirs(os.path.join(data_dir, "msg", BUCKET))
    os.makedirs(os.path.join(data_dir, "tmp"))
    body_rel = "msg/%s/%s" % (BUCKET, QUEUE_ID)
    with open(os.path.join(data_dir, body_rel), "wb") as f:
        f.write(BODY)
    db = sqlite3.connect(os.path.join(data_dir, "yubin.db"))
    db.executescript(SCHEMA_V1 + (SCHEMA_V2 if version >= 2 else ""))
    db.execute("INSERT INTO domains VALUES (1, 'example.com', ?)", (WHEN,))
    db.execute("INSERT INTO accounts (id, domain_id, localpart, password, created)"
               " VALUES (1, 1, 'shiroyagi', ?, ?)", (HASH_ARGON2ID, WHEN))
    db.execute("INSERT INTO aliases (domain_id, localpart, target)"
               " VALUES (1, 'team', 'shiroyagi@example.com')")
    for i, (name, use) in enumerate([("INBOX", None), ("Sent", "\\Sent"),
                                     ("Drafts", "\\Drafts"), ("Trash", "\\Trash"),
                                     ("Junk", "\\Junk")]):
        db.execute("INSERT INTO mailboxes (id, account_id, name, special_use,"
                   " uidvalidity, uidnext, highestmodseq) VALUES (?, 1, ?, ?, ?, ?, ?)",
                   (i + 1, name, use, 1000 + i, 2 if i == 0 else 1, 2 if i == 0 else 1))
    db.execute("INSERT INTO messages (id, queue_id, body, size, received, sender,"
               " hdr_from, hdr_subject, hdr_date, hdr_message_id)"
               " VALUES (1, ?, ?, ?, ?, 'old@example.org', ?, ?, ?, ?)",
               (QUEUE_ID, body_rel, len(BODY), WHEN, "Old Timer <old@example.org>",
                "written by schema one", "Sun, 22 Nov 2026 07:38:12 +0000",
                "<old-1@example.org>"))
    db.execute("INSERT INTO mail (mailbox_id, uid, message_id, prefix, flags, modseq,"
               " internaldate, savedate) VALUES (1, 1, 1, ?, 1, 2, ?, ?)",
               (PREFIX, WHEN, WHEN))
    if version >= 2:
        db.execute("INSERT INTO sendas VALUES (1, 'boss@example.com')")
    db.execute("PRAGMA user_version = %d" % version)
    db.commit()
    db.close()


def user_version(data_dir):
    db = sqlite3.connect(os.path.join(data_dir, "yubin.db"))
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


@pytest.fixture(scope="module")
def current_version():
    """The version a new store gets from this binary."""
    inst = yubintest.Instance()
    try:
        inst.cli_ok("domain", "list")
        return user_version(inst.data_dir)
    finally:
        inst.cleanup()


@pytest.mark.parametrize("version", [1, 2])
def test_migrate_from_old_schema(yubin_factory, current_version, version):
    assert current_version > version
    overrides = {"imap": {"listen": "127.0.0.1:%d" % yubintest.free_port()}}
    inst = yubin_factory(overrides=overrides, start=False)
    make_old_store(inst.data_dir, version)

    # The first command to open it migrates it, saying so.
    rc, out, err = inst.cli("domain", "list")
    assert rc == 0, err
    assert out.split() == ["example.com"]
    for v in range(version + 1, current_version + 1):
        assert "event=schema_migrated version=%d" % v in err, err
    assert user_version(inst.data_dir) == current_version
    # Once only: the next command finds nothing to do.
    rc, _, err = inst.cli("domain", "list")
    assert rc == 0 and "schema_migrated" not in err, err

    assert [l.split()[0] for l in inst.lines("user", "list")] == ["shiroyagi@example.com"]
    assert "shiroyagi@example.com" in inst.cli_ok("alias", "list")
    rows = inst.mail_list("shiroyagi@example.com")
    assert [(r.uid, r.size, r.from_, r.subject) for r in rows] == \
        [(1, len(PREFIX) + len(BODY), "Old Timer <old@example.org>", "written by schema one")]
    assert inst.mail_show("shiroyagi@example.com", "INBOX", 1) == PREFIX + BODY
    sendas = inst.cli_ok("user", "sendas", "list", "shiroyagi@example.com")
    assert ("boss@example.com" in sendas) == (version >= 2), sendas
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody").pw_uid
        assert os.stat(os.path.join(inst.data_dir, "yubin.db")).st_uid == nobody

    # New features on old rows, through the server.
    inst.add_user("kuroyagi@example.com")
    inst.start()
    port = inst.listener_port("imap")
    m = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        # The password hash from before (hunter2) still logs in.
        assert m.login("shiroyagi@example.com", "hunter2")[0] == "OK"
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"1"], data
        typ, data = m.fetch("1", "(FLAGS BODYSTRUCTURE ENVELOPE)")
        assert typ == "OK", data
        text = data[0].decode()
        assert "\\Seen" in text, text
        assert '("TEXT" "PLAIN" ("CHARSET" "US-ASCII")' in text.upper(), text
        assert '"written by schema one"' in text, text
        typ, data = m.search(None, "TEXT", "xylophone")
        assert typ == "OK" and data == [b"1"], data
        typ, data = m.uid("FETCH", "1", "(BODY.PEEK[])")
        assert data[0][1] == PREFIX + BODY
        # Version 9: OBJECTID (RFC 8474) for the old rows: a MAILBOXID
        # made by the migration, each mailbox its own; EMAILID and
        # THREADID from the queue id; PREVIEW (RFC 8970) made when first
        # asked (NIL for LAZY until then).
        typ, data = m.status("INBOX", "(MAILBOXID)")
        assert typ == "OK" and re.match(rb'^"?INBOX"? \(MAILBOXID \(F[0-9a-f]{24}\)\)$',
                                        data[0]), data
        typ, other = m.status("Sent", "(MAILBOXID)")
        assert other[0].split(b"MAILBOXID")[1] != data[0].split(b"MAILBOXID")[1]
        typ, data = m.fetch("1", "(EMAILID THREADID PREVIEW (LAZY))")
        assert typ == "OK" and data[0] == (
            b"1 (EMAILID (M%s) THREADID (T%s) PREVIEW NIL)" % (QUEUE_ID.encode(),
                                                             QUEUE_ID.encode())), data
        typ, data = m.fetch("1", "(PREVIEW)")
        assert typ == "OK" and data[0] == (
            b'1 (PREVIEW "A message from before the upgrade, with xylophone in it.")'), data
    finally:
        m.logout()
