/*
 * libFuzzer target for HTTP framing, both directions. The first input byte
 * picks the direction, how the bytes are split between calls and which
 * responses answer HEAD; the rest is the byte stream of one connection.
 * The stream is parsed twice, whole and in pieces with the parser trimmed
 * between messages, and both parses must tell the same story; every head
 * that is forwarded must parse again.
 */
#include "config.h"

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "hostmatch.h"
#include "http.h"

/* A connection carries at most this many messages here. */
#define FUZZ_MESSAGES_MAX	32

/* What a parse did, event by event, to compare two parses. */
struct fuzz_trace {
	char	 text[16384];
	size_t	 len;
};

/* How one stream is fed. */
struct fuzz_feed {
	enum http_dir	 dir;
	size_t		 piece;		/* bytes offered per call */
	unsigned int	 no_body_mask;	/* responses that answer HEAD */
	bool		 close;		/* close responses; requests: no Via */
	bool		 trim;		/* trim the parser between messages */
};

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void	fuzz_trace_add(struct fuzz_trace *t, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));

static const size_t fuzz_pieces[] = { 1, 2, 3, 5, 8, 64, 500, SIZE_MAX };

static void
fuzz_trace_add(struct fuzz_trace *t, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	if (t->len >= sizeof(t->text) - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->text + t->len, sizeof(t->text) - t->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->len += (size_t)n;
	if (t->len > sizeof(t->text) - 1)
		t->len = sizeof(t->text) - 1;
}

/* A head just returned must keep the promises of http.h. */
static void
fuzz_check_head(const struct http_head *h, enum http_dir dir)
{
	size_t	 i;

	assert(h != NULL && h->dir == dir && h->http_major == 1);
	assert(h->nheaders <= HTTP_HEADERS_MAX);
	for (i = 0; i < h->nheaders; i++)
		assert(h->headers[i].name[0] != '\0' &&
		    h->headers[i].value != NULL);
	assert(strlen(h->host) < HOSTMATCH_NAME_MAX);
	if (h->framing == HTTP_FRAMING_CHUNKED)
		assert(h->chunked);
	if (h->framing == HTTP_FRAMING_LENGTH)
		assert(h->has_content_length && !h->chunked);
	if (dir == HTTP_DIR_REQUEST) {
		assert(h->method[0] != '\0' && h->target[0] != '\0');
		assert(h->framing != HTTP_FRAMING_CLOSE);
		if (!h->is_connect)
			assert((h->host[0] != '\0' || (h->http_minor == 0 &&
			    !h->absolute_form && h->port == 0 &&
			    http_head_get(h, "Host") == NULL)) &&
			    h->path[0] != '\0');
		else
			assert(h->host[0] != '\0' && h->port != 0);
	} else
		assert(h->status >= 0 && h->status <= 999);
}

/*
 * A final response has a body unless it answers HEAD, is a 204 or a 304,
 * or says Content-Length: 0; an interim one leaves the HEAD mark waiting.
 */
static void
fuzz_check_response_body(const struct http_head *h, bool no_body)
{
	bool	 bodiless;

	if (h->status / 100 == 1)
		return;
	bodiless = no_body || h->status == 204 || h->status == 304 ||
	    (h->has_content_length && h->content_length == 0);
	if (bodiless != (h->framing == HTTP_FRAMING_NONE)) {
		fprintf(stderr, "response %d%s framed as %d\n", h->status,
		    no_body ? " to HEAD" : "", (int)h->framing);
		abort();
	}
}

/*
 * The head pinproxy would forward for h must parse as one complete head
 * with the same framing: a proxy must never emit what it would refuse.
 */
static void
fuzz_check_rewrite(const struct http_head *h, const struct fuzz_feed *f,
    bool no_body)
{
	const struct http_head	*h2;
	struct http_msg		*m;
	struct evbuffer		*out;
	enum http_result	 r;
	size_t			 len, used;
	const char		*host = h->host;
	char			*text;

	if (h->dir == HTTP_DIR_REQUEST && h->is_connect)
		return;
	/* A request naming no host goes to its connection's (a tunnel's). */
	if (h->dir == HTTP_DIR_REQUEST && h->host[0] == '\0')
		host = "tunnel.test";
	out = evbuffer_new();
	assert(out != NULL);
	if (h->dir == HTTP_DIR_REQUEST)
		/* An Upgrade that goes on, and one that does not. */
		http_request_write(h, !f->close, host, h->port,
		    strcmp(h->scheme, "https") == 0,
		    f->close ? NULL : "1.1 pinproxy", out);
	else
		/* With close, for an HTTP/1.0 client. */
		http_response_write(h, f->close ? HTTP_CONN_CLOSE :
		    HTTP_CONN_PERSIST, f->close, f->close ? NULL :
		    "1.1 pinproxy", out);
	len = evbuffer_get_length(out);
	text = (char *)evbuffer_pullup(out, -1);

	m = http_msg_new(h->dir);
	if (no_body)
		http_msg_expect_no_body(m);
	r = http_msg_feed_head(m, text, len, &used);
	/*
	 * The rewrite may add a field (Via, Connection: close) to a head
	 * that had the most a head may have: only a limit is exceeded.
	 */
	if (r == HTTP_ERR_HEAD_TOO_LARGE && (h->nheaders + 1 >=
	    HTTP_HEADERS_MAX || len > HTTP_HEAD_MAX)) {
		http_msg_free(m);
		evbuffer_free(out);
		return;
	}
	if (r != HTTP_HEAD_COMPLETE) {
		fprintf(stderr, "rewritten head refused (%d):\n%.*s\n",
		    (int)r, (int)len, text);
		abort();
	}
	assert(used == len);
	h2 = http_msg_head(m);
	assert(h2 != NULL);
	/*
	 * An HTTP/1.0 client is sent no Transfer-Encoding: a body that was
	 * chunked or coded goes as the close ends it.
	 */
	if (h->dir == HTTP_DIR_RESPONSE && f->close)
		assert(!h2->chunked && http_head_get(h2,
		    "Transfer-Encoding") == NULL && (h2->framing == h->framing ||
		    (h->framing == HTTP_FRAMING_CHUNKED &&
		    h2->framing == HTTP_FRAMING_CLOSE) || h->status == 101));
	else
		assert(h2->framing == h->framing ||
		    (h->dir == HTTP_DIR_RESPONSE && h->status == 101));
	/* A 1xx or 204 goes on without the length it cannot have. */
	assert(h2->content_length == h->content_length ||
	    (h->dir == HTTP_DIR_RESPONSE && (h->status < 200 ||
	    h->status == 204) && !h2->has_content_length));
	if (h->dir == HTTP_DIR_REQUEST) {
		assert(strcmp(h2->method, h->method) == 0);
		assert(strcmp(h2->host, host) == 0);
		/* One hop less, never a second field. */
		assert(http_max_forwards(h) <= 0 ||
		    http_max_forwards(h2) == http_max_forwards(h) - 1);
		/* An Upgrade that does not go on leaves no offer behind. */
		assert(!f->close || !h2->upgrade);
	} else
		assert(h2->status == h->status);
	http_msg_free(m);
	evbuffer_free(out);
}

/*
 * pinproxy's own answer to a TRACE or OPTIONS whose Max-Forwards is 0
 * must parse as one response whose Content-Length is what follows it.
 */
static void
fuzz_check_final_answer(const struct http_head *h, const struct fuzz_feed *f)
{
	struct http_msg		*m;
	struct evbuffer		*out;
	const struct http_head	*h2;
	size_t			 len, used;
	char			*text;

	if (h->dir != HTTP_DIR_REQUEST || http_max_forwards(h) != 0)
		return;
	out = evbuffer_new();
	assert(out != NULL);
	assert(http_final_answer(h, f->close ? HTTP_CONN_CLOSE :
	    HTTP_CONN_PERSIST, out) == 200);
	len = evbuffer_get_length(out);
	text = (char *)evbuffer_pullup(out, -1);
	m = http_msg_new(HTTP_DIR_RESPONSE);
	if (http_msg_feed_head(m, text, len, &used) != HTTP_HEAD_COMPLETE) {
		fprintf(stderr, "final answer refused:\n%.*s\n", (int)len,
		    text);
		abort();
	}
	h2 = http_msg_head(m);
	assert(h2 != NULL && h2->status == 200 && h2->has_content_length);
	assert(h2->content_length == len - used);
	http_msg_free(m);
	evbuffer_free(out);
}

/* Record a head in the trace. */
static void
fuzz_trace_head(struct fuzz_trace *t, const struct http_head *h, size_t pos)
{
	size_t	 i;

	fuzz_trace_add(t, "head@%zu %d %s %s host=%s port=%u path=%s "
	    "framing=%d cl=%llu ka=%d up=%d hdrs=%zu\n", pos, h->status,
	    h->method, h->target, h->host, (unsigned int)h->port, h->path,
	    (int)h->framing, (unsigned long long)h->content_length,
	    (int)h->keep_alive, (int)h->upgrade, h->nheaders);
	for (i = 0; i < h->nheaders; i++)
		fuzz_trace_add(t, " %s: %s\n", h->headers[i].name,
		    h->headers[i].value);
}

/* Parse a whole stream as f says and write down what happened. */
static void
fuzz_run(const struct fuzz_feed *f, const char *data, size_t len,
    bool rewrite, struct fuzz_trace *t)
{
	const struct http_head	*h;
	struct http_msg		*m;
	enum http_msg_state	 st;
	enum http_result	 r;
	size_t			 pos = 0, n, used, nmsg = 0;
	bool			 in_head = false, no_body = false;

	m = http_msg_new(f->dir);
	while (pos < len && nmsg < FUZZ_MESSAGES_MAX) {
		st = http_msg_state(m);
		n = len - pos < f->piece ? len - pos : f->piece;
		if (st == HTTP_MSG_SWITCHED) {
			fuzz_trace_add(t, "switched@%zu\n", pos);
			goto out;
		}
		if (st == HTTP_MSG_BODY) {
			r = http_msg_feed_body(m, data + pos, n, &used);
			assert(used <= n);
			pos += used;
			if (r == HTTP_NEED_MORE) {
				assert(used == n);
				continue;
			}
			if (r != HTTP_BODY_COMPLETE) {
				assert(r == HTTP_ERR_BAD_REQUEST);
				fuzz_trace_add(t, "body refused\n");
				goto out;
			}
			fuzz_trace_add(t, "body end@%zu\n", pos);
			nmsg++;
			if (f->trim)
				http_msg_trim(m);
			continue;
		}
		assert(st == HTTP_MSG_HEAD || st == HTTP_MSG_DONE);
		/* A HEAD mark waits through interim responses. */
		if (!in_head && f->dir == HTTP_DIR_RESPONSE &&
		    (f->no_body_mask & (1u << (nmsg % 3))) != 0) {
			http_msg_expect_no_body(m);
			no_body = true;
		}
		in_head = true;
		r = http_msg_feed_head(m, data + pos, n, &used);
		assert(used <= n);
		pos += used;
		if (r == HTTP_NEED_MORE) {
			assert(used == n && http_msg_head(m) == NULL);
			continue;
		}
		/*
		 * Which of 400 and 431 a broken head gets may depend on where
		 * it was cut: the trace only says it was refused.
		 */
		if (r != HTTP_HEAD_COMPLETE) {
			assert(http_msg_state(m) == HTTP_MSG_FAILED);
			fuzz_trace_add(t, "head refused\n");
			goto out;
		}
		in_head = false;
		h = http_msg_head(m);
		fuzz_check_head(h, f->dir);
		fuzz_trace_head(t, h, pos);
		if (f->dir == HTTP_DIR_RESPONSE) {
			fuzz_check_response_body(h, no_body);
			if (rewrite)
				fuzz_check_rewrite(h, f, no_body);
			if (h->status / 100 != 1)
				no_body = false;
		} else if (rewrite) {
			fuzz_check_rewrite(h, f, false);
			fuzz_check_final_answer(h, f);
		}
		/* After CONNECT or Upgrade the caller stops feeding. */
		if (f->dir == HTTP_DIR_REQUEST && (h->is_connect || h->upgrade))
			goto out;
		if (http_msg_state(m) == HTTP_MSG_DONE) {
			nmsg++;
			if (f->trim) {
				http_msg_trim(m);
				assert(http_msg_head(m) == NULL);
			}
		}
	}
	if (nmsg < FUZZ_MESSAGES_MAX)
		fuzz_trace_add(t, "eof %d\n", (int)http_msg_feed_eof(m));
out:
	http_msg_free(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_trace	 whole, pieces;
	struct fuzz_feed		 f;

	if (size < 1)
		return 0;
	f.dir = (data[0] & 1) != 0 ? HTTP_DIR_RESPONSE : HTTP_DIR_REQUEST;
	f.close = (data[0] & 2) != 0;
	f.no_body_mask = (data[0] >> 2) & 7;
	f.piece = fuzz_pieces[(data[0] >> 5) & 7];

	whole.len = 0;
	pieces.len = 0;
	f.trim = true;
	fuzz_run(&f, (const char *)data + 1, size - 1, true, &pieces);
	f.piece = SIZE_MAX;
	f.trim = false;
	fuzz_run(&f, (const char *)data + 1, size - 1, false, &whole);
	if (whole.len != pieces.len ||
	    memcmp(whole.text, pieces.text, whole.len) != 0) {
		fprintf(stderr, "parsed whole:\n%.*s\nparsed in pieces:\n"
		    "%.*s\n", (int)whole.len, whole.text, (int)pieces.len,
		    pieces.text);
		abort();
	}
	return 0;
}
