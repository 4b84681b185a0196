/* What state-fileset.c and state-log.c share with state.c and nobody else: the open state
 * directory and its plain-file helpers (every write an atomic replace). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#define AP_STATE_MAX_FILE (16u * 1024 * 1024)

/* A report written while a batch is open (ap_state_reports_begin): kept here, read back by
 * ap_state_file_read, and written with the others at ap_state_reports_commit. */
struct ap_state_report {
	char *name;
	char *text;
};

struct ap_state {
	char *path;
	int dirfd;
	int lockfd;
	bool batching;
	int counters_lockfd;   /* held while batching: the counters' read and write are one */
	struct ap_state_report *reports;
	size_t n_reports;
};

/* What the next apply depends on: durable before the call returns. Errors logged. */
int ap_state_file_write(struct ap_state *s, const char *name, const char *text);
/* What only reports or caches: never torn, but a power cut may bring back the version
 * before (the next state write syncs the directory). Saves an fsync per file per tick. */
int ap_state_file_report(struct ap_state *s, const char *name, const char *text);
/* -ENOENT quietly; other errors logged, with what to do about the file. */
int ap_state_file_read(struct ap_state *s, const char *name, size_t max, char **ret);
