/*
 * The daemon object: event base, listeners, signals, the current
 * configuration generation, and the set of open connections.
 */
#ifndef PINPROXY_PROXY_H
#define PINPROXY_PROXY_H

#include <stdbool.h>

#include "conf.h"
#include "diag.h"

/*
 * Hold SIGHUP, SIGTERM and SIGINT until proxy_main()'s event loop can
 * take them: sent during the start (a service manager may send them as
 * soon as the process runs), their default action would kill it without
 * a word. Called first thing.
 */
void	 proxy_hold_signals(void);
/*
 * Run the daemon on conf (the caller keeps its reference) until SIGTERM or
 * SIGINT; path is re-read on SIGHUP. Returns the exit status.
 */
int	 proxy_main(struct conf *conf, const char *path, bool debug);
/* Log every warning of a parse as event=config_warning. */
void	 proxy_log_warnings(const struct diag *d);

#endif
