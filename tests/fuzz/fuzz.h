/* Shared by the libFuzzer targets in this directory: loading a config from bytes, and a
 * check that stops the fuzzer with a message (assert() would vanish under NDEBUG). */
#pragma once
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

#define FUZZ_CHECK(cond)                                                                  \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                   \
			abort();                                                          \
		}                                                                         \
	} while (0)

/* ap_config_load takes a path: the bytes go to a memfd named by /proc/self/fd/N. */
static inline int fuzz_config_load(const void *data, size_t size, bool force_user,
				   struct ap_config **ret)
{
	char path[64];
	int fd = memfd_create("fuzz-config", MFD_CLOEXEC), r;

	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	r = ap_config_load(path, force_user, ret);
	close(fd);
	return r;
}

/* For targets whose first byte picks the parser: the rest of the input as the C string the
 * parsers read (NULL when there is none), with the logs quiet. */
static inline char *fuzz_selected_text(const uint8_t *data, size_t size)
{
	if (size < 1)
		return NULL;
	ap_log_set_max_level(0);
	return strndup((const char *)data + 1, size - 1);
}

/* A fixed environment: the config's per-scope defaults come from it. No log lines. */
static inline void fuzz_quiet_env(void)
{
	setenv("HOME", "/home/fuzz", 1);
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("XDG_STATE_HOME");
	ap_log_set_max_level(0);
}
