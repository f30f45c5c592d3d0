/*
 * Pin failure reports: each one is built as a single JSON line in memory and
 * appended with one write(2), so that lines from a rotated or shared file
 * never interleave. A small table of recent report digests suppresses
 * repeats of the same failure within an hour.
 */
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hostmatch.h"
#include "pin.h"
#include "regfile.h"
#include "report.h"
#include "xmalloc.h"

#define REPORT_KEY_LEN	32

/* A report written recently, remembered by the digest of what identifies it. */
struct report_seen {
	bool		 used;
	unsigned char	 key[REPORT_KEY_LEN];
	time_t		 when;
};

struct report {
	char			*path;
	int			 fd;
	/* The last write stopped mid-line: end that line before the next. */
	bool			 partial;
	unsigned long		 suppressed;
	struct report_seen	 seen[REPORT_DEDUP_ENTRIES];
};

/* A growing text buffer for one line. */
struct report_buf {
	char		*data;
	size_t		 len;
	size_t		 cap;
};

static void
report_buf_add(struct report_buf *b, const char *s, size_t len)
{
	size_t	 cap;

	if (b->len + len > b->cap) {
		cap = b->cap == 0 ? 4096 : b->cap;
		while (cap < b->len + len)
			cap *= 2;
		b->data = xreallocarray(b->data, cap, 1);
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, len);
	b->len += len;
}

static void
report_buf_puts(struct report_buf *b, const char *s)
{
	report_buf_add(b, s, strlen(s));
}

/*
 * A JSON string of len bytes, or null. Bytes outside printable ASCII are
 * escaped as \u00XX so that the line is valid JSON whatever a peer sent.
 */
static void
report_buf_string(struct report_buf *b, const char *s, size_t len)
{
	char		 esc[8];
	unsigned char	 c;
	size_t		 i, start;

	if (s == NULL) {
		report_buf_puts(b, "null");
		return;
	}
	report_buf_add(b, "\"", 1);
	start = 0;
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			continue;
		report_buf_add(b, s + start, i - start);
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			esc[2] = '\0';
		} else if (c == '\n')
			xstrlcpy(esc, "\\n", sizeof(esc));
		else
			snprintf(esc, sizeof(esc), "\\u%04x", c);
		report_buf_puts(b, esc);
		start = i + 1;
	}
	report_buf_add(b, s + start, len - start);
	report_buf_add(b, "\"", 1);
}

static void
report_buf_str(struct report_buf *b, const char *s)
{
	report_buf_string(b, s, s != NULL ? strlen(s) : 0);
}

/* "key": with the comma that separates it from the previous member. */
static void
report_buf_key(struct report_buf *b, const char *key)
{
	if (b->data[b->len - 1] != '{')
		report_buf_add(b, ",", 1);
	report_buf_str(b, key);
	report_buf_add(b, ":", 1);
}

/* RFC 3339 in UTC: "2024-05-01T12:00:00Z". */
static void
report_buf_time(struct report_buf *b, time_t t)
{
	struct tm	 tm;
	char		 text[32];

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		report_buf_puts(b, "null");
		return;
	}
	report_buf_str(b, text);
}

/*
 * An array of the PEM forms of a chain, leaf first, bounded in count and
 * in bytes so that one hostile chain cannot make the line unbounded.
 */
static void
report_buf_chain(struct report_buf *b, STACK_OF(X509) *chain)
{
	BIO	*bio;
	char	*pem;
	long	 pemlen;
	size_t	 total = 0;
	int	 i, n, written = 0;

	report_buf_add(b, "[", 1);
	n = chain != NULL ? sk_X509_num(chain) : 0;
	for (i = 0; i < n && i < REPORT_MAX_CHAIN; i++) {
		if ((bio = BIO_new(BIO_s_mem())) == NULL)
			break;
		if (PEM_write_bio_X509(bio, sk_X509_value(chain, i)) != 1 ||
		    (pemlen = BIO_get_mem_data(bio, &pem)) <= 0 ||
		    total + (size_t)pemlen > REPORT_CHAIN_BYTES_MAX) {
			BIO_free(bio);
			break;
		}
		total += (size_t)pemlen;
		if (written++ > 0)
			report_buf_add(b, ",", 1);
		report_buf_string(b, pem, (size_t)pemlen);
		BIO_free(bio);
	}
	report_buf_add(b, "]", 1);
}

/* One pin in the RFC 7469 form pin-sha256="BASE64" (no scope there). */
static void
report_buf_pin(struct report_buf *b, const struct pin *p)
{
	char	 text[PIN_TEXT_MAX], rfc[PIN_TEXT_MAX + 16];

	pin_format(p, text, sizeof(text));
	snprintf(rfc, sizeof(rfc), "pin-sha256=\"%s\"",
	    text + strlen("sha256/"));
	report_buf_str(b, rfc);
}

/* The pins of the set in the RFC 7469 form pin-sha256="BASE64". */
static void
report_buf_known_pins(struct report_buf *b, const struct pinset *ps)
{
	size_t	 i;

	report_buf_add(b, "[", 1);
	for (i = 0; i < ps->npins; i++) {
		if (i > 0)
			report_buf_add(b, ",", 1);
		report_buf_pin(b, &ps->pins[i]);
	}
	report_buf_add(b, "]", 1);
}

/*
 * What the check found beyond a mismatch: the depth where a pin matched
 * (require = leaf+ca only half met) and the candidates of the set that the
 * validated chain holds; each member only when it applies.
 */
static void
report_buf_check(struct report_buf *b, const struct report_event *ev)
{
	const struct pincheck_result	*res = ev->pins;
	char				 depth[16];
	size_t				 i;

	if (res == NULL)
		return;
	if (res->matched_depth >= 0) {
		snprintf(depth, sizeof(depth), "%d", res->matched_depth);
		report_buf_key(b, "matched-depth");
		report_buf_puts(b, depth);
	}
	if (res->ncandidates == 0)
		return;
	report_buf_key(b, "candidate-pins");
	report_buf_add(b, "[", 1);
	for (i = 0; i < res->ncandidates; i++) {
		if (i > 0)
			report_buf_add(b, ",", 1);
		report_buf_pin(b, &ev->ps->candidates[
		    res->candidates[i].index]);
	}
	report_buf_add(b, "]", 1);
}

/* The whole line, newline included. */
static void
report_build(struct report_buf *b, const struct report_event *ev)
{
	const char	*noted;
	char		 port[8];

	noted = ev->noted_hostname;
	if (noted == NULL)
		noted = report_noted_hostname(ev->ps, ev->hostname);
	if (noted == NULL)
		noted = ev->hostname;
	snprintf(port, sizeof(port), "%u", ev->port);

	report_buf_add(b, "{", 1);
	report_buf_key(b, "date-time");
	report_buf_time(b, ev->time);
	report_buf_key(b, "hostname");
	report_buf_str(b, ev->hostname);
	report_buf_key(b, "port");
	report_buf_puts(b, port);
	report_buf_key(b, "effective-expiration-date");
	if (ev->ps->has_expires)
		report_buf_time(b, ev->ps->expires);
	else
		report_buf_puts(b, "null");
	report_buf_key(b, "include-subdomains");
	report_buf_puts(b, ev->ps->include_subdomains ? "true" : "false");
	report_buf_key(b, "noted-hostname");
	report_buf_str(b, noted);
	report_buf_key(b, "served-certificate-chain");
	report_buf_chain(b, ev->served_chain);
	report_buf_key(b, "validated-certificate-chain");
	report_buf_chain(b, ev->validated_chain);
	report_buf_key(b, "known-pins");
	report_buf_known_pins(b, ev->ps);
	report_buf_check(b, ev);
	report_buf_key(b, "enforced");
	report_buf_puts(b, ev->enforced ? "true" : "false");
	report_buf_key(b, "pinset");
	report_buf_str(b, ev->ps->name);
	report_buf_key(b, "client");
	report_buf_str(b, ev->client);
	report_buf_add(b, "}\n", 2);
}

/*
 * What makes two reports the same: host, port, pin set and the pins of the
 * validated chain. Anything else (time, client) may differ.
 */
static void
report_key(const struct report_event *ev, unsigned char key[REPORT_KEY_LEN])
{
	EVP_MD_CTX	*ctx;
	struct pin	 p;
	unsigned char	 port[2];
	unsigned int	 len = REPORT_KEY_LEN;
	int		 i, n;

	memset(key, 0, REPORT_KEY_LEN);
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return;
	port[0] = ev->port >> 8;
	port[1] = ev->port & 0xff;
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, ev->hostname, strlen(ev->hostname) + 1);
	EVP_DigestUpdate(ctx, port, sizeof(port));
	EVP_DigestUpdate(ctx, ev->ps->name, strlen(ev->ps->name) + 1);
	n = ev->validated_chain != NULL ? sk_X509_num(ev->validated_chain) : 0;
	for (i = 0; i < n && i < REPORT_MAX_CHAIN; i++) {
		if (pin_from_cert(sk_X509_value(ev->validated_chain, i), &p))
			EVP_DigestUpdate(ctx, p.digest, sizeof(p.digest));
	}
	EVP_DigestFinal_ex(ctx, key, &len);
	EVP_MD_CTX_free(ctx);
}

/* The entry remembering key, or NULL. */
static struct report_seen *
report_find(struct report *r, const unsigned char *key)
{
	size_t	 i;

	for (i = 0; i < REPORT_DEDUP_ENTRIES; i++) {
		if (r->seen[i].used &&
		    memcmp(r->seen[i].key, key, REPORT_KEY_LEN) == 0)
			return &r->seen[i];
	}
	return NULL;
}

/* Remember key as written at when, forgetting the oldest when full. */
static void
report_remember(struct report *r, const unsigned char *key, time_t when)
{
	struct report_seen	*slot;
	size_t			 i;

	if ((slot = report_find(r, key)) == NULL) {
		slot = &r->seen[0];
		for (i = 0; i < REPORT_DEDUP_ENTRIES; i++) {
			if (!r->seen[i].used) {
				slot = &r->seen[i];
				break;
			}
			if (r->seen[i].when < slot->when)
				slot = &r->seen[i];
		}
	}
	slot->used = true;
	memcpy(slot->key, key, REPORT_KEY_LEN);
	slot->when = when;
}

/* Append the line with one write; false with err on any failure. */
static bool
report_write(struct report *r, const struct report_buf *b, char *err,
    size_t errlen)
{
	ssize_t	 n;

	do {
		n = write(r->fd, b->data, b->len);
	} while (n == -1 && errno == EINTR);
	if (n == -1) {
		snprintf(err, errlen, "cannot write to %s: %s", r->path,
		    strerror(errno));
		return false;
	}
	if ((size_t)n != b->len) {
		r->partial = n > 0;
		snprintf(err, errlen, "short write to %s: %zd of %zu bytes",
		    r->path, n, b->len);
		return false;
	}
	r->partial = false;
	return true;
}

struct report *
report_open(const char *path, char *err, size_t errlen)
{
	struct report	*r;
	int		 fd;

	if ((fd = regfile_append("report_file", path, err,
	    errlen)) == -1)
		return NULL;
	r = xcalloc(1, sizeof(*r));
	r->path = xstrdup(path);
	r->fd = fd;
	return r;
}

bool
report_reopen(struct report *r, char *err, size_t errlen)
{
	int	 fd;

	if ((fd = regfile_append("report_file", r->path, err,
	    errlen)) == -1)
		return false;
	close(r->fd);
	r->fd = fd;
	r->partial = false;
	return true;
}

void
report_close(struct report *r)
{
	if (r == NULL)
		return;
	close(r->fd);
	free(r->path);
	free(r);
}

const char *
report_path(const struct report *r)
{
	return r->path;
}

enum report_outcome
report_pin_failure(struct report *r, const struct report_event *ev,
    char *err, size_t errlen)
{
	struct report_buf	 b = { NULL, 0, 0 };
	struct report_seen	*seen;
	unsigned char		 key[REPORT_KEY_LEN];
	bool			 ok;

	report_key(ev, key);
	seen = report_find(r, key);
	if (seen != NULL && ev->time >= seen->when &&
	    ev->time - seen->when < REPORT_DEDUP_SECONDS) {
		r->suppressed++;
		return REPORT_DUPLICATE;
	}
	if (r->partial)
		report_buf_add(&b, "\n", 1);
	report_build(&b, ev);
	ok = report_write(r, &b, err, errlen);
	free(b.data);
	if (!ok)
		return REPORT_FAILED;
	report_remember(r, key, ev->time);
	r->suppressed = 0;
	return REPORT_WRITTEN;
}

unsigned long
report_suppressed(const struct report *r)
{
	return r->suppressed;
}

const char *
report_noted_hostname(const struct pinset *ps, const char *host)
{
	const char	*best = NULL;
	int		 score, best_score = -1;
	size_t		 i;

	for (i = 0; i < ps->nhosts; i++) {
		score = hostmatch_score(ps->hosts[i], host,
		    ps->include_subdomains);
		if (score > best_score) {
			best_score = score;
			best = ps->hosts[i];
		}
	}
	return best;
}
