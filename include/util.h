/* Small helpers shared by every module: cleanup attributes, string vectors, bounded
 * formatting, the one escaping of output (ap_escape, ap_buf_json_string). Nothing here does
 * I/O but closing an fd on cleanup. */
#pragma once
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

static inline void *ap_take_ptr_(void *pp)
{
	void **p = pp;
	void *v = *p;
	*p = NULL;
	return v;
}
#define TAKE_PTR(p) ((__typeof__(p))ap_take_ptr_(&(p)))

static inline void freep(void *p) { free(*(void **)p); }
#define _cleanup_free_ _cleanup_(freep)
/* For fds that have nothing left to lose (directories, read-only files, fds of an operation
 * that already failed): close()'s error is ignored. A written file's close is checked by its
 * writer (ap_fs_write_atomic). */
static inline void ap_closep(int *fd)
{
	if (*fd >= 0)
		(void)close(*fd);
}
#define _cleanup_close_ _cleanup_(ap_closep)

/* A NULL-terminated vector of heap strings; NULL is the empty vector. */
typedef char **strv_t;
void ap_strv_free(char **v);
static inline void ap_strv_freep(char ***v) { ap_strv_free(*v); }
#define _cleanup_strv_free_ _cleanup_(ap_strv_freep)
size_t ap_strv_length(char *const *v);
bool ap_strv_contains(char *const *v, const char *s);
/* Appends a copy of s. Returns 0 or -ENOMEM; v is unchanged on failure. */
int ap_strv_push(char ***v, const char *s);
/* Appends s only if not present yet. */
int ap_strv_push_unique(char ***v, const char *s);
int ap_strv_copy(char *const *v, char ***ret);

/* A vector being built entry by entry, with its length and capacity: a push is amortised
 * O(1) where ap_strv_push counts the vector and reallocates it every time, so building n
 * entries costs O(n), not O(n^2). v is a valid vector at every step (NULL while empty,
 * else NULL-terminated) and may be read as one; it belongs to the builder until taken. */
struct ap_strv_builder {
	char **v;
	size_t len, cap; /* cap: pointers allocated, the terminator's included */
};
/* Appends a copy of s. Returns 0 or -ENOMEM; the vector is unchanged on failure. */
int ap_strv_builder_push(struct ap_strv_builder *b, const char *s);
/* The vector built (NULL when empty); b is empty again. */
char **ap_strv_builder_take(struct ap_strv_builder *b);
void ap_strv_builder_clear(struct ap_strv_builder *b);
#define _cleanup_strv_builder_ _cleanup_(ap_strv_builder_clear)

/* Room for one more entry in a vector v of n entries of size bytes with room for *cap: v
 * itself while n < *cap, else v reallocated to room for 2 n (16 at least) and *cap updated,
 * so that n appends cost O(n). *cap may be less than the room v has (0 for a vector someone
 * else allocated), never more. NULL (v and *cap unchanged) when out of memory. */
void *ap_grow(void *v, size_t n, size_t *cap, size_t size);

/* An index from strings to positions in a vector kept beside it (a plan's units, a file set's
 * entries): a hash table, so that adding or finding a key is O(1) on average and n lookups
 * cost O(n) where a search of the vector costs O(n^2). Keys are borrowed: each must stay,
 * unchanged, as long as the index. The first position added under a key stays its position,
 * as a search of the vector from its start finds the first. Empty when zeroed. */
struct ap_strindex_slot;
struct ap_strindex {
	struct ap_strindex_slot *slot;
	size_t cap, n; /* cap: a power of two, at least twice n */
};
/* 1 when added, 0 when key was there already (its position kept), -ENOMEM (the index is
 * unchanged then). */
int ap_strindex_add(struct ap_strindex *x, const char *key, size_t pos);
/* Whether key is in the index; its position in *ret_pos (left alone when not). */
bool ap_strindex_find(const struct ap_strindex *x, const char *key, size_t *ret_pos);
/* Removes key; whether it was there, its position in *ret_pos then. */
bool ap_strindex_remove(struct ap_strindex *x, const char *key, size_t *ret_pos);
void ap_strindex_clear(struct ap_strindex *x);
#define _cleanup_strindex_ _cleanup_(ap_strindex_clear)

/* Strings (unit names, paths), each once in the order first added, with an index to tell
 * whether one is there: a vector built with ap_strv_push_unique costs O(n^2) to build, this
 * O(n). names.v may be read as a vector (NULL while empty) until a removal: a removal leaves
 * a hole (NULL) there, closed by ap_strset_take, so that n removals cost O(n) too. Empty
 * when zeroed. */
struct ap_strset {
	struct ap_strv_builder names;
	struct ap_strindex index;
};
/* Adds a copy of s. 1 when added, 0 when there already, -ENOMEM (the set unchanged). */
int ap_strset_add(struct ap_strset *s, const char *str);
bool ap_strset_has(const struct ap_strset *s, const char *str);
/* 1 when removed, 0 when not there. A string added again goes to the end. */
int ap_strset_remove(struct ap_strset *s, const char *str);
/* An empty set s takes over the vector *v (its entries distinct, as a set's are) and *v is
 * NULL; -ENOMEM leaves both unchanged. */
int ap_strset_adopt(struct ap_strset *s, char ***v);
/* The vector built (NULL when nothing was ever added), in order; s is empty again. */
char **ap_strset_take(struct ap_strset *s);
void ap_strset_clear(struct ap_strset *s);
#define _cleanup_strset_ _cleanup_(ap_strset_clear)

/* asprintf that returns NULL on failure (vasprintf leaves its pointer undefined then). */
char *ap_strdupf(const char *fmt, ...) _printf_(1, 2);
char *ap_strdupvf(const char *fmt, va_list ap) _printf_(1, 0);
bool ap_startswith(const char *s, const char *prefix);
bool ap_endswith(const char *s, const char *suffix);
bool ap_streq_ptr(const char *a, const char *b);
/* Whether unit name matches pattern (a name or a glob of one) as systemd matches unit
 * patterns: fnmatch() with FNM_NOESCAPE, because a backslash in a unit name is part of an
 * escape such as "\x2d", never a glob escape. Every unit glob (guard.watch, restart:,
 * reload:, `autopull log UNIT`) goes through here. */
bool ap_unit_glob_match(const char *pattern, const char *name);

/* A repository path is safe when it is relative, has no empty, "." or ".." component,
 * no NUL (implied) and no control characters, and is at most PATH_MAX bytes long. */
bool ap_path_is_safe_relative(const char *p);
/* Absolute, normalised (no "//", ".", ".." components). */
bool ap_path_is_normalized_absolute(const char *p);
/* The directory path is in: a copy of path up to its last '/', or "/" when that is the root
 * ("/etc/caddy/Caddyfile" -> "/etc/caddy", "/motd" -> "/", "a/b" -> "a"). The name after
 * it is strrchr(path, '/') + 1. NULL when out of memory, or (errno EINVAL) when path has no
 * '/'. */
char *ap_path_parent(const char *path);

/* Growable byte buffer used for output and captured stderr. */
struct ap_buf {
	char *data;
	size_t len, cap;
};
int ap_buf_append(struct ap_buf *b, const void *p, size_t n);
int ap_buf_printf(struct ap_buf *b, const char *fmt, ...) _printf_(2, 3);

/* Text for a terminal or a log, from strings autopull does not control (commit subjects and
 * authors, paths, file contents, unit names, state files). Copies s into out (size bytes,
 * NUL-terminated) with a newline, tab and carriage return written as "\n", "\t", "\r" (flags
 * may keep newlines and tabs as they are), and every other C0 control character, DEL, C1
 * control character (U+0080..U+009F) and byte that is not part of valid UTF-8 as "\xHH" (a
 * C1 character as its two bytes), so that no escape sequence reaches a
 * terminal, one line stays one line and the text is valid UTF-8. A backslash is kept as it
 * is (unit names are full of "\x2d"): the escaping is for reading, not meant to be
 * reversed. Stops before a character or an escape that would not fit whole; returns the
 * length written. 4 * strlen(s) + 1 bytes always suffice. The logger and every human output
 * use this. */
enum { AP_ESCAPE_KEEP_NEWLINE = 1 << 0, AP_ESCAPE_KEEP_TAB = 1 << 1 };
size_t ap_escape(const char *s, unsigned flags, char *out, size_t size);
/* Appends s escaped (ap_escape). */
int ap_buf_escape(struct ap_buf *b, const char *s, unsigned flags);
/* Appends one line of human output: formatted, escaped whole (so a newline in an argument
 * cannot start another line) and ended with '\n'. fmt itself has no newline. */
int ap_buf_linef(struct ap_buf *b, const char *fmt, ...) _printf_(2, 3);

/* Appends s as a JSON string literal (with quotes), always valid UTF-8: '"' and '\\' are
 * escaped, control characters (C0, DEL, C1) are written as "\u00XX", and a byte that is not
 * part of valid UTF-8 as "\u00XX" of its value (read as Latin-1, so nothing is dropped and a
 * Latin-1 name reads right). Every JSON string autopull prints goes through here. */
int ap_buf_json_string(struct ap_buf *b, const char *s);
/* The same, or null for NULL or "" (an optional value that is not there). */
int ap_buf_json_string_or_null(struct ap_buf *b, const char *s);
void ap_buf_clear(struct ap_buf *b);

/* Monotonic and realtime clocks in microseconds. */
unsigned long long ap_now_monotonic_usec(void);
unsigned long long ap_now_realtime_usec(void);

/* The longest duration ap_parse_duration accepts: INT64_MAX microseconds (about 292,000
 * years), so that a clock reading plus a duration cannot wrap around. */
#define AP_DURATION_MAX_USEC 9223372036854775807ULL
/* Parses "10ms", "10s", "5m", "2h", "1d", "300" (seconds) into microseconds. -EINVAL for
 * anything else, -ERANGE above AP_DURATION_MAX_USEC. */
int ap_parse_duration(const char *s, unsigned long long *ret_usec);

/* "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago" (or "in …" for the future). */
void ap_format_ago(unsigned long long then_usec, unsigned long long now_usec, char *buf,
		   size_t size);
/* Colour for people: only on a terminal, never with NO_COLOR set. */
bool ap_use_colour(int fd);
