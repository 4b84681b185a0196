/* SHA-256, HMAC-SHA1 and base64 (see digest.h). mbedTLS's crypto library is the
 * one libgit2 loads anyway, so this costs no new library at run time. Deliberately not
 * here: anything that reads files or decides what a digest means. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <mbedtls/md.h>

#include "digest.h"

int ap_digest_sha256_hex(const void *data, size_t len, char ret[AP_SHA256_HEXSZ + 1])
{
	static const char hex[] = "0123456789abcdef";
	const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
	unsigned char out[32];

	if (!md || mbedtls_md(md, data, len, out) != 0)
		return -EIO;
	for (size_t i = 0; i < sizeof(out); i++) {
		ret[2 * i] = hex[out[i] >> 4];
		ret[2 * i + 1] = hex[out[i] & 0xf];
	}
	ret[AP_SHA256_HEXSZ] = '\0';
	return 0;
}

int ap_digest_hmac_sha1(const void *key, size_t key_len, const void *data, size_t len,
			unsigned char ret[AP_SHA1_SIZE])
{
	const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA1);

	if (!md || mbedtls_md_hmac(md, key, key_len, data, len, ret) != 0)
		return -EIO;
	return 0;
}

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int ap_digest_base64_encode(const void *data, size_t len, char *ret, size_t size)
{
	const unsigned char *p = data;
	size_t n = 0;

	if (size < 4 * ((len + 2) / 3) + 1)
		return -ENOBUFS;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		ret[n++] = b64_alphabet[(v >> 18) & 63];
		ret[n++] = b64_alphabet[(v >> 12) & 63];
		ret[n++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		ret[n++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
	}
	ret[n] = '\0';
	return 0;
}

static int b64_value(char c)
{
	const char *alphabet = b64_alphabet;
	const char *p = c ? strchr(alphabet, c) : NULL;

	return p ? (int)(p - alphabet) : -1;
}

int ap_digest_base64_decode(const char *s, size_t s_len, unsigned char *ret, size_t max,
			    size_t *ret_len)
{
	uint32_t acc = 0;
	size_t n = 0, i = 0;
	int bits = 0;

	for (; i < s_len && s[i] != '='; i++) {
		int v = b64_value(s[i]);

		if (v < 0)
			return -EINVAL;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= max)
				return -ENOBUFS;
			ret[n++] = (unsigned char)(acc >> bits);
		}
	}
	for (; i < s_len; i++) /* only padding may follow */
		if (s[i] != '=')
			return -EINVAL;
	*ret_len = n;
	return 0;
}
