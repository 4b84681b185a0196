/* The metrics push (guard.push): the metrics text POSTed to VictoriaMetrics'
 * /api/v1/import/prometheus (or a Pushgateway) after every heartbeat and apply, and the count
 * of pushes that failed. Layer 2, called by record.c with the metrics it wrote: it joins the
 * config, the state dir and the HTTP client. A failed push is a warning and a counter, never
 * an error of its caller: the guard and the apply work the same without it. */
#pragma once
#include <stdint.h>
#include "config.h"
#include "state.h"

/* POSTs text to g->push_url with the configured credentials, CA file and deadline. Returns
 * 0 when it landed (or no push is configured), else the error, after logging a warning
 * and adding one to the failure count. */
int ap_push_metrics(struct ap_state *st, const struct ap_guard_config *g, const char *text);

/* The persisted count of failed pushes (state file push-failures); 0 when there is none. */
uint64_t ap_push_failures(struct ap_state *st);
