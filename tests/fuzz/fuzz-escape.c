/* Fuzzes the escaping of output against a second UTF-8 decoder written the long way (the
 * table of well-formed byte sequences of Unicode, chapter 3). Invariants (util.h):
 * ap_escape's output is valid UTF-8 with no control character (C0 but a kept newline or
 * tab, DEL, C1), at most 4 bytes per input byte, and the input itself when that already
 * was such text; ap_buf_json_string's output is valid UTF-8 with no raw control character,
 * and decoding it as JSON gives back every code point of the input's valid sequences and,
 * for each byte that is not part of one, the code point of the byte's value. */
#include <stdbool.h>
#include <stdint.h>

#include "fuzz.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The length of the well-formed sequence at s[0..n), 0 if none; its code point in *cp. */
static size_t oracle_char(const unsigned char *s, size_t n, uint32_t *cp)
{
	static const struct {
		unsigned char lo, hi, lo2, hi2; /* first byte range, second byte range */
		size_t len;
	} rows[] = {
		{ 0x00, 0x7f, 0, 0, 1 },       { 0xc2, 0xdf, 0x80, 0xbf, 2 },
		{ 0xe0, 0xe0, 0xa0, 0xbf, 3 }, { 0xe1, 0xec, 0x80, 0xbf, 3 },
		{ 0xed, 0xed, 0x80, 0x9f, 3 }, { 0xee, 0xef, 0x80, 0xbf, 3 },
		{ 0xf0, 0xf0, 0x90, 0xbf, 4 }, { 0xf1, 0xf3, 0x80, 0xbf, 4 },
		{ 0xf4, 0xf4, 0x80, 0x8f, 4 },
	};

	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		size_t len = rows[r].len;

		if (s[0] < rows[r].lo || s[0] > rows[r].hi)
			continue;
		if (len > n)
			return 0;
		if (len > 1 && (s[1] < rows[r].lo2 || s[1] > rows[r].hi2))
			return 0;
		for (size_t i = 2; i < len; i++)
			if (s[i] < 0x80 || s[i] > 0xbf)
				return 0;
		*cp = len == 1 ? s[0] : s[0] & (0xff >> (len + 1));
		for (size_t i = 1; i < len; i++)
			*cp = *cp << 6 | (s[i] & 0x3f);
		return len;
	}
	return 0;
}

static bool oracle_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/* Valid UTF-8 whose only control characters are those in keep. */
static bool clean_text(const char *s, const char *keep)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	for (size_t i = 0; i < n;) {
		uint32_t cp = 0;
		size_t len = oracle_char(p + i, n - i, &cp);

		if (len == 0 || (oracle_control(cp) && !(cp && strchr(keep, (int)cp))))
			return false;
		i += len;
	}
	return true;
}

static void check_escape(const char *s, size_t n)
{
	char *out = malloc(4 * n + 1), *kept = malloc(4 * n + 1);
	size_t len = ap_escape(s, 0, out, 4 * n + 1);

	FUZZ_CHECK(out && kept);
	FUZZ_CHECK(len == strlen(out) && len <= 4 * n);
	FUZZ_CHECK(clean_text(out, ""));
	FUZZ_CHECK(!clean_text(s, "") || strcmp(out, s) == 0);
	len = ap_escape(s, AP_ESCAPE_KEEP_NEWLINE | AP_ESCAPE_KEEP_TAB, kept, 4 * n + 1);
	FUZZ_CHECK(len == strlen(kept) && clean_text(kept, "\n\t"));
	FUZZ_CHECK(!clean_text(s, "\n\t") || strcmp(kept, s) == 0);
	free(out);
	free(kept);
}

static int hex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void check_json(const char *s, size_t n)
{
	const unsigned char *in = (const unsigned char *)s;
	struct ap_buf b = { 0 };
	size_t i = 0, k;

	FUZZ_CHECK(ap_buf_json_string(&b, s) == 0);
	FUZZ_CHECK(b.len >= 2 && b.data[0] == '"' && b.data[b.len - 1] == '"');
	FUZZ_CHECK(clean_text(b.data, ""));
	/* decode the literal and compare, code point by code point, with the input */
	for (k = 1; k < b.len - 1;) {
		const unsigned char *o = (const unsigned char *)b.data + k;
		uint32_t got = 0, want = 0;
		size_t len;

		if (o[0] == '\\') {
			FUZZ_CHECK(k + 1 < b.len - 1);
			if (o[1] == 'u') {
				FUZZ_CHECK(k + 5 < b.len - 1 && o[2] == '0' && o[3] == '0');
				FUZZ_CHECK(hex((char)o[4]) >= 0 && hex((char)o[5]) >= 0);
				got = (uint32_t)(hex((char)o[4]) << 4 | hex((char)o[5]));
				k += 6;
			} else {
				FUZZ_CHECK(o[1] == '"' || o[1] == '\\');
				got = o[1];
				k += 2;
			}
		} else {
			FUZZ_CHECK(o[0] != '"');
			len = oracle_char(o, b.len - 1 - k, &got);
			FUZZ_CHECK(len > 0 && !oracle_control(got));
			k += len;
		}
		FUZZ_CHECK(i < n);
		len = oracle_char(in + i, n - i, &want);
		if (len == 0)
			want = in[i], len = 1; /* not UTF-8: the byte as Latin-1 */
		FUZZ_CHECK(got == want);
		i += len;
	}
	FUZZ_CHECK(i == n);
	ap_buf_clear(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	size_t n;

	FUZZ_CHECK(s);
	memcpy(s, data, size);
	s[size] = '\0';
	n = strlen(s); /* the functions take C strings: up to the first NUL */
	check_escape(s, n);
	check_json(s, n);
	free(s);
	return 0;
}
