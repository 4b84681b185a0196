/* Digests and the one encoding (base64) the trust and host-key checks and etcd's JSON need, from
 * mbedTLS's crypto
 * library (the one libgit2 already loads; <mbedtls/…> is included only by digest.c).
 * Pure: no I/O, no logging. */
#pragma once
#include <stddef.h>

#define AP_SHA256_HEXSZ 64
#define AP_SHA1_SIZE 20

/* SHA-256 of data as lower-case hex. */
int ap_digest_sha256_hex(const void *data, size_t len, char ret[AP_SHA256_HEXSZ + 1]);

/* HMAC-SHA1 (what OpenSSH's hashed known_hosts names use). */
int ap_digest_hmac_sha1(const void *key, size_t key_len, const void *data, size_t len,
			unsigned char ret[AP_SHA1_SIZE]);

/* Encodes len bytes as standard base64 with '=' padding into ret (size bytes, NUL-terminated).
 * -ENOBUFS when it does not fit: 4 * ((len + 2) / 3) + 1 bytes always do. */
int ap_digest_base64_encode(const void *data, size_t len, char *ret, size_t size);

/* Decodes standard base64 (RFC 4648, '=' padding optional, no whitespace) into at most max
 * bytes. -EINVAL on a character outside the alphabet, -ENOBUFS when it does not fit. */
int ap_digest_base64_decode(const char *s, size_t s_len, unsigned char *ret, size_t max,
			    size_t *ret_len);
