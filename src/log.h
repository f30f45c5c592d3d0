/*
 * Logging: one logfmt line per event, "level=... event=... key=value ...".
 * Event and key names live in one table each, so a misspelt name fails to
 * compile; values are escaped so that network bytes never break a line.
 */
#ifndef PINPROXY_LOG_H
#define PINPROXY_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum log_level {
	LL_ERROR,
	LL_WARN,
	LL_INFO,
	LL_DEBUG
};

enum log_sink {
	LOG_SINK_STDERR,
	LOG_SINK_SYSLOG
};

/* Every event pinproxy logs; names and levels are in log.c. */
enum log_event {
	EV_STARTED,
	EV_RELOADED,
	EV_RELOAD_FAILED,
	EV_PIN_MISMATCH,
	EV_CANDIDATE_SEEN,
	EV_VERIFY_FAILED,
	EV_PINSET_EXPIRED,
	EV_PINSET_EXPIRING,
	EV_PIN_DENIED,
	EV_BLOCKED,
	EV_UPSTREAM_ERROR,
	EV_CHECK_ABANDONED,
	EV_CLIENT_TLS_FAILED,
	EV_ACCESS,
	EV_STOPPING,
	EV_STOPPED,
	EV_CONFIG_WARNING,
	EV_START_FAILED,
	EV_ACCEPT_PAUSED,
	EV_ACCEPT_RESUMED,
	EV_FD_LIMIT,
	EV_CA_CREATED,
	EV_REPORT_ERROR,
	EV_CONN_STATE,
	EV_LIBEVENT,
	EV_LIBEVENT_WARNING,
	EV_LIBEVENT_ERROR,
	EV_DEBUG,
	EV_LOG_DROPPED,
	EV__COUNT
};

/* Every key a log line may carry; names are in log.c. */
enum log_key {
	LK_LISTEN,
	LK_VERSION,
	LK_PINSETS,
	LK_ERROR,
	LK_HOST,
	LK_PORT,
	LK_CLIENT,
	LK_PINSET,
	LK_ENFORCED,
	LK_CHAIN,
	LK_PIN,
	LK_DEPTH,
	LK_REASON,
	LK_EXPIRES,
	LK_MODE,
	LK_STATUS,
	LK_BYTES_UP,
	LK_BYTES_DOWN,
	LK_MS,
	LK_FILE,
	LK_CONN,
	LK_STATE,
	LK_FROM,
	LK_MSG,
	LK_COUNT,
	LK_CUT,
	LK_ALERT,
	LK_HINT,
	LK_DAYS,
	LK_RESULT,
	LK_FORWARD,
	LK_STATS,
	LK_ADDR,
	LK__COUNT
};

#define LOG_LINE_MAX	4096

/* A log line under construction; lives on the caller's stack. */
struct logline {
	char		 buf[LOG_LINE_MAX];
	size_t		 len;
	bool		 enabled;
	bool		 truncated;
	enum log_event	 event;
};

/* Send lines to sink (syslog is opened with the ident "pinproxy"). */
void		 log_open(enum log_sink sink, enum log_level level);
/*
 * Where libevent's own messages go (event_set_log_callback): its debug
 * messages as event=debug, the others as event=libevent at the level of
 * their severity.
 */
void		 log_libevent(int severity, const char *msg);
/* Change the level below which events are dropped. */
void		 log_set_level(enum log_level level);
/* Divert lines to a callback (tests); NULL restores the sink. */
void		 log_set_capture(void (*cb)(enum log_level, const char *,
		     void *), void *arg);
/* Whether an event would be written at the current level. */
bool		 log_enabled(enum log_event ev);
/* The level and name of an event. */
enum log_level	 log_event_level(enum log_event ev);
const char	*log_event_name(enum log_event ev);
/* The name of a key. */
const char	*log_key_name(enum log_key key);
/* Parse "error", "warn", "info" or "debug". */
bool		 log_level_parse(const char *s, enum log_level *out);

/* Start a line for ev; the other calls do nothing when ev is filtered. */
void		 log_begin(struct logline *l, enum log_event ev);
/* Append key=value, escaping the value. */
void		 log_str(struct logline *l, enum log_key key, const char *val);
/* Append key=value from len bytes that need not be terminated. */
void		 log_strn(struct logline *l, enum log_key key, const char *val,
		     size_t len);
/* Append a number. */
void		 log_int(struct logline *l, enum log_key key, long long val);
/* Write the line out. */
void		 log_end(struct logline *l);

/* Log ev with a single msg= value; a shorthand for simple events. */
void		 log_msg(enum log_event ev, const char *fmt, ...)
		     __attribute__((format(printf, 2, 3)));
/* Log a refusal by policy: event=blocked with host, client and reason. */
void		 log_blocked(const char *host, const char *client,
		    const char *reason);

/* Escape val for logfmt into buf (always terminated); returns buf. */
char		*log_escape(char *buf, size_t bufsize, const char *val,
		     size_t len);

#endif
