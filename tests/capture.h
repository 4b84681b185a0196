/* Catches what a call logs: stderr points at a file in a test's temp dir between
 * capture_start and capture_end, which returns the text (the caller frees it). For the
 * cmocka tests that assert on the messages of a unit's failures. */
#pragma once
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "fsutil.h"
#include "util.h"

struct capture {
	char *path;
	int fd, saved;
};

static inline void capture_start(struct capture *c, const char *dir)
{
	c->path = ap_strdupf("%s/captured-stderr", dir);
	assert_non_null(c->path);
	c->fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(c->fd >= 0);
	fflush(stderr);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_int_equal(dup2(c->fd, STDERR_FILENO), STDERR_FILENO);
}

static inline char *capture_end(struct capture *c)
{
	char *text = NULL;
	size_t len;

	fflush(stderr);
	assert_int_equal(dup2(c->saved, STDERR_FILENO), STDERR_FILENO);
	close(c->saved);
	close(c->fd);
	assert_int_equal(ap_fs_read_file(c->path, 1 << 20, &text, &len), 0);
	free(c->path);
	return text;
}
