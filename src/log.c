/*
 * The logger: events and keys from fixed tables and logfmt escaping; the
 * lines go to logsink.c (stderr or syslog, never blocking the loop). The
 * level and the capture hook of the tests are its only global state.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include <event2/event.h>

#include "log.h"
#include "logsink.h"

struct log_event_def {
	const char	*name;
	enum log_level	 level;
};

static const struct log_event_def log_events[EV__COUNT] = {
	[EV_STARTED] =		{ "started",		LL_INFO },
	[EV_RELOADED] =		{ "reloaded",		LL_INFO },
	[EV_RELOAD_FAILED] =	{ "reload_failed",	LL_ERROR },
	[EV_PIN_MISMATCH] =	{ "pin_mismatch",	LL_WARN },
	[EV_CANDIDATE_SEEN] =	{ "candidate_seen",	LL_WARN },
	[EV_VERIFY_FAILED] =	{ "verify_failed",	LL_WARN },
	[EV_PINSET_EXPIRED] =	{ "pinset_expired",	LL_WARN },
	[EV_PINSET_EXPIRING] =	{ "pinset_expiring",	LL_WARN },
	[EV_PIN_DENIED] =	{ "pin_denied",		LL_WARN },
	[EV_BLOCKED] =		{ "blocked",		LL_INFO },
	[EV_UPSTREAM_ERROR] =	{ "upstream_error",	LL_WARN },
	[EV_CHECK_ABANDONED] =	{ "check_abandoned",	LL_WARN },
	[EV_CLIENT_TLS_FAILED] = { "client_tls_failed",	LL_WARN },
	[EV_ACCESS] =		{ "access",		LL_INFO },
	[EV_STOPPING] =		{ "stopping",		LL_INFO },
	[EV_STOPPED] =		{ "stopped",		LL_INFO },
	[EV_CONFIG_WARNING] =	{ "config_warning",	LL_WARN },
	[EV_START_FAILED] =	{ "start_failed",	LL_ERROR },
	[EV_ACCEPT_PAUSED] =	{ "accept_paused",	LL_WARN },
	[EV_ACCEPT_RESUMED] =	{ "accept_resumed",	LL_INFO },
	[EV_FD_LIMIT] =		{ "fd_limit",		LL_WARN },
	[EV_CA_CREATED] =	{ "ca_created",		LL_INFO },
	[EV_REPORT_ERROR] =	{ "report_error",	LL_ERROR },
	[EV_CONN_STATE] =	{ "conn_state",		LL_DEBUG },
	[EV_LIBEVENT] =		{ "libevent",		LL_INFO },
	[EV_LIBEVENT_WARNING] =	{ "libevent",		LL_WARN },
	[EV_LIBEVENT_ERROR] =	{ "libevent",		LL_ERROR },
	[EV_DEBUG] =		{ "debug",		LL_DEBUG },
	[EV_LOG_DROPPED] =	{ "log_dropped",	LL_WARN },
};

static const char *const log_keys[LK__COUNT] = {
	[LK_LISTEN] =		"listen",
	[LK_VERSION] =		"version",
	[LK_PINSETS] =		"pinsets",
	[LK_ERROR] =		"error",
	[LK_HOST] =		"host",
	[LK_PORT] =		"port",
	[LK_CLIENT] =		"client",
	[LK_PINSET] =		"pinset",
	[LK_ENFORCED] =		"enforced",
	[LK_CHAIN] =		"chain",
	[LK_PIN] =		"pin",
	[LK_DEPTH] =		"depth",
	[LK_REASON] =		"reason",
	[LK_EXPIRES] =		"expires",
	[LK_MODE] =		"mode",
	[LK_STATUS] =		"status",
	[LK_BYTES_UP] =		"bytes_up",
	[LK_BYTES_DOWN] =	"bytes_down",
	[LK_MS] =		"ms",
	[LK_FILE] =		"file",
	[LK_CONN] =		"conn",
	[LK_STATE] =		"state",
	[LK_FROM] =		"from",
	[LK_MSG] =		"msg",
	[LK_COUNT] =		"count",
	[LK_CUT] =		"cut",
	[LK_ALERT] =		"alert",
	[LK_HINT] =		"hint",
	[LK_DAYS] =		"days",
	[LK_RESULT] =		"result",
	[LK_FORWARD] =		"forward",
	[LK_STATS] =		"stats",
	[LK_ADDR] =		"addr",
};

static const char *const log_level_names[] = {
	[LL_ERROR] = "error",
	[LL_WARN] = "warn",
	[LL_INFO] = "info",
	[LL_DEBUG] = "debug",
};

static const int log_syslog_prio[] = {
	[LL_ERROR] = LOG_ERR,
	[LL_WARN] = LOG_WARNING,
	[LL_INFO] = LOG_INFO,
	[LL_DEBUG] = LOG_DEBUG,
};

static enum log_level	 log_level = LL_INFO;
static void		(*log_capture)(enum log_level, const char *, void *);
static void		*log_capture_arg;

static void	log_dropped_line(void);

void
log_open(enum log_sink sink, enum log_level level)
{
	logsink_open(sink == LOG_SINK_SYSLOG);
	logsink_on_drained(log_dropped_line);
	log_level = level;
}

void
log_libevent(int severity, const char *msg)
{
	static const enum log_event	 ev[] = {
		[EVENT_LOG_DEBUG] = EV_DEBUG,
		[EVENT_LOG_MSG] = EV_LIBEVENT,
		[EVENT_LOG_WARN] = EV_LIBEVENT_WARNING,
		[EVENT_LOG_ERR] = EV_LIBEVENT_ERROR,
	};

	log_msg(severity >= 0 && severity <= EVENT_LOG_ERR ? ev[severity] :
	    EV_LIBEVENT_ERROR, "%s", msg);
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

void
log_set_capture(void (*cb)(enum log_level, const char *, void *), void *arg)
{
	log_capture = cb;
	log_capture_arg = arg;
}

enum log_level
log_event_level(enum log_event ev)
{
	return log_events[ev].level;
}

const char *
log_event_name(enum log_event ev)
{
	return log_events[ev].name;
}

const char *
log_key_name(enum log_key key)
{
	return log_keys[key];
}

bool
log_level_parse(const char *s, enum log_level *out)
{
	size_t	 i;

	for (i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]);
	    i++) {
		if (strcmp(s, log_level_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

bool
log_enabled(enum log_event ev)
{
	return log_events[ev].level <= log_level;
}

/* Whether a byte can stand in an unquoted logfmt value. */
static int
log_plain_byte(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '"' && c != '=' && c != '\\';
}

char *
log_escape(char *buf, size_t bufsize, const char *val, size_t len)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 i, o = 0;
	int			 quote = (len == 0);
	unsigned char		 c;

	for (i = 0; i < len && !quote; i++)
		if (!log_plain_byte((unsigned char)val[i]))
			quote = 1;
	if (bufsize < 3) {
		if (bufsize > 0)
			buf[0] = '\0';
		return buf;
	}
	if (quote)
		buf[o++] = '"';
	for (i = 0; i < len; i++) {
		/* Leave room for the longest escape, a quote and NUL. */
		if (o + 6 >= bufsize)
			break;
		c = (unsigned char)val[i];
		if (!quote || (c >= 0x20 && c < 0x7f && c != '"' &&
		    c != '\\')) {
			buf[o++] = (char)c;
			continue;
		}
		buf[o++] = '\\';
		switch (c) {
		case '"':
		case '\\':
			buf[o++] = (char)c;
			break;
		case '\n':
			buf[o++] = 'n';
			break;
		case '\r':
			buf[o++] = 'r';
			break;
		case '\t':
			buf[o++] = 't';
			break;
		default:
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 0xf];
			break;
		}
	}
	if (quote)
		buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

/* What ends a line that some pairs did not fit. */
#define LOG_TRUNCATED	" truncated=1"

/*
 * Append " key=value" (value escaped) whole, or not at all: a pair that
 * does not fit, with room for LOG_TRUNCATED after it, is left out, and so
 * are the ones after it, so that no value is cut in its middle (an open
 * quote) and the line says it is incomplete.
 */
static void
log_pair(struct logline *l, const char *key, const char *esc)
{
	size_t	 klen = strlen(key), vlen = strlen(esc);

	if (l->truncated || l->len + 1 + klen + 1 + vlen +
	    sizeof(LOG_TRUNCATED) > sizeof(l->buf)) {
		l->truncated = true;
		return;
	}
	l->buf[l->len++] = ' ';
	memcpy(l->buf + l->len, key, klen);
	l->len += klen;
	l->buf[l->len++] = '=';
	memcpy(l->buf + l->len, esc, vlen + 1);
	l->len += vlen;
}

void
log_begin(struct logline *l, enum log_event ev)
{
	const struct log_event_def	*def = &log_events[ev];
	int				 n;

	l->event = ev;
	l->len = 0;
	l->truncated = false;
	l->buf[0] = '\0';
	l->enabled = log_enabled(ev);
	if (!l->enabled)
		return;
	n = snprintf(l->buf, sizeof(l->buf), "level=%s event=%s",
	    log_level_names[def->level], def->name);
	l->len = (size_t)n;
}

void
log_strn(struct logline *l, enum log_key key, const char *val, size_t len)
{
	char	 esc[LOG_LINE_MAX];

	if (!l->enabled)
		return;
	if (val == NULL) {
		val = "";
		len = 0;
	}
	log_escape(esc, sizeof(esc), val, len);
	log_pair(l, log_keys[key], esc);
}

void
log_str(struct logline *l, enum log_key key, const char *val)
{
	log_strn(l, key, val, val == NULL ? 0 : strlen(val));
}

void
log_int(struct logline *l, enum log_key key, long long val)
{
	char	 num[32];

	snprintf(num, sizeof(num), "%lld", val);
	log_str(l, key, num);
}

/*
 * Once lines the output did not take in time were dropped, and it took
 * the rest, the next line says how many, first.
 */
static void
log_dropped_line(void)
{
	struct logline	 d;
	unsigned long	 n;

	if ((n = logsink_take_dropped()) == 0)
		return;
	log_begin(&d, EV_LOG_DROPPED);
	if (!d.enabled)
		return;
	log_int(&d, LK_COUNT, (long long)n);
	log_str(&d, LK_MSG, "the log's reader did not keep up: lines were "
	    "dropped rather than the proxy wait for it");
	logsink_write(log_syslog_prio[log_events[EV_LOG_DROPPED].level],
	    d.buf, d.len);
}

void
log_end(struct logline *l)
{
	enum log_level	 level;

	if (!l->enabled)
		return;
	/* log_pair() kept the room. */
	if (l->truncated) {
		memcpy(l->buf + l->len, LOG_TRUNCATED, sizeof(LOG_TRUNCATED));
		l->len += sizeof(LOG_TRUNCATED) - 1;
	}
	level = log_events[l->event].level;
	if (log_capture != NULL) {
		log_capture(level, l->buf, log_capture_arg);
		return;
	}
	log_dropped_line();
	logsink_write(log_syslog_prio[level], l->buf, l->len);
}

void
log_msg(enum log_event ev, const char *fmt, ...)
{
	struct logline	 l;
	char		 val[LOG_LINE_MAX];
	va_list		 ap;

	log_begin(&l, ev);
	if (!l.enabled)
		return;
	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	log_str(&l, LK_MSG, val);
	log_end(&l);
}

void
log_blocked(const char *host, const char *client, const char *reason)
{
	struct logline	 l;

	log_begin(&l, EV_BLOCKED);
	log_str(&l, LK_HOST, host);
	log_str(&l, LK_CLIENT, client);
	log_str(&l, LK_REASON, reason);
	log_end(&l);
}
