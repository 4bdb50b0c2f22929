/* Password hashes: our Argon2id, and hashes made by other implementations.
 *
 * Where the vectors come from:
 *   argon2id  the reference implementation's CLI (Debian package argon2),
 *             e.g. `echo -n pw | argon2 somesalt -id -e`
 *   $6$       Drepper's SHA-crypt specification (the "Hello world!" ones),
 *             and `mkpasswd -m sha-512` (Debian package whois)
 *   $y$       `mkpasswd -m yescrypt`
 *   $2b$ $2y$ Openwall crypt_blowfish's test vectors ("U*U", "\xff\xff\xa3"),
 *             and `mkpasswd -m bcrypt` */
#include "test.h"
#include "auth/password.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct vector {
	const char *password;
	const char *hash;
};

static const struct vector vectors[] = {
	{ "pw", "$argon2id$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$6N7lbaPVRHQNDcwG/VJmDLNHm8NtaQq8+e3eGhoqFH0" },
	{ "correct horse", "$argon2id$v=19$m=4096,t=2,p=1$c2FsdHNhbHRzYWx0$jpXUL38Mq1C/yJArTHvcb/vRnqFj2HYfQX712rx2/10" },
	/* Four lanes, 64 MiB: argon2-cffi's defaults. */
	{ "pw", "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQxNmJ5dGVz$vJ4wOba89WJdg6cPDD2+PLTX5DH3FIqbBqLKcI8ym/Y" },
	/* UTF-8 password, two lanes. */
	{ "p\xc3\xa4ssw\xc3\xb6rd", "$argon2id$v=19$m=1024,t=1,p=2$c2FsdHlzYWx0$Nr3F1SBChXu8OK6qJLdMXA7WPLR/WtR3G3xWxB7DJTU" },
	/* A 64-byte tag: 128 characters, longer than crypto_pwhash_STRBYTES - 1. */
	{ "pw", "$argon2id$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$RYOdP4MOImmpWEL4z+DEz3+UzVMNx6xQNTCSUZ8zKVytmBOaBVDuez7tPteSEGzBYX0X8m9HqzDphb/8YKvzLA" },

	{ "Hello world!", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1" },
	{ "Hello world!", "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v." },
	{ "secret", "$6$saltsaltsalt1234$dtxmlxeVqETZAXDiGjM3F08.IhI21yWjIUwkj8N4k68tFPNzB8dV9Hdgi6NuUGjrhzLc9V.BoyEEcHx3QIz5d0" },
	{ "secret", "$6$rounds=10000$abcdefgh$dtkgtX8ow6kub/Iulo6m6YRiWBlfmJEeDmTXbQPwlPu6qBjkZV2Ix8CeH0sE3NMp3Sq63bHshmKLBUGe7mWYy/" },
	{ "p\xc3\xa4ssw\xc3\xb6rd", "$6$Nb9Ee/x2X7q.4aYw$xnXMhnBiFCGP/nJcc9SFi.6CA6FhNUnn5sW5WvwS9JwO3eiqv.MOzvWVXvDlyofXjvmAgmcaoVZagvxteroXh/" },

	{ "secret", "$y$j9T$kdMV4854nTTBCfnFCpYRp0$VHu.yX.VqtVriwnM607LMwfOVs8dWyvAQrihaxWivw0" },
	{ "p\xc3\xa4ssw\xc3\xb6rd", "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$UAi3w.V1khOnmiQzfq00d7LaG6KfSe9MVbNef5kSs64" },

	{ "U*U", "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW" },
	{ "U*U", "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW" },
	{ "\xff\xff\xa3", "$2y$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e" },
	{ "\xff\xff\xa3", "$2b$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e" },
	{ "secret", "$2b$05$wMHPxhDkyM.OrbDdByVw0ePjaXz0FnO.4B6f4nL3TRN3nek0nXKHu" },
};

static int verify(const char *password, const char *hash)
{
	return password_verify(password, strlen(password), hash);
}

static void test_hash_verify(void)
{
	static const char *const passwords[] = { "secret", "", "p\xc3\xa4ssw\xc3\xb6rd 3 \xe9\x83\xb5" };

	for (size_t i = 0; i < ARRAY_SIZE(passwords); i++) {
		char *h = NULL;
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		CHECK_INT(password_hash(passwords[i], strlen(passwords[i]), &h), 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (h == NULL)
			continue;
		if (i == 0)
			printf("argon2id hash: %.0f ms\n", (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
			       (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
		CHECK(strncmp(h, "$argon2id$v=19$m=65536,t=2,p=1$", 31) == 0);
		CHECK_INT(verify(passwords[i], h), 1);
		CHECK_INT(verify("wrong", h), 0);
		CHECK_INT(password_verify(passwords[i], strlen(passwords[i]) + (i == 1), h),
			  i == 1 ? 0 : 1);
		/* A hash of ours imports as it is. */
		char *stored = NULL;
		const char *error = NULL;
		CHECK_INT(password_import(h, &stored, &error), 0);
		CHECK_STR(stored, h);
		free(stored);
		free(h);
	}

	/* Salted: the same password hashes differently each time. */
	char *a, *b;
	CHECK_INT(password_hash("same", 4, &a), 0);
	CHECK_INT(password_hash("same", 4, &b), 0);
	CHECK(strcmp(a, b) != 0);
	CHECK_INT(verify("same", a), 1);
	CHECK_INT(verify("same", b), 1);
	CHECK_INT(verify("Same", a), 0);
	CHECK_INT(verify("sam", a), 0);
	CHECK_INT(verify("same ", a), 0);
	free(a);
	free(b);

	/* Argon2id takes binary passwords: a NUL is just a byte. */
	CHECK_INT(password_hash("a\0b", 3, &a), 0);
	CHECK_INT(password_verify("a\0b", 3, a), 1);
	CHECK_INT(password_verify("a\0c", 3, a), 0);
	CHECK_INT(password_verify("a", 1, a), 0);
	free(a);
}

static void test_vectors(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(vectors); i++) {
		const struct vector *v = &vectors[i];
		int ok = verify(v->password, v->hash);
		CHECK_INT(ok, 1);
		if (ok != 1)
			fprintf(stderr, "  vector %zu: %s\n", i, v->hash);
		CHECK_INT(verify("wrong password", v->hash), 0);
		CHECK_INT(password_verify(v->password, strlen(v->password) - 1, v->hash), 0);

		char *stored = NULL;
		const char *error = NULL;
		CHECK_INT(password_import(v->hash, &stored, &error), 0);
		CHECK_STR(stored, v->hash);
		if (stored == NULL)
			fprintf(stderr, "  vector %zu: %s\n", i, error);
		free(stored);
	}
}

/* crypt(3) stops at a NUL: "secret\0x" must not pass for "secret". */
static void test_crypt_nul(void)
{
	const char *h6 = vectors[7].hash, *hb = vectors[16].hash;

	CHECK_INT(password_verify("secret", 6, h6), 1);
	CHECK_INT(password_verify("secret\0x", 8, h6), 0);
	CHECK_INT(password_verify("secret\0", 7, h6), 0);
	CHECK_INT(password_verify("secret\0x", 8, hb), 0);
	/* Longer than crypt(3) takes. */
	char *big = xmalloc(1000);
	memset(big, 'a', 1000);
	CHECK_INT(password_verify(big, 1000, h6), 0);
	free(big);
}

static void test_import(void)
{
	static const struct {
		const char *in;
		const char *stored;	/* NULL: refused */
		const char *error;
	} cases[] = {
		/* Dovecot prefixes, stripped. */
		{ "{SHA512-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
		  "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", NULL },
		{ "{sha512-crypt}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
		  "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", NULL },
		{ "{CRYPT}$y$j9T$kdMV4854nTTBCfnFCpYRp0$VHu.yX.VqtVriwnM607LMwfOVs8dWyvAQrihaxWivw0",
		  "$y$j9T$kdMV4854nTTBCfnFCpYRp0$VHu.yX.VqtVriwnM607LMwfOVs8dWyvAQrihaxWivw0", NULL },
		{ "{BLF-CRYPT}$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
		  "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", NULL },
		{ "{ARGON2ID}$argon2id$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$6N7lbaPVRHQNDcwG/VJmDLNHm8NtaQq8+e3eGhoqFH0",
		  "$argon2id$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$6N7lbaPVRHQNDcwG/VJmDLNHm8NtaQq8+e3eGhoqFH0", NULL },
		/* At the cost limits. */
		{ "$6$rounds=2000000$abcdefgh$gSEdTiGTMDDHU4lLCPXIbI9VQj51ahiWoei1nmqGvc0j.V4/JdsPrwRiGyO/l05boYvVXQX8b2BAEGdw1lnEI.",
		  "$6$rounds=2000000$abcdefgh$gSEdTiGTMDDHU4lLCPXIbI9VQj51ahiWoei1nmqGvc0j.V4/JdsPrwRiGyO/l05boYvVXQX8b2BAEGdw1lnEI.", NULL },

		/* Schemes we do not take. */
		{ "{PLAIN}x", NULL, "unsupported hash format" },
		{ "{MD5-CRYPT}$1$kpnfxVX.$9Qj2WnGWwUxQEfH3UDy6w1", NULL, "unsupported hash format" },
		{ "$1$kpnfxVX.$9Qj2WnGWwUxQEfH3UDy6w1", NULL, "unsupported hash format" },
		{ "$5$uSzbLQcjMJRDninR$CfziaroQBpRtqt9mZ9qtu/n.M4mtozyC2i3/VLkyhb9", NULL, "unsupported hash format" },
		{ "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", NULL, "unsupported hash format" },
		{ "$7$CU..../....9KlA8jvMa9G2fcR6jRT9S1$WyBv8ZRTkZoVyYtcroIG7dALQj0byv3SllsKUti5ek1", NULL, "unsupported hash format" },
		{ "$argon2i$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$0Qnq2w7zJ8I3xz12F+3WnEApJIWtZqXFbLYeggWl+J0", NULL, "unsupported hash format" },
		{ "aBcD.eFgH1234", NULL, "unsupported hash format" },
		{ "secret", NULL, "unsupported hash format" },
		{ "", NULL, "unsupported hash format" },
		{ "{SHA512-CRYPT}", NULL, "unsupported hash format" },
		{ " $6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", NULL, "unsupported hash format" },

		/* The prefix must name the scheme that follows. */
		{ "{SHA512-CRYPT}$y$j9T$kdMV4854nTTBCfnFCpYRp0$VHu.yX.VqtVriwnM607LMwfOVs8dWyvAQrihaxWivw0",
		  NULL, "hash does not match its {SCHEME} prefix" },
		{ "{BLF-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
		  NULL, "hash does not match its {SCHEME} prefix" },
		{ "{ARGON2ID}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
		  NULL, "hash does not match its {SCHEME} prefix" },
		{ "{CRYPT}$argon2id$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$6N7lbaPVRHQNDcwG/VJmDLNHm8NtaQq8+e3eGhoqFH0",
		  NULL, "hash does not match its {SCHEME} prefix" },

		/* Malformed: a setting without its checksum, truncated or
		 * damaged checksums, a salt longer than SHA-crypt uses (crypt
		 * would silently cut it, and the hash never match). */
		{ "$6$saltstring", NULL, "malformed hash" },
		{ "$6$saltstring$", NULL, "malformed hash" },
		{ "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz",
		  NULL, "malformed hash" },
		{ "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1x",
		  NULL, "malformed hash" },
		{ "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz!",
		  NULL, "malformed hash" },
		{ "$6$rounds=10000$saltstringsaltstring$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
		  NULL, "malformed hash" },
		{ "$6$rounds=10x$abcdefgh$dtkgtX8ow6kub/Iulo6m6YRiWBlfmJEeDmTXbQPwlPu6qBjkZV2Ix8CeH0sE3NMp3Sq63bHshmKLBUGe7mWYy/",
		  NULL, "malformed hash" },
		{ "$6$rounds=010000$abcdefgh$dtkgtX8ow6kub/Iulo6m6YRiWBlfmJEeDmTXbQPwlPu6qBjkZV2Ix8CeH0sE3NMp3Sq63bHshmKLBUGe7mWYy/",
		  NULL, "malformed hash" },
		{ "$6$salt string$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
		  NULL, "malformed hash" },
		{ "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1\n",
		  NULL, "malformed hash" },
		{ "$y$j9T$kdMV4854nTTBCfnFCpYRp0$", NULL, "malformed hash" },
		{ "$y$j9T$kdMV4854nTTBCfnFCpYRp0", NULL, "malformed hash" },
		{ "$y$zzz$abc$def", NULL, "malformed hash" },
		{ "$y$j9T$kdMV4854nTTBCfnFCpYRp0$VHu.yX.VqtVriwnM607LMwfOVs8dWyvAQrihaxWivw", NULL, "malformed hash" },
		{ "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe", NULL, "malformed hash" },
		{ "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeWW", NULL, "malformed hash" },
		{ "$2b$5$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", NULL, "malformed hash" },
		{ "$2b$05$", NULL, "malformed hash" },
		{ "$argon2id$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$", NULL, "malformed hash" },
		{ "$argon2id$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$!!!!", NULL, "malformed hash" },
		{ "$argon2id$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$6N7lbaPVRHQNDcwG/VJmDLNHm8NtaQq8+e3eGhoqFH", NULL, "malformed hash" },
		{ "$argon2id$v=16$m=4096,t=3,p=1$c29tZXNhbHQ$6N7lbaPVRHQNDcwG/VJmDLNHm8NtaQq8+e3eGhoqFH0", NULL, "malformed hash" },
		{ "$argon2id$m=4096,t=3,p=1$c29tZXNhbHQ$6N7lbaPVRHQNDcwG/VJmDLNHm8NtaQq8+e3eGhoqFH0", NULL, "malformed hash" },
		{ "$argon2id$v=19$m=04096,t=3,p=1$c29tZXNhbHQ$6N7lbaPVRHQNDcwG/VJmDLNHm8NtaQq8+e3eGhoqFH0", NULL, "malformed hash" },
		{ "$argon2id$v=19$t=3,m=4096,p=1$c29tZXNhbHQ$6N7lbaPVRHQNDcwG/VJmDLNHm8NtaQq8+e3eGhoqFH0", NULL, "malformed hash" },
		{ "$argon2id$v=19$m=4096,t=3,p=1$", NULL, "malformed hash" },
		/* Salt under 8 bytes, tag under 16, t=0, m under 8 KiB a lane,
		 * a non-canonical last base64 character, padding. */
		{ "$argon2id$v=19$m=4096,t=3,p=1$c29tZQ$6N7lbaPVRHQNDcwG/VJmDLNHm8NtaQq8+e3eGhoqFH0", NULL, "malformed hash" },
		{ "$argon2id$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$6N7lbaPVRHQNDcwG/VJm", NULL, "malformed hash" },
		{ "$argon2id$v=19$m=4096,t=0,p=1$c29tZXNhbHQ$6N7lbaPVRHQNDcwG/VJmDLNHm8NtaQq8+e3eGhoqFH0", NULL, "malformed hash" },
		{ "$argon2id$v=19$m=31,t=3,p=4$c29tZXNhbHQ$6N7lbaPVRHQNDcwG/VJmDLNHm8NtaQq8+e3eGhoqFH0", NULL, "malformed hash" },
		{ "$argon2id$v=19$m=4096,t=3,p=0$c29tZXNhbHQ$6N7lbaPVRHQNDcwG/VJmDLNHm8NtaQq8+e3eGhoqFH0", NULL, "malformed hash" },
		{ "$argon2id$v=19$m=4096,t=3,p=1$c29tZXNhbHR$6N7lbaPVRHQNDcwG/VJmDLNHm8NtaQq8+e3eGhoqFH0", NULL, "malformed hash" },
		{ "$argon2id$v=19$m=4096,t=3,p=1$c29tZXNhbHQ=$6N7lbaPVRHQNDcwG/VJmDLNHm8NtaQq8+e3eGhoqFH0", NULL, "malformed hash" },
		{ "$argon2id$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$6N7lbaPVRHQNDcwG/VJmDLNHm8NtaQq8+e3eGhoqFH0$", NULL, "malformed hash" },
		{ "$argon2id$v=19$m=99999999999,t=3,p=1$c29tZXNhbHQ$6N7lbaPVRHQNDcwG/VJmDLNHm8NtaQq8+e3eGhoqFH0", NULL, "malformed hash" },

		/* Too costly to verify at every login. */
		{ "$6$rounds=3000000$qKL98wU.hnpQOVNa$svEpNknukvYdevG3Begkr6lgYmd3mflKPEiebBkUEuI9tCnVosNpiAheD6l89JSoqrKZe4cGvRdyxoyuG8iUw1",
		  NULL, "hash too expensive to verify" },
		{ "$6$rounds=999999999$abcdefgh$dtkgtX8ow6kub/Iulo6m6YRiWBlfmJEeDmTXbQPwlPu6qBjkZV2Ix8CeH0sE3NMp3Sq63bHshmKLBUGe7mWYy/",
		  NULL, "hash too expensive to verify" },
		{ "$2b$15$Uy/Tt7dsgp/9wN/IfwscP.y30nHUZBIahHd7NchCUZ4BsUXiI00cy", NULL, "hash too expensive to verify" },
		{ "$argon2id$v=19$m=1048576,t=1,p=1$c29tZXNhbHQ$bYuQd9yAZ6+yruspgMHtxTv6ExuZf2sLheKwJt8YPUg",
		  NULL, "hash too expensive to verify" },
		{ "$argon2id$v=19$m=262144,t=5,p=1$c29tZXNhbHQ$bYuQd9yAZ6+yruspgMHtxTv6ExuZf2sLheKwJt8YPUg",
		  NULL, "hash too expensive to verify" },
		{ "$argon2id$v=19$m=4096,t=3,p=17$c29tZXNhbHQ$6N7lbaPVRHQNDcwG/VJmDLNHm8NtaQq8+e3eGhoqFH0",
		  NULL, "hash too expensive to verify" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *stored = (char *)"unset";
		const char *error = NULL;
		int ret = password_import(cases[i].in, &stored, &error);
		if (cases[i].stored != NULL) {
			CHECK_INT(ret, 0);
			CHECK_STR(stored, cases[i].stored);
			if (ret != 0)
				fprintf(stderr, "  import case %zu: %s\n", i, error);
			free(stored);
		} else {
			CHECK_INT(ret, -1);
			CHECK_STR(error, cases[i].error);
			CHECK(stored == NULL);
			if (ret != -1 || error == NULL || strcmp(error, cases[i].error) != 0)
				fprintf(stderr, "  import case %zu: %s\n", i, cases[i].in);
		}
	}

	/* Too long, whatever it is. */
	char *long_hash = xmalloc(400);
	memset(long_hash, 'a', 399);
	long_hash[399] = '\0';
	memcpy(long_hash, "$6$", 3);
	char *stored;
	const char *error;
	CHECK_INT(password_import(long_hash, &stored, &error), -1);
	CHECK_STR(error, "hash too long");
	free(long_hash);

	/* An imported {SHA512-CRYPT} hash verifies. */
	CHECK_INT(password_import("{SHA512-CRYPT}$6$saltsaltsalt1234$dtxmlxeVqETZAXDiGjM3F08.IhI21yWjIUwkj8N4k68tFPNzB8dV9Hdgi6NuUGjrhzLc9V.BoyEEcHx3QIz5d0",
				  &stored, &error), 0);
	CHECK_INT(verify("secret", stored), 1);
	CHECK_INT(verify("Secret", stored), 0);
	free(stored);
}

/* What import refuses, verify refuses too: never an error, just no match. */
static void test_verify_unknown(void)
{
	static const char *const hashes[] = {
		"", "secret", "{PLAIN}secret", "{SHA512-CRYPT}$6$saltsaltsalt1234$dtxmlxeVqETZAXDiGjM3F08.IhI21yWjIUwkj8N4k68tFPNzB8dV9Hdgi6NuUGjrhzLc9V.BoyEEcHx3QIz5d0",
		"$1$kpnfxVX.$9Qj2WnGWwUxQEfH3UDy6w1",
		"$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
		"$argon2i$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$0Qnq2w7zJ8I3xz12F+3WnEApJIWtZqXFbLYeggWl+J0",
		"$6$rounds=999999999$abcdefgh$dtkgtX8ow6kub/Iulo6m6YRiWBlfmJEeDmTXbQPwlPu6qBjkZV2Ix8CeH0sE3NMp3Sq63bHshmKLBUGe7mWYy/",
		"$argon2id$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$",
		"$6$",
		"$y$",
		"$2b$",
		"$argon2id$",
	};
	static const char *const passwords[] = { "", "secret", "U*U", "x" };

	for (size_t i = 0; i < ARRAY_SIZE(hashes); i++) {
		for (size_t j = 0; j < ARRAY_SIZE(passwords); j++)
			CHECK_INT(verify(passwords[j], hashes[i]), 0);
	}
	/* The "$1$" vector does match under crypt(3); we still say no. */
	CHECK_INT(verify("x", "$1$kpnfxVX.$9Qj2WnGWwUxQEfH3UDy6w1"), 0);
}

int main(void)
{
	RUN(test_hash_verify);
	RUN(test_vectors);
	RUN(test_crypt_nul);
	RUN(test_import);
	RUN(test_verify_unknown);
	return test_done();
}
