/* The metrics push (guard.push): the metrics text POSTed to VictoriaMetrics'
 * /api/v1/import/prometheus (or a Pushgateway) after every heartbeat and apply. Layer 2 beside
 * record.c, which writes the metrics, pushes them and counts the pushes that failed: it joins
 * the config and the HTTP client. A failed push is a warning and a counter, never an error of
 * its caller: the guard and the apply work the same without it. */
#pragma once
#include "config.h"

/* POSTs text to g->push_url with the configured credentials, CA file and deadline. Returns
 * 0 when it landed (or no push is configured), else the error, after logging a warning. */
int ap_push_metrics(const struct ap_guard_config *g, const char *text);
