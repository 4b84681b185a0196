/* Lingering (linger.h): logind marks a lingering user with a file named after it in
 * /var/lib/systemd/linger/ (what `loginctl enable-linger` creates and `loginctl show-user
 * -p Linger` reads). Deliberately not here: changing it, which needs the user's consent or
 * root's. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "linger.h"
#include "log.h"
#include "util.h"

#define LINGER_DIR "/var/lib/systemd/linger"

int ap_linger_check(enum ap_scope scope)
{
	struct passwd pw, *res = NULL;
	_cleanup_free_ char *path = NULL;
	char buf[4096];
	int r;

	if (scope != AP_SCOPE_USER)
		return 0;
	r = getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res);
	if (r != 0 || !res)
		return ap_log_error(r ? -r : -ESRCH, "cannot tell whether lingering is on: uid %u "
				    "has no user name", (unsigned)getuid());
	path = ap_strdupf("%s/%s", LINGER_DIR, pw.pw_name);
	if (!path)
		return -ENOMEM;
	if (faccessat(AT_FDCWD, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	ap_log_warning("lingering is off for user '%s': its service manager, and the autopull "
		       "timer with it, stops when the user's last session ends", pw.pw_name);
	ap_log_warning("to keep it running: loginctl enable-linger %s", pw.pw_name);
	return 1;
}
