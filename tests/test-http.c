/* The HTTP module against a real socket: a forked child accepts one connection on
 * 127.0.0.1, records the request it got and answers as the test asks (2xx, an error whose
 * body echoes the request, a redirect, nothing at all, a closed connection). The failure
 * answers come first. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "http.h"
#include "util.h"

#define REQ_MAX 65536

struct server {
	pid_t pid;
	int port;
	int req_fd; /* read end: the request as the child received it */
};

static int listen_any(int *ret_port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*ret_port = ntohs(a.sin_port);
	return fd;
}

/* Reads the head and a Content-Length body; enough for what curl sends here. */
static size_t read_request(int c, char *buf, size_t size)
{
	size_t len = 0, want = 0;

	while (len < size - 1) {
		ssize_t k = read(c, buf + len, size - 1 - len);
		char *end, *cl;

		if (k <= 0)
			break;
		len += (size_t)k;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (!end)
			continue;
		cl = strcasestr(buf, "\r\nContent-Length: ");
		want = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 18, NULL, 10) : 0);
		if (len >= want)
			break;
	}
	buf[len] = '\0';
	return len;
}

/* The server keeps the connection open after its answer (a stream that never ends). */
static bool hold;

/* answer: the raw HTTP answer, "" to close without one, NULL to never answer. */
static struct server serve(const char *answer)
{
	struct server s = { 0 };
	int p[2], fd = listen_any(&s.port);

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	s.pid = fork();
	assert_true(s.pid >= 0);
	if (s.pid == 0) {
		static char buf[REQ_MAX];
		int c = accept(fd, NULL, NULL);
		size_t n = c >= 0 ? read_request(c, buf, sizeof(buf)) : 0;

		if (write(p[1], buf, n) != (ssize_t)n)
			_exit(2);
		close(p[1]);
		if (!answer)
			pause();
		if (write(c, answer, strlen(answer)) < 0)
			_exit(3);
		if (hold)
			pause();
		_exit(0);
	}
	close(fd);
	close(p[1]);
	s.req_fd = p[0];
	return s;
}

/* Stops the child (by its pid) and returns the request it recorded. */
static char *finish(struct server *s)
{
	static char buf[REQ_MAX];
	size_t len = 0;
	ssize_t k;

	while (len < sizeof(buf) - 1 && (k = read(s->req_fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)k;
	buf[len] = '\0';
	close(s->req_fd);
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	return buf;
}

static char why[512];

static int post(int port, const char *path, const char *body, enum ap_http_auth auth,
		const char *secret, unsigned long long timeout_usec, long *status)
{
	char url[128];
	struct ap_http_request rq = { .url = url, .content_type = "text/plain; version=0.0.4",
				      .body = body, .len = strlen(body), .auth = auth,
				      .secret = secret, .timeout_usec = timeout_usec };

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	return ap_http_post(&rq, status, why, sizeof(why));
}

static void test_refused(void **state)
{
	int port, fd = listen_any(&port);
	long status = -1;

	close(fd); /* the port is free again: nothing listens */
	assert_int_equal(post(port, "/x", "a 1\n", AP_HTTP_AUTH_NONE, NULL, 2000000, &status),
			 -ECONNREFUSED);
	assert_int_equal(status, 0);
	assert_non_null(strstr(why, "onnect"));
}

static void test_deadline(void **state)
{
	struct server s = serve(NULL);

	assert_int_equal(post(s.port, "/x", "a 1\n", AP_HTTP_AUTH_NONE, NULL, 300000, NULL),
			 -ETIMEDOUT);
	finish(&s);
}

static void test_closed_without_answer(void **state)
{
	struct server s = serve("");

	assert_int_equal(post(s.port, "/x", "a 1\n", AP_HTTP_AUTH_NONE, NULL, 2000000, NULL),
			 -ECONNRESET);
	finish(&s);
}

/* An endpoint that echoes the request puts the token in its answer: the answer is counted,
 * never quoted. */
static void test_error_answer_is_not_quoted(void **state)
{
	struct server s = serve("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 51\r\n\r\n"
				"POST / HTTP/1.1\nAuthorization: Bearer s3cret-token\n");
	long status = 0;

	assert_int_equal(post(s.port, "/x", "a 1\n", AP_HTTP_AUTH_BEARER, "s3cret-token", 2000000,
			      &status),
			 -EBADMSG);
	assert_int_equal(status, 500);
	assert_null(strstr(why, "s3cret"));
	assert_null(strstr(why, "Bearer"));
	assert_string_equal(why, "HTTP 500, 51-byte answer not shown (it could quote the request "
				 "and its credentials)");
	finish(&s);
}

static void test_redirect_is_not_followed(void **state)
{
	struct server s = serve("HTTP/1.1 301 Moved\r\nLocation: ftp://127.0.0.1/x\r\n"
				"Content-Length: 0\r\n\r\n");
	long status = 0;

	assert_int_equal(post(s.port, "/x", "a 1\n", AP_HTTP_AUTH_NONE, NULL, 2000000, &status),
			 -EBADMSG);
	assert_int_equal(status, 301);
	finish(&s);
}

static void test_other_scheme_refused(void **state)
{
	struct ap_http_request rq = { .url = "file:///etc/passwd", .content_type = "text/plain",
				      .body = "", .timeout_usec = 1000000 };

	assert_int_equal(ap_http_post(&rq, NULL, why, sizeof(why)), -EINVAL);
	rq.url = "http://exa mple/";
	assert_int_equal(ap_http_post(&rq, NULL, why, sizeof(why)), -EINVAL);
}

static void test_bad_ca_file(void **state)
{
	struct server s = serve("");
	char url[64];
	struct ap_http_request rq = { .url = url, .content_type = "text/plain", .body = "",
				      .ca_file = "/nonexistent/ca.crt", .timeout_usec = 2000000 };

	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", s.port);
	assert_int_equal(ap_http_post(&rq, NULL, why, sizeof(why)), -EPROTO);
	finish(&s);
}

static void test_post_with_bearer(void **state)
{
	struct server s = serve("HTTP/1.1 204 No Content\r\n\r\n");
	const char *body = "systemd_unit_active{unit=\"a\\\"b.service\"} 1\n";
	long status = 0;
	char *req;

	assert_int_equal(post(s.port, "/api/v1/import/prometheus", body, AP_HTTP_AUTH_BEARER,
			      "s3cret-token", 2000000, &status), 0);
	assert_int_equal(status, 204);
	req = finish(&s);
	assert_true(ap_startswith(req, "POST /api/v1/import/prometheus HTTP/1.1\r\n"));
	assert_non_null(strstr(req, "\r\nAuthorization: Bearer s3cret-token\r\n"));
	assert_non_null(strstr(req, "\r\nContent-Type: text/plain; version=0.0.4\r\n"));
	assert_null(strstr(req, "Expect:"));
	assert_true(ap_endswith(req, body));
	assert_null(strstr(why, "s3cret"));
}

static void test_post_with_basic_auth(void **state)
{
	struct server s = serve("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	char *req;

	assert_int_equal(post(s.port, "/", "x 1\n", AP_HTTP_AUTH_BASIC, "vm:pa:ss", 2000000, NULL), 0);
	req = finish(&s);
	/* base64("vm:pa:ss"): the user ends at the first colon */
	assert_non_null(strstr(req, "\r\nAuthorization: Basic dm06cGE6c3M=\r\n"));
}

static void test_large_body(void **state)
{
	struct server s = serve("HTTP/1.1 204 No Content\r\n\r\n");
	char *body = malloc(40000), *req;

	assert_non_null(body);
	memset(body, 'x', 39999);
	body[39999] = '\0';
	assert_int_equal(post(s.port, "/", body, AP_HTTP_AUTH_NONE, NULL, 2000000, NULL), 0);
	req = finish(&s);
	assert_true(ap_endswith(req, body));
	free(body);
}

/* A caller that asks for the answer gets it whatever the status, and never more than it
 * allows. */
static struct ap_http_request keeping(char *url, struct ap_buf *answer, size_t max)
{
	return (struct ap_http_request){ .url = url, .content_type = "application/json",
					 .body = "{}", .len = 2, .timeout_usec = 2000000,
					 .answer = answer, .answer_max = max };
}

static void test_answer_too_long(void **state)
{
	struct server s = serve("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789");
	struct ap_buf answer = { 0 };
	char url[64];
	struct ap_http_request rq = keeping(url, &answer, 9);

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
	assert_int_equal(ap_http_post(&rq, NULL, why, sizeof(why)), -EMSGSIZE);
	assert_true(answer.len <= 9);
	finish(&s);
	ap_buf_clear(&answer);
}

static void test_answer_kept(void **state)
{
	struct server s = serve("HTTP/1.1 404 Not Found\r\nContent-Length: 13\r\n\r\n{\"error\":\"x\"}");
	struct ap_buf answer = { 0 };
	long status = 0;
	char url[64];
	struct ap_http_request rq = keeping(url, &answer, 13);

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
	assert_int_equal(ap_http_post(&rq, &status, why, sizeof(why)), -EBADMSG);
	assert_int_equal(status, 404);
	assert_int_equal(answer.len, 13);
	assert_memory_equal(answer.data, "{\"error\":\"x\"}", 13);
	finish(&s);
	ap_buf_clear(&answer);
}

/* A stream (etcd's watch) is read up to the lines asked for, then the request ends well;
 * without a line count the same stream runs into the deadline. */
static void test_answer_lines(void **state)
{
	static const char stream[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
				     "{\"created\":true}\n{\"events\":[]}\n";
	struct ap_buf answer = { 0 };
	struct server s;
	char url[64];
	struct ap_http_request rq = keeping(url, &answer, 4096);

	hold = true;
	s = serve(stream);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
	rq.answer_lines = 2;
	assert_int_equal(ap_http_post(&rq, NULL, why, sizeof(why)), 0);
	assert_non_null(strstr(answer.data, "\"events\""));
	finish(&s);
	ap_buf_clear(&answer);

	s = serve(stream);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
	rq.answer_lines = 0;
	rq.timeout_usec = 300000;
	assert_int_equal(ap_http_post(&rq, NULL, why, sizeof(why)), -ETIMEDOUT);
	finish(&s);
	ap_buf_clear(&answer);
	hold = false;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_answer_too_long),
		cmocka_unit_test(test_answer_kept),
		cmocka_unit_test(test_answer_lines),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_closed_without_answer),
		cmocka_unit_test(test_error_answer_is_not_quoted),
		cmocka_unit_test(test_redirect_is_not_followed),
		cmocka_unit_test(test_other_scheme_refused),
		cmocka_unit_test(test_bad_ca_file),
		cmocka_unit_test(test_post_with_bearer),
		cmocka_unit_test(test_post_with_basic_auth),
		cmocka_unit_test(test_large_body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
