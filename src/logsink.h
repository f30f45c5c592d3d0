/*
 * Where log lines go: stderr, or syslog through a datagram socket of our
 * own, written so that a reader that stops reading (a full pipe, a busy
 * journal, a terminal on hold) never blocks the event loop. Once attached
 * to the loop, a line that cannot go at once waits in a queue of at most
 * LOGSINK_PENDING_MAX bytes, written as the descriptor takes more; lines
 * that do not fit are dropped and counted, and the count is logged
 * (event=log_dropped) once the queue has drained (logsink_on_drained()). Before that, and in
 * programs that never attach, writes wait as a plain write would.
 */
#ifndef PINPROXY_LOGSINK_H
#define PINPROXY_LOGSINK_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;

#define LOGSINK_PENDING_MAX	(1024 * 1024)
/* How long the last lines may take to go at exit. */
#define LOGSINK_EXIT_MS		1000

/* Send lines to syslog (ident "pinproxy", facility daemon) or stderr. */
void	logsink_open(bool syslog);
/*
 * Write one line (without its line end) at syslog priority prio. False
 * when it was dropped: the queue was full or the output is gone.
 */
bool	logsink_write(int prio, const char *line, size_t len);
/* From now on, never block: queue what cannot go, drain it from base. */
void	logsink_attach(struct event_base *base);
/*
 * Leave the loop: write what is queued, waiting at most LOGSINK_EXIT_MS
 * in all, and block again as before logsink_attach().
 */
void	logsink_detach(void);
/* Call cb when the queue emptied after lines were dropped. */
void	logsink_on_drained(void (*cb)(void));
/*
 * Lines dropped since the last event=log_dropped, taken (zeroed); 0
 * while lines wait in the queue.
 */
unsigned long	logsink_take_dropped(void);

#endif
