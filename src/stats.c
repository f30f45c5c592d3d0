/*
 * The metrics endpoint on libevent's evhttp: one listener bound to the
 * stats_listen address only, short timeouts and small request limits,
 * and one handler that renders the metrics on each GET /metrics.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/listener.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"
#include "xmalloc.h"

#define STATS_PATH		"/metrics"
#define STATS_CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"

/* Every method evhttp knows: the handler answers 405 itself. */
#define STATS_ALL_METHODS	(EVHTTP_REQ_GET | EVHTTP_REQ_POST | \
	EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | \
	EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | \
	EVHTTP_REQ_PATCH)

struct stats {
	struct evhttp			*http;
	struct evhttp_bound_socket	*bound;		/* owned by http */
	struct metrics			*metrics;	/* borrowed */
	stats_refresh_cb		 refresh;
	void				*refresh_arg;
};

/* Answer with a short plain text body. */
static void
stats_reply_text(struct evhttp_request *req, int code, const char *reason,
    const char *text)
{
	struct evbuffer	*body;

	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; charset=utf-8");
	if ((body = evbuffer_new()) == NULL) {
		evhttp_send_reply(req, code, reason, NULL);
		return;
	}
	evbuffer_add_printf(body, "%s\n", text);
	evhttp_send_reply(req, code, reason, body);
	evbuffer_free(body);
}

/* GET or HEAD /metrics: the metrics as they are now. */
static void
stats_send_metrics(struct stats *s, struct evhttp_request *req)
{
	struct evkeyvalq	*headers;
	struct evbuffer		*body;
	char			 len[24];

	if ((body = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	if (s->refresh != NULL)
		s->refresh(s->metrics, s->refresh_arg);
	metrics_render(s->metrics, body);
	headers = evhttp_request_get_output_headers(req);
	evhttp_add_header(headers, "Content-Type", STATS_CONTENT_TYPE);
	/* evhttp 2.1 would send the body of a HEAD answer: drop it here. */
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		snprintf(len, sizeof(len), "%zu", evbuffer_get_length(body));
		evhttp_add_header(headers, "Content-Length", len);
		evbuffer_drain(body, evbuffer_get_length(body));
	}
	evhttp_send_reply(req, HTTP_OK, "OK", body);
	evbuffer_free(body);
}

static void
stats_request_cb(struct evhttp_request *req, void *arg)
{
	struct stats			*s = arg;
	const struct evhttp_uri		*uri;
	const char			*path = NULL;
	enum evhttp_cmd_type		 method;

	if ((uri = evhttp_request_get_evhttp_uri(req)) != NULL)
		path = evhttp_uri_get_path(uri);
	if (path == NULL || strcmp(path, STATS_PATH) != 0) {
		stats_reply_text(req, HTTP_NOTFOUND, "Not Found",
		    "not found: only " STATS_PATH " is served here");
		return;
	}
	method = evhttp_request_get_command(req);
	if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET, HEAD");
		stats_reply_text(req, HTTP_BADMETHOD, "Method Not Allowed",
		    "method not allowed: use GET");
		return;
	}
	stats_send_metrics(s, req);
}

struct stats *
stats_new(struct event_base *base, const struct conf_addr *addr,
    struct metrics *m, char *err, size_t errlen)
{
	struct stats		*s;
	struct evconnlistener	*lev;
	unsigned int		 flags;

	s = xcalloc(1, sizeof(*s));
	s->metrics = m;
	if ((s->http = evhttp_new(base)) == NULL) {
		snprintf(err, errlen, "cannot set up the stats server");
		free(s);
		return NULL;
	}
	flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
	    LEV_OPT_REUSEABLE;
	if (addr->ss.ss_family == AF_INET6)
		flags |= LEV_OPT_BIND_IPV6ONLY;
	lev = evconnlistener_new_bind(base, NULL, NULL, flags, -1,
	    (const struct sockaddr *)&addr->ss, addr->sslen);
	if (lev == NULL) {
		snprintf(err, errlen, "cannot listen on %s: %s", addr->text,
		    strerror(errno));
		evhttp_free(s->http);
		free(s);
		return NULL;
	}
	if ((s->bound = evhttp_bind_listener(s->http, lev)) == NULL) {
		snprintf(err, errlen, "cannot serve on %s", addr->text);
		evconnlistener_free(lev);
		evhttp_free(s->http);
		free(s);
		return NULL;
	}
	evhttp_set_timeout(s->http, STATS_TIMEOUT);
	evhttp_set_max_headers_size(s->http, STATS_MAX_HEADERS);
	evhttp_set_max_body_size(s->http, STATS_MAX_BODY);
	evhttp_set_allowed_methods(s->http, STATS_ALL_METHODS);
	evhttp_set_gencb(s->http, stats_request_cb, s);
	return s;
}

void
stats_set_refresh(struct stats *s, stats_refresh_cb cb, void *arg)
{
	s->refresh = cb;
	s->refresh_arg = arg;
}

uint16_t
stats_port(const struct stats *s)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);

	if (getsockname(evhttp_bound_socket_get_fd(s->bound),
	    (struct sockaddr *)&ss, &len) == -1)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

void
stats_free(struct stats *s)
{
	if (s == NULL)
		return;
	evhttp_free(s->http);
	free(s);
}
