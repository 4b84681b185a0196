/* autopull log [UNIT...]: what autopull did on this host, oldest first (the newest -n N), as
 * columns for people or a JSON array; with units (globs allowed), only the events that acted
 * on one of them. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "exitcode.h"
#include "heartbeat.h"
#include "util.h"

/* Results, units and reasons come from the state directory (a reason may be anything an
 * operator typed, a refusal quotes the repository): every line is escaped (ap_buf_linef). */
static int human(const struct ap_event *v, size_t n)
{
	struct ap_buf b = { 0 };
	int r = ap_buf_linef(&b, "%-19s  %-8s %-15s %-27s %8s  %-7s %s", "TIME", "EVENT", "RESULT",
			     "FROM -> TO", "SECONDS", "TRIGGER", "UNITS / REASON");

	for (size_t i = 0; r >= 0 && i < n; i++) {
		const struct ap_event *e = &v[i];
		time_t t = (time_t)(e->realtime_usec / 1000000);
		struct tm tm;
		char when[32] = "?", range[40];

		if (localtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		snprintf(range, sizeof(range), "%.12s -> %.12s", *e->from ? e->from : "-",
			 *e->to ? e->to : "-");
		r = ap_buf_linef(&b, "%-19s  %-8s %-15s %-27s %8.1f  %-7s %s%s%s", when,
				 ap_event_kind_to_string(e->kind), *e->result ? e->result : "-",
				 range,
				 e->duration_ms / 1000.0, *e->trigger ? e->trigger : "-",
				 e->units ? e->units : "", e->units && e->reason ? "  " : "",
				 e->reason ? e->reason : "");
	}
	if (r >= 0 && fwrite(b.data, 1, b.len, stdout) != b.len)
		r = -EIO;
	ap_buf_clear(&b);
	return r;
}

static int member(struct ap_buf *b, const char *key, const char *v)
{
	int r = ap_buf_printf(b, ", \"%s\": ", key);

	return r < 0 ? r : ap_buf_json_string_or_null(b, v);
}

static int json(const struct ap_event *v, size_t n)
{
	struct ap_buf b = { 0 };
	int r = ap_buf_append(&b, "[", 1);

	for (size_t i = 0; r >= 0 && i < n; i++) {
		const struct ap_event *e = &v[i];

		r = ap_buf_printf(&b, "%s{\"time\": %llu, \"event\": \"%s\"", i ? ", " : "",
				  (unsigned long long)(e->realtime_usec / 1000000),
				  ap_event_kind_to_string(e->kind));
		if (r >= 0)
			r = member(&b, "result", e->result);
		if (r >= 0)
			r = member(&b, "from", e->from);
		if (r >= 0)
			r = member(&b, "to", e->to);
		if (r >= 0)
			r = ap_buf_printf(&b, ", \"duration_ms\": %llu",
					  (unsigned long long)e->duration_ms);
		if (r >= 0)
			r = member(&b, "trigger", e->trigger);
		if (r >= 0)
			r = member(&b, "units", e->units);
		if (r >= 0)
			r = member(&b, "reason", e->reason);
		if (r >= 0)
			r = ap_buf_append(&b, "}", 1);
	}
	if (r >= 0)
		r = ap_buf_printf(&b, "]\n");
	if (r >= 0)
		fputs(b.data, stdout);
	ap_buf_clear(&b);
	return r;
}

/* Whether e acted on a unit that one of the patterns matches. */
static int acted_on(const struct ap_event *e, char **patterns)
{
	_cleanup_strv_free_ char **names = NULL;
	int r = ap_event_unit_names(e->units, &names);

	for (size_t i = 0; r >= 0 && names && names[i]; i++)
		if (ap_hb_watch_matches(patterns, names[i])) /* the guard.watch glob match */
			return 1;
	return r;
}

/* Keeps the events that acted on one of the units (v keeps its length; the rest freed). */
static int filter(struct ap_event *v, size_t *n, char **units)
{
	size_t k = 0;
	int r = 0;

	for (size_t i = 0; i < *n; i++) {
		int m = r < 0 ? 0 : acted_on(&v[i], units);

		if (m < 0)
			r = m;
		if (m > 0)
			v[k++] = v[i];
		else
			ap_event_clear(&v[i]);
	}
	*n = k;
	return r;
}

int ap_cmd_log(const struct ap_opts *o, char **args)
{
	struct ap_event *v = NULL;
	size_t n = 0, skip;
	struct ap_ctx c;
	int code = ap_ctx_open(o, 0, &c);

	if (code != AP_EXIT_OK)
		return code;
	if (ap_state_read_events(c.st, &v, &n) < 0)
		code = AP_EXIT_FAILED;
	if (code == AP_EXIT_OK && args && args[0] && filter(v, &n, args) < 0)
		code = AP_EXIT_FAILED;
	skip = n > o->lines ? n - o->lines : 0;
	if (code == AP_EXIT_OK && o->json)
		code = json(v + skip, n - skip) < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
	else if (code == AP_EXIT_OK)
		code = human(v + skip, n - skip) < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
	ap_events_free(v, n);
	ap_ctx_done(&c);
	return code;
}
