/* systemd's own exit statuses (see sdexit.h), as systemd 252's exit-status.c names them. */
#include <stdio.h>

#include "sdexit.h"
#include "util.h"

static const char *const setup_names[] = {
	[200 - 200] = "CHDIR", [201 - 200] = "NICE", [202 - 200] = "FDS", [203 - 200] = "EXEC",
	[204 - 200] = "MEMORY", [205 - 200] = "LIMITS", [206 - 200] = "OOM_ADJUST",
	[207 - 200] = "SIGNAL_MASK", [208 - 200] = "STDIN", [209 - 200] = "STDOUT",
	[210 - 200] = "CHROOT", [211 - 200] = "IOPRIO", [212 - 200] = "TIMERSLACK",
	[213 - 200] = "SECUREBITS", [214 - 200] = "SETSCHEDULER", [215 - 200] = "CPUAFFINITY",
	[216 - 200] = "GROUP", [217 - 200] = "USER", [218 - 200] = "CAPABILITIES",
	[219 - 200] = "CGROUP", [220 - 200] = "SETSID", [221 - 200] = "CONFIRM",
	[222 - 200] = "STDERR", [224 - 200] = "PAM", [225 - 200] = "NETWORK",
	[226 - 200] = "NAMESPACE", [227 - 200] = "NO_NEW_PRIVILEGES", [228 - 200] = "SECCOMP",
	[229 - 200] = "SELINUX_CONTEXT", [230 - 200] = "PERSONALITY",
	[231 - 200] = "APPARMOR_PROFILE", [232 - 200] = "ADDRESS_FAMILIES",
	[233 - 200] = "RUNTIME_DIRECTORY", [235 - 200] = "CHOWN",
	[236 - 200] = "SMACK_PROCESS_LABEL", [237 - 200] = "KEYRING",
	[238 - 200] = "STATE_DIRECTORY", [239 - 200] = "CACHE_DIRECTORY",
	[240 - 200] = "LOGS_DIRECTORY", [241 - 200] = "CONFIGURATION_DIRECTORY",
	[242 - 200] = "NUMA_POLICY", [243 - 200] = "CREDENTIALS", [245 - 200] = "BPF",
};

const char *ap_exit_status_name(int status)
{
	if (status < 200 || status - 200 >= (int)ELEMENTSOF(setup_names))
		return NULL;
	return setup_names[status - 200];
}

bool ap_exit_status_is_setup(int status)
{
	return ap_exit_status_name(status) != NULL;
}

const char *ap_exit_status_format(int status, char *buf, size_t size)
{
	const char *name = ap_exit_status_name(status);

	if (name)
		snprintf(buf, size, "%d/%s", status, name);
	else
		snprintf(buf, size, "%d", status);
	return buf;
}
