/* What bus.c and bus-props.c share: the connection to the manager and its names. Only the
 * bus files include <systemd/sd-bus.h>; nothing outside the bus module sees this. */
#pragma once
#include <systemd/sd-bus.h>

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER SD_DEST ".Manager"

struct job_wait;

struct ap_bus {
	sd_bus *bus;
	sd_bus_slot *job_removed;
	const char *scope;     /* "system" or "user", for messages */
	struct job_wait *wait; /* the ap_bus_run_jobs() call that is waiting, or NULL */
};

/* The manager's message when it sent one, else the errno text. */
const char *bus_error_message(const sd_bus_error *e, int r);
