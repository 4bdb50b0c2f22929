'use strict';
// Drives imapflow (Node's IMAP client library) against a running yubin for
// tests/proto/imap/test_imap_imapflow.py, which asserts everything: this
// script only does what a program built on imapflow does and prints what
// it saw as one JSON object a line on stdout, {"phase": NAME, ...}.
// After each phase it waits for a line on stdin, so that the test checks
// the server's state while nothing else happens and can act itself
// (change the mailbox from another session); only "idling" goes on at
// once, for the test to deliver a message during the IDLE.
//
// Usage: node imapflow_driver.js CONFIG.json
//   CONFIG: {"port", "user", "pass", "ca" (PEM file), "servername",
//            "folder" (the MOVE target), "move_uid", "delete_uid",
//            "store_uid"}

const fs = require('fs');
const readline = require('readline');
// Debian 12's node is 18, where Web Crypto is require('crypto').webcrypto
// but not yet the global imapflow (written for node 20) takes it from.
if (!globalThis.crypto)
	globalThis.crypto = require('crypto').webcrypto;
const { ImapFlow } = require('imapflow');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const ca = fs.readFileSync(cfg.ca);

function out(phase, data) {
	// BigInt (UIDVALIDITY, MODSEQ) and Map do not go into JSON as they are.
	const text = JSON.stringify(Object.assign({ phase }, data || {}), (k, v) => {
		if (typeof v === 'bigint') return v.toString();
		if (v instanceof Map) return Object.fromEntries(v);
		if (v instanceof Set) return Array.from(v);
		if (Buffer.isBuffer(v)) return { base64: v.toString('base64') };
		if (v && v.type === 'Buffer' && Array.isArray(v.data))
			return { base64: Buffer.from(v.data).toString('base64') };
		return v;
	});
	process.stdout.write(text + '\n');
}

const lines = readline.createInterface({ input: process.stdin });
const waiting = [];
const queued = [];
lines.on('line', l => (waiting.length ? waiting.shift()(l) : queued.push(l)));
function nextLine() {
	return new Promise(resolve => (queued.length ? resolve(queued.shift()) : waiting.push(resolve)));
}

async function step(phase, data) {
	out(phase, data);
	await nextLine();
}

// What imapflow logged at warn level or above, for the test to see.
const complaints = [];

// Every protocol line imapflow logs ({src: "c" or "s", msg}), per client.
function client(name, wire, extra) {
	const log = {};
	for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'fatal']) {
		log[level] = entry => {
			if (entry && (entry.src === 'c' || entry.src === 's'))
				wire.push([entry.src, String(entry.msg)]);
			if (level === 'error' || level === 'fatal' || level === 'warn')
				complaints.push(level + ': ' + JSON.stringify(entry));
		};
	}
	return new ImapFlow(Object.assign({
		host: '127.0.0.1',
		port: cfg.port,
		secure: false,
		doSTARTTLS: true,                 // STARTTLS or fail
		servername: cfg.servername,       // the certificate's name
		tls: { ca: [ca] },                // the server's certificate, trusted as it is
		auth: { user: cfg.user, pass: cfg.pass },
		qresync: true,
		logger: log,
		clientInfo: { name },
		disableAutoIdle: true,
		connectionTimeout: 10000,
		greetingTimeout: 10000,
	}, extra || {}));
}

function within(ms, promise, what) {
	let timer;
	return Promise.race([promise, new Promise((_, reject) => {
		timer = setTimeout(() => reject(new Error('timed out: ' + what)), ms);
	})]).finally(() => clearTimeout(timer));
}

function messageOut(m) {
	return {
		seq: m.seq, uid: m.uid, modseq: m.modseq, flags: m.flags,
		envelope: m.envelope, bodyStructure: m.bodyStructure,
		size: m.size, internalDate: m.internalDate && m.internalDate.toISOString(),
		source: m.source,
	};
}

async function session1() {
	const wire = [];
	const c = client('yubin-test-1', wire);
	const events = [];
	c.on('exists', e => events.push(['exists', e]));
	c.on('expunge', e => events.push(['expunge', e]));
	c.on('flags', e => events.push(['flags', e]));

	await c.connect();
	await step('connected', {
		secure: c.secureConnection,
		authorized: c.socket && c.socket.authorized === true,
		protocol: c.socket && typeof c.socket.getProtocol === 'function' ? c.socket.getProtocol() : null,
		capabilities: Array.from(c.capabilities.keys()),
		enabled: Array.from(c.enabled || []),
		authenticated: c.authenticated,
	});

	const list = await c.list();
	await step('list', { folders: list.map(f => ({ path: f.path, delimiter: f.delimiter,
		flags: Array.from(f.flags || []), specialUse: f.specialUse || null })) });

	const box = await c.mailboxOpen('INBOX');
	await step('open', { mailbox: {
		path: box.path, uidValidity: box.uidValidity, uidNext: box.uidNext,
		exists: box.exists, highestModseq: box.highestModseq,
		flags: Array.from(box.flags || []), permanentFlags: Array.from(box.permanentFlags || []),
		readOnly: box.readOnly,
	} });

	const fetched = [];
	for await (const m of c.fetch('1:*', { uid: true, flags: true, envelope: true,
		bodyStructure: true, source: true, size: true, internalDate: true }))
		fetched.push(messageOut(m));
	await step('fetch', { messages: fetched });

	// STORE: flags on one message, by UID, and what FETCH says after.
	const added = await c.messageFlagsAdd({ uid: cfg.store_uid }, ['\\Flagged', '$Label1'], { uid: true });
	const removed = await c.messageFlagsRemove({ uid: cfg.store_uid }, ['$Label1'], { uid: true });
	const setOk = await c.messageFlagsSet({ uid: cfg.delete_uid }, ['\\Seen', '\\Answered'], { uid: true });
	const after = [];
	for await (const m of c.fetch('1:*', { uid: true, flags: true }))
		after.push({ seq: m.seq, uid: m.uid, modseq: m.modseq, flags: m.flags });
	await step('store', { added, removed, set: setOk, messages: after, events: events.splice(0) });

	// IDLE: the test delivers a message by SMTP once the server has
	// answered IDLE with its continuation request.
	const idleStarted = wire.length;
	let announced = false;
	const existsSeen = new Promise(resolve => c.on('exists', resolve));
	const wireWatch = setInterval(() => {
		if (announced) return;
		const sent = wire.slice(idleStarted);
		const i = sent.findIndex(([src, msg]) => src === 'c' && / IDLE$/.test(msg));
		if (i >= 0 && sent.slice(i + 1).some(([src, msg]) => src === 's' && msg.startsWith('+'))) {
			announced = true;
			out('idling');
		}
	}, 10);
	const idle = c.idle();
	const existsEvent = await within(15000, existsSeen, 'EXISTS during IDLE');
	clearInterval(wireWatch);
	const newest = await c.fetchOne('*', { uid: true, flags: true, envelope: true, source: true });
	await idle;     // the FETCH above ended the IDLE (DONE)
	await step('idle', { announced, exists: existsEvent, message: messageOut(newest),
		wire: wire.slice(idleStarted), events: events.splice(0) });

	// MOVE (RFC 6851) with UIDPLUS's COPYUID giving the new UID.
	const moveStart = wire.length;
	const moved = await c.messageMove({ uid: cfg.move_uid }, cfg.folder, { uid: true });
	await step('move', { result: moved, wire: wire.slice(moveStart), events: events.splice(0) });

	// \Deleted and EXPUNGE (UID EXPUNGE with UIDPLUS).
	const delStart = wire.length;
	const deleted = await c.messageDelete({ uid: cfg.delete_uid }, { uid: true });
	await step('delete', { result: deleted, wire: wire.slice(delStart), events: events.splice(0) });

	const state = [];
	for await (const m of c.fetch('1:*', { uid: true, flags: true }))
		state.push({ seq: m.seq, uid: m.uid, modseq: m.modseq, flags: m.flags });
	const st = c.mailbox;
	const away = { uidValidity: st.uidValidity, highestModseq: st.highestModseq,
		exists: st.exists, messages: state };
	await c.logout();
	await step('away', away);
	// What a client keeps to resynchronise next time (RFC 7162 3.2.5).
	return { uidValidity: st.uidValidity, highestModseq: st.highestModseq };
}

// Back after the test changed the mailbox from another session: a
// QRESYNC SELECT from the state kept, and the events it brings.
async function session2(uidValidity, highestModseq) {
	const wire = [];
	const c = client('yubin-test-2', wire);
	const events = [];
	c.on('exists', e => events.push(['exists', e]));
	c.on('expunge', e => events.push(['expunge', e]));
	c.on('flags', e => events.push(['flags', e]));
	await c.connect();
	const start = wire.length;
	const box = await c.mailboxOpen('INBOX', { uidValidity, changedSince: highestModseq });
	await step('resync', {
		enabled: Array.from(c.enabled || []),
		mailbox: { uidValidity: box.uidValidity, highestModseq: box.highestModseq,
			exists: box.exists, uidNext: box.uidNext },
		events, wire: wire.slice(start),
	});
	await c.logout();
}

async function main() {
	const kept = await session1();
	await session2(kept.uidValidity, kept.highestModseq);
	out('done', { complaints });
	lines.close();
}

main().catch(err => {
	out('error', { message: String(err && err.stack || err),
		code: err && err.code, response: err && err.response });
	process.exitCode = 1;
	lines.close();
});
