/* The exit statuses systemd's service manager uses itself when it cannot even start a
 * service's process (systemd.exec(5), "Process Exit Codes"): 216/GROUP means the process never
 * ran, which is a different problem from a program that exits 1. Pure. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/* "GROUP" for 216, NULL for statuses the manager does not use. */
const char *ap_exit_status_name(int status);
/* True when the manager, not the program, produced the status (it could not start it). */
bool ap_exit_status_is_setup(int status);
/* "216/GROUP" or "1" into buf. */
const char *ap_exit_status_format(int status, char *buf, size_t size);
