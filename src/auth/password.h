/* Password hashes.
 *
 * New passwords are hashed with Argon2id (libsodium, "$argon2id$..." strings,
 * moderate limits so a login stays well under 100 ms). Hashes moved from
 * other systems are accepted as they are and verified with crypt(3)
 * (libxcrypt): SHA-512 crypt "$6$...", yescrypt "$y$..." and bcrypt
 * "$2b$..."/"$2y$..." (bcrypt uses only the first 72 bytes of a password).
 * Argon2id hashes from other systems ("$argon2id$v=19$...") are accepted too.
 * Dovecot's scheme prefixes "{SHA512-CRYPT}", "{BLF-CRYPT}", "{ARGON2ID}" and
 * "{CRYPT}" are stripped on import. Imported hashes whose cost parameters
 * would make one login take more than about a second are refused. */
#ifndef YUBIN_AUTH_PASSWORD_H
#define YUBIN_AUTH_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

/* Hashes a new password. Returns 0 and a new string, or -1 (out of memory in
 * the hash function: too many at once). */
int password_hash(const char *password, size_t len, char **hash_r);

/* Returns 1 when password matches hash, 0 when it does not or the hash is of
 * a kind we do not know. Constant time in the password's content. */
int password_verify(const char *password, size_t len, const char *hash);

/* Checks an existing hash given to "yubin user add --hash" and returns the
 * form to store (a new string). Returns 0, or -1 with *error_r static. */
int password_import(const char *hash, char **stored_r, const char **error_r);

#endif
