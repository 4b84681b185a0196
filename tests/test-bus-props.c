/* Tests of the batched property reads of bus-props.c against a fake manager: a child process
 * that serves the manager's private socket in a temporary XDG_RUNTIME_DIR, holds every GetAll
 * until all of them arrived and then answers in reverse order, with an error for one unit or
 * no answer at all for another. What a real manager answers is test-bus's (live) business;
 * here the replies come in an order and with failures a real manager does not produce on
 * demand. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <systemd/sd-bus.h>

#include "bus.h"
#include "capture.h"
#include "log.h"
#include "util.h"

#define UNIT_PREFIX "/org/freedesktop/systemd1/unit"
#define MAX_CALLS 256

struct script {
	size_t calls;          /* GetAll calls to hold before answering them all */
	const char *fails;     /* this unit's reads get an error */
	const char *silent;    /* this unit's reads get no answer */
};

static char dir[] = "/tmp/ap-busprops-XXXXXX";
static pid_t server = -1;

/* uNN.service: NRestarts=NN, so that a test sees which unit a result came from. */
static int append_props(sd_bus_message *reply, const char *iface, const char *unit)
{
	unsigned n = (unsigned)strtoul(unit + 1, NULL, 10);
	int r = sd_bus_message_open_container(reply, 'a', "{sv}");

	if (r >= 0 && strcmp(iface, "org.freedesktop.systemd1.Unit") == 0)
		r = sd_bus_message_append(reply, "{sv}{sv}", "ActiveState", "s", "active",
					  "SubState", "s", "running");
	else if (r >= 0)
		r = sd_bus_message_append(reply, "{sv}{sv}", "NRestarts", "u", n, "Result", "s",
					  "success");
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int answer(sd_bus *bus, sd_bus_message *call, const struct script *s)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	_cleanup_free_ char *unit = NULL;
	const char *iface;
	int r = sd_bus_path_decode(sd_bus_message_get_path(call), UNIT_PREFIX, &unit);

	if (r <= 0 || sd_bus_message_read(call, "s", &iface) < 0)
		return -EINVAL;
	if (s->silent && strcmp(unit, s->silent) == 0)
		return 0;
	if (s->fails && strcmp(unit, s->fails) == 0)
		return sd_bus_reply_method_errorf(call, "org.freedesktop.DBus.Error.AccessDenied",
						  "no reading %s", unit);
	r = sd_bus_message_new_method_return(call, &reply);
	if (r >= 0)
		r = append_props(reply, iface, unit);
	return r < 0 ? r : sd_bus_send(bus, reply, NULL);
}

/* Answers Subscribe at once; holds the GetAll calls until it has s->calls of them, then
 * answers those last to first, and holds the next ones. Ends when the client hangs up. */
static int serve(int fd, const struct script *s)
{
	sd_bus_message *held[MAX_CALLS];
	size_t n = 0;
	sd_bus *bus = NULL;
	sd_id128_t id;
	int r = sd_id128_randomize(&id);

	if (r >= 0)
		r = sd_bus_new(&bus);
	if (r >= 0)
		r = sd_bus_set_fd(bus, fd, fd);
	if (r >= 0)
		r = sd_bus_set_server(bus, 1, id);
	if (r >= 0)
		r = sd_bus_start(bus);
	while (r >= 0) {
		sd_bus_message *m = NULL;

		r = sd_bus_process(bus, &m);
		if (r == 0)
			r = sd_bus_wait(bus, UINT64_MAX);
		if (r < 0 || !m)
			continue;
		if (sd_bus_message_is_method_call(m, NULL, "Subscribe"))
			r = sd_bus_reply_method_return(m, NULL);
		else if (sd_bus_message_is_method_call(m, NULL, "GetAll") && n < MAX_CALLS)
			held[n++] = sd_bus_message_ref(m);
		sd_bus_message_unref(m);
		if (n < s->calls)
			continue;
		for (size_t i = n; r >= 0 && i > 0; i--)
			r = answer(bus, held[i - 1], s);
		for (size_t i = 0; i < n; i++)
			sd_bus_message_unref(held[i]);
		n = 0;
		(void)sd_bus_flush(bus);
	}
	for (size_t i = 0; i < n; i++)
		sd_bus_message_unref(held[i]);
	sd_bus_close_unref(bus);
	return 0;
}

static void start_server(const struct script *s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/systemd/private", dir) > 0);
	(void)unlink(sa.sun_path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	server = fork();
	assert_true(server >= 0);
	if (server == 0) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		_exit(c >= 0 && serve(c, s) >= 0 ? 0 : 1);
	}
	close(fd);
}

static void stop_server(void)
{
	int status;

	assert_int_equal(waitpid(server, &status, 0), server);
	server = -1;
}

static char **unit_names(size_t n)
{
	char **v = NULL;

	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *name = ap_strdupf("u%zu.service", i);
		assert_non_null(name);
		assert_int_equal(ap_strv_push(&v, name), 0);
	}
	return v;
}

/* Reads n units under the script; returns the read's result, the log in *ret_log. */
static int read_all(const struct script *s, size_t n, unsigned long long timeout,
		    struct ap_unit_props *props, char **ret_log)
{
	_cleanup_strv_free_ char **units = unit_names(n);
	struct ap_bus *bus = NULL;
	struct capture cap;
	int r;

	start_server(s);
	assert_int_equal(ap_bus_open(AP_SCOPE_USER, &bus), 0);
	capture_start(&cap, dir);
	r = ap_bus_get_units_props(bus, units, n, timeout, props, NULL);
	*ret_log = capture_end(&cap);
	ap_bus_free(bus);
	stop_server();
	return r;
}

static void test_replies_out_of_order(void **state)
{
	struct ap_unit_props props[20] = { 0 };
	_cleanup_free_ char *log = NULL;

	(void)state;
	assert_int_equal(read_all(&(struct script){ .calls = 40 }, 20, 5 * 1000000ULL, props,
				  &log), 0);
	for (size_t i = 0; i < 20; i++) {
		assert_int_equal(props[i].n_restarts, i);
		assert_string_equal(props[i].active_state, "active");
		assert_string_equal(props[i].sub_state, "running");
		assert_string_equal(props[i].load_state, "");
		assert_string_equal(props[i].result, "success");
		ap_unit_props_clear(&props[i]);
	}
	assert_string_equal(log, "");
}

static void test_one_read_fails(void **state)
{
	struct ap_unit_props props[12] = { 0 };
	_cleanup_free_ char *log = NULL;
	int r;

	(void)state;
	r = read_all(&(struct script){ .calls = 24, .fails = "u7.service" }, 12, 5 * 1000000ULL,
		     props, &log);
	assert_int_equal(r, -EACCES);
	assert_non_null(strstr(log, "failed to read the properties of unit 'u7.service': "
				    "no reading u7.service"));
	/* Nothing is left for the caller to free. */
	for (size_t i = 0; i < 12; i++)
		assert_null(props[i].active_state);
}

static void test_reply_never_comes(void **state)
{
	struct ap_unit_props props[6] = { 0 };
	_cleanup_free_ char *log = NULL;
	unsigned long long start = ap_now_monotonic_usec();
	int r;

	(void)state;
	r = read_all(&(struct script){ .calls = 12, .silent = "u4.service" }, 6, 300 * 1000ULL,
		     props, &log);
	assert_int_equal(r, -ETIMEDOUT);
	assert_true(ap_now_monotonic_usec() - start < 3 * 1000000ULL);
	assert_non_null(strstr(log, "failed to read the properties of unit 'u4.service'"));
	for (size_t i = 0; i < 6; i++)
		assert_null(props[i].active_state);
}

/* More units than reads in flight: the rest are sent as replies come in, and the results
 * still come in unit order. The fake answers in rounds of 64. */
static void test_many_units(void **state)
{
	static struct ap_unit_props props[96];
	_cleanup_free_ char *log = NULL;

	(void)state;
	assert_int_equal(read_all(&(struct script){ .calls = 64 }, 96, 5 * 1000000ULL, props,
				  &log), 0);
	for (size_t i = 0; i < 96; i++) {
		assert_int_equal(props[i].n_restarts, i);
		ap_unit_props_clear(&props[i]);
	}
}

/* A fake that answers in rounds of 65 calls answers all 130 of 65 units to a reader that
 * sends them all at once, and never one to a reader that keeps at most 64 in flight: the
 * read times out instead of flooding the manager. */
static void test_in_flight_capped(void **state)
{
	static struct ap_unit_props props[65];
	_cleanup_free_ char *log = NULL;

	(void)state;
	assert_int_equal(read_all(&(struct script){ .calls = 65 }, 65, 500 * 1000ULL, props,
				  &log), -ETIMEDOUT);
	assert_non_null(strstr(log, "failed to read the properties of unit 'u"));
}

static int setup(void **state)
{
	_cleanup_free_ char *sd = NULL;

	(void)state;
	assert_non_null(mkdtemp(dir));
	sd = ap_strdupf("%s/systemd", dir);
	assert_non_null(sd);
	assert_int_equal(mkdir(sd, 0700), 0);
	assert_int_equal(setenv("XDG_RUNTIME_DIR", dir, 1), 0);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static int teardown(void **state)
{
	_cleanup_free_ char *sock = ap_strdupf("%s/systemd/private", dir);
	_cleanup_free_ char *sd = ap_strdupf("%s/systemd", dir);
	_cleanup_free_ char *cap = ap_strdupf("%s/captured-stderr", dir);

	(void)state;
	(void)unlink(sock);
	(void)unlink(cap);
	(void)rmdir(sd);
	(void)rmdir(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_read_fails),
		cmocka_unit_test(test_reply_never_comes),
		cmocka_unit_test(test_replies_out_of_order),
		cmocka_unit_test(test_many_units),
		cmocka_unit_test(test_in_flight_capped),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
