/* The line formats of autopull's small state files, as formatter/parser pairs: pure, no I/O
 * (state.c reads and writes the files and names them in its messages). Every number is a
 * decimal that must fit its field: no sign, no blank, no base prefix, no overflow.
 *
 *   pin          "<sha> <usec> <reason>"                    one line
 *   bad          "<sha> <usec> <why>"                       one line per commit
 *   overrides    "<usec> <kind> <sha> <reason>"             one line per override
 *   counters     "<name> <value>"                           one line per counter
 *   probes       "<0|1> <failures> <kind> <times|-> <unit>\t<result>"   one line per unit
 *   expected     "commit <sha>" "config <digest>" then      see struct ap_expected
 *                "<oid> <mode> <owner|-> <group|-> <root_len> <repo_path> <path>"
 *   tick         "pending <n>" "drift <n>"                  n: -1 (not known) or a count
 *   last-apply   "<usec> <0|1>"
 *   owned        one normalised absolute path per line
 *   manifest     of a file set (state-fileset.h): one saved host file per line
 *
 * These formats carry no version line: the files were written without one, and adding one
 * would change the bytes existing state directories hold. Each begins with a typed word (a
 * commit id, a number, "commit", "pending", a path), so a later version that starts with a
 * line "autopull-<file> 2" is refused by these parsers rather than misread (as journal.h
 * does).
 *
 * Parsers return -EBADMSG with the number of the first bad line (1-based; 0: something is
 * missing rather than wrong) and a short reason in *err when it is given. The parsers of the
 * log-like files (bad in lenient mode, overrides, counters) skip a damaged line and still
 * report the first one in *err. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "model.h"

/* Reasons are cut to this many bytes and to one printable line. */
#define AP_RECORDS_REASON_MAX 512

struct ap_records_error {
	unsigned line;
	const char *what; /* "is malformed", ... */
};

struct ap_pin {
	char commit[AP_OID_HEXSZ + 1];
	uint64_t realtime_usec;
	char *reason;
};
void ap_pin_clear(struct ap_pin *p);
int ap_records_pin_parse(const char *text, struct ap_pin *ret, struct ap_records_error *err);
int ap_records_pin_format(const struct ap_pin *p, char **ret);

/* A commit with a time and a reason: a line of bad, or of overrides of one kind. */
struct ap_bad {
	char commit[AP_OID_HEXSZ + 1];
	uint64_t realtime_usec;
	char *why;
};
void ap_bad_free(struct ap_bad *v, size_t n);
/* strict: the first damaged (or empty) line fails the parse; otherwise it is left out. */
int ap_records_bad_parse(const char *text, bool strict, struct ap_bad **ret, size_t *ret_n,
			 struct ap_records_error *err);
int ap_records_bad_format(const char *commit, uint64_t usec, const char *why, char **ret);
/* The overrides of kind, oldest first; damaged lines are left out. */
int ap_records_overrides_parse(const char *text, const char *kind, struct ap_bad **ret,
			       size_t *ret_n, struct ap_records_error *err);
int ap_records_override_format(uint64_t usec, const char *kind, const char *commit,
			       const char *reason, char **ret);
/* How many lines text has and the newest time in word usec_word of them (0 when none). */
int ap_records_summary(const char *text, unsigned usec_word, unsigned *ret_n,
		       uint64_t *ret_last_usec);

struct ap_counter {
	char name[64];
	uint64_t value;
};
/* A damaged line only loses that counter. */
int ap_records_counters_parse(const char *text, struct ap_counter **ret, size_t *ret_n,
			      struct ap_records_error *err);
int ap_records_counters_format(const struct ap_counter *v, size_t n, char **ret);

/* A probed unit (probe.h): its last result, how many probes it failed, and the realtime usec of
 * its recent failures (oldest first; the guard counts them within its window). */
#define AP_RECORDS_PROBE_TIMES_MAX 32
struct ap_probe_line {
	bool healthy;
	uint64_t failures;
	char kind[8];     /* lower-case letters */
	uint64_t times[AP_RECORDS_PROBE_TIMES_MAX];
	size_t n_times;
	char unit[256];   /* no white space */
	char result[256]; /* one line without tabs (the formatter replaces them) */
};
/* Damaged lines are left out (the first is reported in *err). */
int ap_records_probes_parse(const char *text, struct ap_probe_line **ret, size_t *ret_n,
			    struct ap_records_error *err);
/* -EINVAL for a unit or kind that cannot be written (white space, too long). */
int ap_records_probes_format(const struct ap_probe_line *v, size_t n, char **ret);
/* Whether name can be a counter's name (a word of fewer than 64 bytes). */
bool ap_records_counter_name_ok(const char *name);

/* What a managed file should be, as of the applied commit: for drift. */
struct ap_expected {
	char *path;            /* host path */
	char *repo_path;
	size_t root_len;
	char oid[AP_OID_HEXSZ + 1]; /* git blob id of the bytes */
	mode_t mode;
	char *owner, *group;   /* NULL: the user autopull runs as */
};
struct ap_expected_set {
	char commit[AP_OID_HEXSZ + 1]; /* the commit these describe */
	char config[65];               /* under this configuration (its digest) */
	struct ap_expected *v;
	size_t n;
};
void ap_expected_set_clear(struct ap_expected_set *e);
/* A set written before the configuration was part of the key has no "config" line: it reads
 * with an empty digest, which never matches, so it is computed again. */
int ap_records_expected_parse(const char *text, struct ap_expected_set *ret,
			      struct ap_records_error *err);
int ap_records_expected_format(const struct ap_expected_set *e, char **ret);

/* What the last apply tick saw, for the metrics: commits pending on the branch and managed
 * files that drifted (-1: not known). */
struct ap_tick {
	long pending, drift;
};
int ap_records_tick_parse(const char *text, struct ap_tick *ret, struct ap_records_error *err);
int ap_records_tick_format(const struct ap_tick *t, char **ret);

/* What the last run saw of its fleet (fleet:), for the metrics and status: whether it was
 * held back (no slot in time, or its commit's canaries not healthy yet), how long it waited
 * for its slot in ms (-1: not known), and what it waits for (one line, may be empty).
 * "blocked <n>\nwait-ms <n>\n[why <text>\n]". */
struct ap_fleet_tick {
	long blocked, wait_ms;
	char why[512];
};
int ap_records_fleet_parse(const char *text, struct ap_fleet_tick *ret,
			   struct ap_records_error *err);
int ap_records_fleet_format(const struct ap_fleet_tick *t, char **ret);

struct ap_last_apply {
	uint64_t realtime_usec;
	bool ok;
};
int ap_records_last_apply_parse(const char *text, struct ap_last_apply *ret,
				struct ap_records_error *err);
int ap_records_last_apply_format(const struct ap_last_apply *la, char **ret);

/* The inventory of host paths autopull installed: sorted, unique (NULL when empty). */
int ap_records_owned_parse(const char *text, char ***ret, struct ap_records_error *err);
int ap_records_owned_format(char *const *owned, char **ret);

/* The manifest of a file set (see state-fileset.h for its lines), entries in file order;
 * empty lines are skipped. */
int ap_records_manifest_parse(const char *text, struct ap_host_file **ret, size_t *ret_n,
			      struct ap_records_error *err);
int ap_records_manifest_format(const struct ap_host_file *v, size_t n, char **ret);
void ap_records_manifest_free(struct ap_host_file *v, size_t n);

/* A decimal number that makes up all of w and is at most max. */
bool ap_records_number(const char *w, unsigned long long max, unsigned long long *ret);
/* An octal file mode of one to four digits. */
bool ap_records_is_mode(const char *w);

/* One printable line of at most AP_RECORDS_REASON_MAX bytes (control characters become
 * blanks): reasons and messages come from operators and unit properties. */
char *ap_records_one_line(const char *s);
