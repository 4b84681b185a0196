/* Fetching the branch into the mirror (the network half of the repo module; see repo.h):
 * the no-op check, host keys (plain and hashed known_hosts), the deploy key, the socket
 * stream that bounds connect and I/O time, and the one place that tells a fetch failure
 * worth retrying from one that needs an operator. It deliberately never runs git or ssh,
 * never reads a user's or the system's git config, and never decides what to apply. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>
#include <git2/sys/stream.h>

#include "digest.h"
#include "log.h"
#include "repo-private.h"
#include "repo.h"
#include "util.h"

#define HOSTKEY_MAX 2048 /* bytes of a raw host key blob (RSA-16384 is ~2 KiB) */

struct fetch_ctx {
	const struct ap_remote_opts *o;
	char *url; /* o->url without a password, for messages */
	git_remote_callbacks cb;
	unsigned key_attempts;
	int cert_type; /* the last certificate libgit2 showed us: GIT_CERT_* */
};

/* --- host keys ------------------------------------------------------------------------- */

/* "|1|base64(salt)|base64(HMAC-SHA1(salt, name))", what `ssh-keygen -H` and
 * HashKnownHosts write. */
static bool hashed_host_matches(const char *entry, const char *name)
{
	unsigned char salt[64], want[AP_SHA1_SIZE + 4], got[AP_SHA1_SIZE];
	const char *s = entry + 3, *bar = strchr(s, '|');
	size_t salt_len, want_len;

	if (!bar || ap_digest_base64_decode(s, (size_t)(bar - s), salt, sizeof(salt),
					    &salt_len) < 0 ||
	    ap_digest_base64_decode(bar + 1, strlen(bar + 1), want, sizeof(want), &want_len) < 0 ||
	    want_len != AP_SHA1_SIZE ||
	    ap_digest_hmac_sha1(salt, salt_len, name, strlen(name), got) < 0)
		return false;
	return memcmp(got, want, AP_SHA1_SIZE) == 0;
}

static bool host_list_has(char *hosts, const char *name)
{
	char *save = NULL;

	if (ap_startswith(hosts, "|1|"))
		return hashed_host_matches(hosts, name);
	for (char *p = strtok_r(hosts, ",", &save); p; p = strtok_r(NULL, ",", &save))
		if (strcasecmp(p, name) == 0)
			return true;
	return false;
}

static bool key_matches(const char *b64, const git_cert_hostkey *hk)
{
	unsigned char raw[HOSTKEY_MAX];
	size_t n;

	return ap_digest_base64_decode(b64, strlen(b64), raw, sizeof(raw), &n) >= 0 &&
	       n == hk->hostkey_len && memcmp(raw, hk->hostkey, n) == 0;
}

/* One known_hosts line: 1 if it lists name with this key, -1 if it revokes the key, 0
 * otherwise. Plain and hashed names are understood. Wildcard and negated patterns and
 * @cert-authority lines are not: such lines never match, so a host only they would admit
 * is rejected (fail closed). */
static int known_hosts_line(char *line, const char *name, const git_cert_hostkey *hk)
{
	char *save = NULL, *hosts = strtok_r(line, " \t\r\n", &save), *b64;
	bool revoked = false;

	if (!hosts || hosts[0] == '#')
		return 0;
	if (hosts[0] == '@') {
		if (strcmp(hosts, "@revoked") != 0)
			return 0;
		revoked = true;
		hosts = strtok_r(NULL, " \t\r\n", &save);
	}
	if (!hosts || !strtok_r(NULL, " \t\r\n", &save) || !(b64 = strtok_r(NULL, " \t\r\n",
									    &save)))
		return 0;
	if (!host_list_has(hosts, name) || !key_matches(b64, hk))
		return 0;
	return revoked ? -1 : 1;
}

/* 1 if the key is listed for name, 0 if not, -EKEYREVOKED, or -errno on read failure. */
static int known_hosts_check(const char *path, const char *name, const git_cert_hostkey *hk)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	int found = 0, m;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		m = known_hosts_line(line, name, hk);
		if (m < 0) {
			found = -EKEYREVOKED;
			break;
		}
		if (m > 0)
			found = 1;
	}
	if (found >= 0 && ferror(f))
		found = -EIO;
	free(line);
	fclose(f);
	return found;
}

/* The name OpenSSH records: "host" for port 22 (and scp-style URLs), "[host]:port" else. */
static char *known_hosts_name(const char *url, const char *host)
{
	const char *a = strstr(url, "://"), *end, *at, *colon;

	if (!a)
		return strdup(host);
	a += 3;
	end = a + strcspn(a, "/");
	at = memrchr(a, '@', (size_t)(end - a));
	if (at)
		a = at + 1;
	if (*a == '[' && (a = memchr(a, ']', (size_t)(end - a))) == NULL)
		return strdup(host);
	colon = memchr(a, ':', (size_t)(end - a));
	if (!colon || end - colon <= 1 || (end - colon == 3 && strncmp(colon, ":22", 3) == 0))
		return strdup(host);
	return ap_strdupf("[%s]:%.*s", host, (int)(end - colon - 1), colon + 1);
}

/* With known_hosts configured we decide alone: listed → accept, else reject. Without it,
 * GIT_PASSTHROUGH keeps libgit2's own verdict ($HOME/.ssh/known_hosts, CA bundle). */
static int cb_certificate(git_cert *cert, int valid, const char *host, void *payload)
{
	const git_cert_hostkey *hk = (const git_cert_hostkey *)cert;
	struct fetch_ctx *f = payload;
	_cleanup_free_ char *name = NULL, *msg = NULL;
	int k;

	f->cert_type = cert->cert_type;
	if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2 || !f->o->known_hosts)
		return GIT_PASSTHROUGH;
	if (!(hk->type & GIT_CERT_SSH_RAW)) {
		git_error_set_str(GIT_ERROR_SSH, "no raw host key to check against known_hosts");
		return GIT_ECERTIFICATE;
	}
	name = known_hosts_name(f->o->url, host);
	k = name ? known_hosts_check(f->o->known_hosts, name, hk) : -ENOMEM;
	if (k > 0)
		return 0;
	if (k == 0)
		msg = ap_strdupf("host key of '%s' is not in '%s'", name, f->o->known_hosts);
	else if (k == -EKEYREVOKED)
		msg = ap_strdupf("host key of '%s' is revoked in '%s'", name, f->o->known_hosts);
	else
		msg = ap_strdupf("failed to read '%s': %s", f->o->known_hosts, strerror(-k));
	git_error_set_str(GIT_ERROR_SSH, msg ? msg : "host key check failed");
	return GIT_ECERTIFICATE;
}

/* --- credentials -------------------------------------------------------------------------- */

/* One try per key: libgit2 asks again after each rejection until the server hangs up. */
static int cb_credentials(git_credential **out, const char *url, const char *user_from_url,
			  unsigned int allowed, void *payload)
{
	struct fetch_ctx *f = payload;
	const char *user = user_from_url && *user_from_url ? user_from_url : "git";
	_cleanup_free_ char *pub = NULL, *msg = NULL;

	if (!f->o->ssh_key)
		return GIT_PASSTHROUGH;
	if (allowed & GIT_CREDENTIAL_SSH_KEY) {
		if (f->key_attempts++ > 0) {
			msg = ap_strdupf("ssh key '%s' was rejected for user '%s'", f->o->ssh_key,
					 user);
			git_error_set_str(GIT_ERROR_SSH, msg ? msg : "ssh key was rejected");
			return GIT_EAUTH;
		}
		pub = ap_strdupf("%s.pub", f->o->ssh_key);
		if (!pub)
			return -1;
		return git_credential_ssh_key_new(out, user, pub, f->o->ssh_key, NULL);
	}
	if (allowed & GIT_CREDENTIAL_USERNAME)
		return git_credential_username_new(out, user);
	return GIT_PASSTHROUGH;
}

/* Like ssh, a private key that others may read is refused: it is no secret any more. */
static int check_ssh_key(const struct fetch_ctx *f)
{
	struct stat st;

	if (!f->o->ssh_key || !ap_startswith(f->o->url, "ssh://"))
		return 0;
	if (stat(f->o->ssh_key, &st) < 0)
		return ap_log_error(-errno, "cannot use repo.ssh_key '%s': %s", f->o->ssh_key,
				    strerror(errno));
	if (st.st_mode & 0077)
		return ap_log_error(-EPERM,
				    "repo.ssh_key '%s' is accessible by others (mode %04o); "
				    "ssh refuses such keys, and so does autopull: chmod 600 '%s'",
				    f->o->ssh_key, (unsigned)(st.st_mode & 07777), f->o->ssh_key);
	return 0;
}

/* --- local repositories: whose are they? ------------------------------------------------ */

static const char *local_path(const char *url)
{
	if (ap_startswith(url, "file://"))
		return url + 7;
	return url[0] == '/' ? url : NULL;
}

/* libgit2 refuses a repository of another user with the misleading "config value
 * 'safe.directory' was not found" (the config search paths are pinned empty, and a
 * ~/.gitconfig must not be able to allow it anyway). We check first and say what to do;
 * libgit2's own check then stays on unless the operator trusts the owner. */
static int check_owner(const struct fetch_ctx *f)
{
	const char *path = local_path(f->o->url);
	_cleanup_free_ char *dotgit = path ? ap_strdupf("%s/.git", path) : NULL;
	struct stat st;
	uid_t me = geteuid();

	if (!path)
		return 0;
	if (!dotgit)
		return -ENOMEM;
	/* A path that is not there (yet) may be a file system not mounted yet: worth a retry.
	 * One that is there but holds no repository is not (fetch_failed). */
	if (stat(path, &st) < 0)
		return ap_log_error(-EHOSTUNREACH, "failed to fetch '%s': '%s' is not there (%s); "
				    "will retry (check repo.url if it stays so)", f->url, path,
				    strerror(errno));
	if (st.st_uid == me && !(stat(dotgit, &st) == 0 && st.st_uid != me))
		return 0;
	if (f->o->trust_owner)
		return 0;
	return ap_log_error(-EPERM, "repository '%s' is owned by uid %u; autopull runs as uid %u; "
			    "chown it or set repo.trust_owner: true", path, (unsigned)st.st_uid,
			    (unsigned)me);
}

/* --- the socket stream: connect and I/O timeouts -------------------------------------- */

/* libgit2 1.5 has no connect or I/O timeout (GIT_OPT_SET_SERVER_CONNECT_TIMEOUT came in
 * 1.7), so a black-holed remote held a fetch for the kernel's SYN retries (~2 min) and a
 * silent one forever. libgit2 lets an application replace its plain socket stream
 * (git_stream_register), and every transport that talks TCP builds on that stream: http,
 * https (mbedTLS runs over it), git:// and ssh. Ours connects non-blocking with a deadline
 * over all addresses, then sets SO_RCVTIMEO/SO_SNDTIMEO for the I/O timeout. libssh2 polls
 * the socket itself, so over ssh only the connect is bounded by us.
 *
 * The first four members mirror libgit2's private git_socket_stream (streams/socket.h,
 * unchanged from 1.5 to 1.9): its ssh transport hands the descriptor at that offset to
 * libssh2. */
struct net_stream {
	git_stream parent;
	char *host;
	char *port;
	int fd;
};

/* Process-wide like libgit2's stream registry; set by each fetch before it connects. */
static unsigned long long net_connect_usec, net_io_usec;

static int poll_ms(unsigned long long deadline)
{
	unsigned long long now = ap_now_monotonic_usec();

	if (!deadline)
		return -1;
	return now >= deadline ? 0 : (int)((deadline - now + 999) / 1000);
}

/* One address: a descriptor in blocking mode with the I/O timeouts set, or -errno. */
static int net_connect_one(const struct addrinfo *ai, unsigned long long deadline)
{
	struct timeval io = { .tv_sec = (time_t)(net_io_usec / 1000000),
			      .tv_usec = (suseconds_t)(net_io_usec % 1000000) };
	struct pollfd p = { .events = POLLOUT };
	int fd, err = 0, n = 1;
	socklen_t len = sizeof(err);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	if (fd < 0)
		return -errno;
	p.fd = fd;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		err = errno == EINPROGRESS ? 0 : errno;
		while (!err && (n = poll(&p, 1, poll_ms(deadline))) < 0 && errno == EINTR)
			;
		if (!err && n == 0)
			err = ETIMEDOUT;
		else if (!err && (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0))
			err = errno;
	}
	if (!err && (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0 ||
		     setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &io, sizeof(io)) < 0 ||
		     setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &io, sizeof(io)) < 0))
		err = errno;
	if (err) {
		close(fd);
		return -err;
	}
	return fd;
}

static int net_connect(git_stream *stream)
{
	struct net_stream *st = (struct net_stream *)stream;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM },
		*info = NULL;
	unsigned long long deadline = net_connect_usec ? ap_now_monotonic_usec() + net_connect_usec
		: 0;
	int k, fd = -EHOSTUNREACH;

	k = getaddrinfo(st->host, st->port, &hints, &info);
	if (k != 0) {
		git_error_set(GIT_ERROR_NET, "failed to resolve address for %s: %s", st->host,
			      gai_strerror(k));
		return -1;
	}
	for (const struct addrinfo *ai = info; ai && fd < 0 && fd != -ETIMEDOUT; ai = ai->ai_next)
		fd = net_connect_one(ai, deadline);
	freeaddrinfo(info);
	if (fd == -ETIMEDOUT)
		git_error_set(GIT_ERROR_NET, "connecting to %s port %s timed out after %.1f s "
			      "(repo.connect_timeout)", st->host, st->port, net_connect_usec / 1e6);
	else if (fd < 0)
		git_error_set(GIT_ERROR_NET, "failed to connect to %s port %s: %s", st->host,
			      st->port,
			      strerror(-fd));
	if (fd < 0)
		return -1;
	st->fd = fd;
	return 0;
}

static ssize_t net_failed(const struct net_stream *st, const char *what)
{
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		git_error_set(GIT_ERROR_NET, "%s %s timed out: nothing moved for %.1f s "
			      "(repo.io_timeout)", what, st->host, net_io_usec / 1e6);
	else
		git_error_set(GIT_ERROR_NET, "%s %s failed: %s", what, st->host, strerror(errno));
	return -1;
}

static ssize_t net_read(git_stream *stream, void *data, size_t len)
{
	struct net_stream *st = (struct net_stream *)stream;
	ssize_t n;

	while ((n = recv(st->fd, data, len, 0)) < 0 && errno == EINTR)
		;
	return n < 0 ? net_failed(st, "reading from") : n;
}

/* MSG_NOSIGNAL: a server that hangs up mid-request must not kill us with SIGPIPE. */
static ssize_t net_write(git_stream *stream, const char *data, size_t len, int flags)
{
	struct net_stream *st = (struct net_stream *)stream;
	ssize_t n;

	while ((n = send(st->fd, data, len, flags | MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	return n < 0 ? net_failed(st, "writing to") : n;
}

static int net_close(git_stream *stream)
{
	struct net_stream *st = (struct net_stream *)stream;
	int fd = st->fd;

	st->fd = -1;
	return fd >= 0 ? close(fd) : 0;
}

static void net_free(git_stream *stream)
{
	struct net_stream *st = (struct net_stream *)stream;

	if (st->fd >= 0)
		close(st->fd);
	free(st->host);
	free(st->port);
	free(st);
}

static int net_new(git_stream **out, const char *host, const char *port)
{
	struct net_stream *st = calloc(1, sizeof(*st));

	if (!st || !(st->host = strdup(host)) || !(st->port = strdup(port ? port : ""))) {
		if (st)
			free(st->host);
		free(st);
		git_error_set_oom();
		return -1;
	}
	st->fd = -1;
	st->parent = (git_stream){ .version = GIT_STREAM_VERSION, .connect = net_connect,
				   .read = net_read, .write = net_write, .close = net_close,
				   .free = net_free };
	*out = &st->parent;
	return 0;
}

/* Puts the socket stream (connect and I/O timeouts) under libgit2's transports. Done at
 * every fetch: the last git_libgit2_shutdown() forgets registrations, and only a fetch
 * connects anywhere. */
static int register_stream(void)
{
	static git_stream_registration reg = { .version = GIT_STREAM_VERSION, .init = net_new };

	if (git_stream_register(GIT_STREAM_STANDARD, &reg) < 0)
		return ap_log_error(-EIO, "failed to install the socket stream: %s",
				    repo_git_msg());
	return 0;
}

/* --- why a fetch failed ---------------------------------------------------------------- */

/* A copy of url with any password in it replaced, so that logs never carry a token. */
static char *url_for_log(const char *url)
{
	const char *a = strstr(url, "://"), *at, *colon;

	if (!a)
		return strdup(url);
	a += 3;
	at = memchr(a, '@', strcspn(a, "/"));
	colon = at ? memchr(a, ':', (size_t)(at - a)) : NULL;
	if (!colon)
		return strdup(url);
	return ap_strdupf("%.*s:***%s", (int)(colon - url), url, at);
}

/* libgit2 1.5 reports an HTTP status only in its message. */
static int http_status(const char *msg)
{
	const char *p = strstr(msg, "unexpected http status code: ");
	int code;

	return p && sscanf(p + 29, "%3d", &code) == 1 ? code : 0;
}

/* A timeout, a refused or reset connection, a name that does not resolve right now, a
 * 5xx, 408 or 429 may pass: -EHOSTUNREACH (try again later), and so may a local path that
 * is not there (check_owner). What needs an operator gets
 * one line naming what to fix: -EACCES (credentials), -EKEYREJECTED (host key or TLS
 * certificate), -ENOENT (no repository there), -EREMOTEIO (another HTTP answer), -EBADMSG
 * (a malformed object). */
static int fetch_failed(const struct fetch_ctx *f, int gerr)
{
	const git_error *e = git_error_last();
	const char *msg = repo_git_msg();
	int status = http_status(msg);

	if (e && e->klass == GIT_ERROR_NOMEMORY)
		return -ENOMEM;
	if (gerr == GIT_EAUTH || status == 401 || status == 403)
		return ap_log_error(-EACCES,
				    "failed to fetch '%s': authentication failed (%s); check "
				    "repo.ssh_key and that its public key may read the repository, "
				    "or the credentials in repo.url", f->url, msg);
	if (gerr == GIT_ECERTIFICATE && f->cert_type == GIT_CERT_HOSTKEY_LIBSSH2)
		return ap_log_error(-EKEYREJECTED,
				    "failed to fetch '%s': the ssh host key does not "
				    "verify (%s); check repo.known_hosts (only if the server's key "
				    "changed on purpose)", f->url, msg);
	if (gerr == GIT_ECERTIFICATE)
		return ap_log_error(-EKEYREJECTED,
				    "failed to fetch '%s': the TLS certificate does not "
				    "verify (%s); set repo.ca_file to the CA that issued it, and use "
				    "the host name the certificate names", f->url, msg);
	if (status == 404 || status == 410 ||
	    (local_path(f->o->url) && (gerr == GIT_ENOTFOUND || (e && e->klass == GIT_ERROR_REPOSITORY))))
		return ap_log_error(-ENOENT,
				    "failed to fetch '%s': no repository there (%s); check "
				    "repo.url", f->url, msg);
	/* The objects arrived whole and one of them is malformed: the same bytes come again. */
	if (e && (e->klass == GIT_ERROR_TREE || e->klass == GIT_ERROR_OBJECT))
		return ap_log_error(-EBADMSG,
				    "failed to fetch '%s': the repository holds an object "
				    "that does not parse (%s); it needs a fix there, not a retry",
				    f->url, msg);
	if (status >= 400 && status < 500 && status != 408 && status != 429)
		return ap_log_error(-EREMOTEIO, "failed to fetch '%s': the server refused it (%s); "
				    "check repo.url", f->url, msg);
	return ap_log_error(-EHOSTUNREACH, "failed to fetch '%s': %s (will retry)", f->url, msg);
}

/* --- the transfer ------------------------------------------------------------------------ */

static int remote_tip(git_remote *remote, struct fetch_ctx *f, const char *head, git_oid *ret)
{
	const git_remote_head **heads;
	size_t n;
	int k;

	if ((k = git_remote_connect(remote, GIT_DIRECTION_FETCH, &f->cb, NULL, NULL)) < 0 ||
	    (k = git_remote_ls(&heads, &n, remote)) < 0)
		return fetch_failed(f, k);
	for (size_t i = 0; i < n; i++)
		if (strcmp(heads[i]->name, head) == 0) {
			git_oid_cpy(ret, &heads[i]->oid); /* the array belongs to the remote */
			return 0;
		}
	return ap_log_error(-ENOENT, "failed to fetch '%s': it has no branch '%s'; check "
			    "repo.branch", f->url, f->o->branch);
}

/* The mirror already has tip when the tracking ref points at it and the object is there. */
static bool mirror_has(struct ap_repo *r, const char *track, const git_oid *tip)
{
	git_odb *odb = NULL;
	git_oid have;
	bool yes = false;

	if (git_reference_name_to_id(&have, r->git, track) == 0 && git_oid_equal(&have, tip) &&
	    git_repository_odb(&odb, r->git) == 0)
		yes = git_odb_exists(odb, tip);
	git_odb_free(odb);
	return yes;
}

/* The refspec is forced: the mirror follows the remote wherever it goes, and the old
 * objects stay. Whether the new tip may be applied (a fast-forward of the applied commit,
 * signed) is decided against the applied commit, not against the previous tracking ref. */
/* A run killed while libgit2 updated the tracking ref leaves the ref's lock file, and every
 * later fetch would fail on it: the deploys would stop for good. The caller holds the run lock
 * (state.h), so no other fetch is under way and a lock file here is a killed run's. */
static void remove_stale_locks(struct ap_repo *r, const char *track)
{
	const char *gitdir = git_repository_path(r->git), *names[] = { track, "packed-refs" };

	for (size_t i = 0; gitdir && i < ELEMENTSOF(names); i++) {
		_cleanup_free_ char *p = ap_strdupf("%s%s.lock", gitdir, names[i]);

		if (p && unlink(p) == 0)
			ap_log_notice("removed '%s', left by a run killed while it fetched", p);
	}
}

static int download(struct ap_repo *r, git_remote *remote, struct fetch_ctx *f,
		    const char *head, const char *track, const git_oid *tip)
{
	git_fetch_options fo;
	_cleanup_free_ char *spec = ap_strdupf("+%s:%s", head, track);
	char *specs[1] = { spec };
	git_strarray refspecs = { specs, 1 };
	git_oid now;
	int k;

	if (!spec || git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION) < 0)
		return -ENOMEM;
	fo.callbacks = f->cb;
	fo.prune = GIT_FETCH_NO_PRUNE;
	fo.update_fetchhead = 0;
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	if ((k = git_remote_download(remote, &refspecs, &fo)) < 0)
		return fetch_failed(f, k);
	remove_stale_locks(r, track);
	ap_log_debug("received %u objects from '%s'", git_remote_stats(remote)->received_objects,
		     f->url);
	if (git_remote_update_tips(remote, &f->cb, 0, GIT_REMOTE_DOWNLOAD_TAGS_NONE,
				   "autopull: fetch") < 0)
		return ap_log_error(repo_git_errno(GIT_ERROR), "failed to update '%s': %s", track,
				    repo_git_msg());
	if (git_reference_name_to_id(&now, r->git, track) < 0 || !git_oid_equal(&now, tip))
		return ap_log_error(-EIO, "'%s' did not move to the tip fetched from '%s'", track,
				    f->url);
	return 1;
}

/* A first fetch from a repository on this host copies its packs (repo-local.c). 1 when the
 * tracking ref then points at tip, 0 to fetch the usual way, -errno. */
static int first_local(struct ap_repo *r, const struct fetch_ctx *f, const char *track,
		       const git_oid *tip)
{
	const char *path = local_path(f->o->url);
	git_reference *ref = NULL;
	git_oid have;
	int k;

	if (!path || git_reference_name_to_id(&have, r->git, track) != GIT_ENOTFOUND)
		return 0;
	if ((k = repo_local_first_fetch(r, path, tip)) <= 0)
		return k;
	remove_stale_locks(r, track);
	if (git_reference_create(&ref, r->git, track, tip, 1, "autopull: fetch") < 0)
		return ap_log_error(repo_git_errno(GIT_ERROR), "failed to update '%s': %s", track,
				    repo_git_msg());
	git_reference_free(ref);
	return 1;
}

/* An anonymous remote that skips url.<base>.insteadOf: the mirror's config must not
 * rewrite the configured URL. (In libgit2 1.5.1 that lookup also leaks: valgrind shows
 * one pcre2 match data block lost per config key it tries, on every fetch.) */
static int create_remote(struct ap_repo *r, const char *url, git_remote **ret)
{
	git_remote_create_options opts;

	if (git_remote_create_options_init(&opts, GIT_REMOTE_CREATE_OPTIONS_VERSION) < 0)
		return -1;
	opts.repository = r->git;
	opts.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	return git_remote_create_with_opts(ret, url, &opts);
}

static void remote_freep(git_remote **p)
{
	git_remote_free(*p);
}

static void fetch_ctx_done(struct fetch_ctx *f)
{
	free(f->url);
}

/* Everything that can be said before a byte goes over the wire. */
static int fetch_prepare(const struct fetch_ctx *f, const char *track)
{
	const struct ap_remote_opts *o = f->o;
	int valid = 0, k;

	if (git_reference_name_is_valid(&valid, track) < 0 || !valid)
		return ap_log_error(-EINVAL, "invalid branch name '%s'", o->branch);
	if ((k = check_ssh_key(f)) < 0 || (k = check_owner(f)) < 0 || (k = register_stream()) < 0)
		return k;
	if (git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, o->trust_owner ? 0 : 1) < 0)
		return ap_log_error(-EIO, "failed to set owner validation: %s", repo_git_msg());
	/* With mbedTLS this replaces the trust set rather than adding to it. */
	if (o->ca_file && git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, o->ca_file, NULL) < 0)
		return ap_log_error(-EINVAL, "failed to load ca file '%s': %s", o->ca_file,
				    repo_git_msg());
	net_connect_usec = o->connect_timeout_usec;
	net_io_usec = o->io_timeout_usec;
	return 0;
}

int ap_repo_fetch(struct ap_repo *r, const struct ap_remote_opts *o, char ret_tip[AP_OID_HEXSZ + 1])
{
	_cleanup_free_ char *head = ap_strdupf("refs/heads/%s", o->branch);
	_cleanup_free_ char *track = ap_strdupf("refs/remotes/origin/%s", o->branch);
	_cleanup_(fetch_ctx_done) struct fetch_ctx f = { .o = o, .url = url_for_log(o->url) };
	_cleanup_(remote_freep) git_remote *remote = NULL;
	git_oid tip;
	int k;

	if (!head || !track || !f.url)
		return -ENOMEM;
	if ((k = fetch_prepare(&f, track)) < 0)
		return k;
	if (create_remote(r, o->url, &remote) < 0)
		return ap_log_error(-EINVAL, "invalid remote url '%s': %s", f.url, repo_git_msg());
	git_remote_init_callbacks(&f.cb, GIT_REMOTE_CALLBACKS_VERSION);
	f.cb.credentials = cb_credentials;
	f.cb.certificate_check = cb_certificate;
	f.cb.payload = &f;
	k = remote_tip(remote, &f, head, &tip);
	if (k >= 0 && mirror_has(r, track, &tip))
		k = 0;
	else if (k >= 0 && (k = first_local(r, &f, track, &tip)) == 0)
		k = download(r, remote, &f, head, track, &tip);
	if (k >= 0)
		repo_oid_hex(ret_tip, &tip);
	return k;
}
