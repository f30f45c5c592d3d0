/*
 * Pin failure reports: each one is built as a single JSON line in memory and
 * appended with one write(2), so that lines from a rotated or shared file
 * never interleave. A small table of recent report digests suppresses
 * repeats of the same failure within an hour.
 */
#include "config.h"

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
#include "jsonl.h"
#include "pin.h"
#include "report.h"
#include "xmalloc.h"

#define REPORT_KEY_LEN	32
/* 9999-12-31T23:59:59Z, the last time RFC 3339 can write. */
#define REPORT_TIME_MAX	((time_t)253402300799LL)

/* A report written recently, remembered by the digest of what identifies it. */
struct report_seen {
	bool		 used;
	unsigned char	 key[REPORT_KEY_LEN];
	time_t		 when;
};

struct report {
	struct jsonl_file	*out;
	unsigned long		 suppressed;
	struct report_seen	 seen[REPORT_DEDUP_ENTRIES];
};

/* RFC 3339 in UTC: "2024-05-01T12:00:00Z". */
static void
report_buf_time(struct jsonl_buf *b, time_t t)
{
	struct tm	 tm;
	char		 text[32];

	/* RFC 3339 has four digits for the year (expires = 9999-12-31). */
	if (t > REPORT_TIME_MAX)
		t = REPORT_TIME_MAX;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		jsonl_puts(b, "null");
		return;
	}
	jsonl_str(b, text);
}

/*
 * An array of the PEM forms of a chain, leaf first, bounded in count and
 * in bytes so that one hostile chain cannot make the line unbounded.
 */
static void
report_buf_chain(struct jsonl_buf *b, STACK_OF(X509) *chain)
{
	BIO	*bio;
	char	*pem;
	long	 pemlen;
	size_t	 total = 0;
	int	 i, n, written = 0;

	jsonl_add(b, "[", 1);
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
			jsonl_add(b, ",", 1);
		jsonl_string(b, pem, (size_t)pemlen);
		BIO_free(bio);
	}
	jsonl_add(b, "]", 1);
}

/* One pin in the RFC 7469 form pin-sha256="BASE64" (no scope there). */
static void
report_buf_pin(struct jsonl_buf *b, const struct pin *p)
{
	char	 text[PIN_TEXT_MAX], rfc[PIN_TEXT_MAX + 16];

	pin_format(p, text, sizeof(text));
	snprintf(rfc, sizeof(rfc), "pin-sha256=\"%s\"",
	    text + strlen("sha256/"));
	jsonl_str(b, rfc);
}

/* The pins of the set in the RFC 7469 form pin-sha256="BASE64". */
static void
report_buf_known_pins(struct jsonl_buf *b, const struct pinset *ps)
{
	size_t	 i;

	jsonl_add(b, "[", 1);
	for (i = 0; i < ps->npins; i++) {
		if (i > 0)
			jsonl_add(b, ",", 1);
		report_buf_pin(b, &ps->pins[i]);
	}
	jsonl_add(b, "]", 1);
}

/*
 * What the check found beyond a mismatch: the depth where a pin matched
 * (require = leaf+ca only half met) and the candidates of the set that the
 * validated chain holds; each member only when it applies.
 */
static void
report_buf_check(struct jsonl_buf *b, const struct report_event *ev)
{
	const struct pincheck_result	*res = ev->pins;
	char				 depth[16];
	size_t				 i;

	if (res == NULL)
		return;
	if (res->matched_depth >= 0) {
		snprintf(depth, sizeof(depth), "%d", res->matched_depth);
		jsonl_key(b, "matched-depth");
		jsonl_puts(b, depth);
	}
	if (res->ncandidates == 0)
		return;
	jsonl_key(b, "candidate-pins");
	jsonl_add(b, "[", 1);
	for (i = 0; i < res->ncandidates; i++) {
		if (i > 0)
			jsonl_add(b, ",", 1);
		report_buf_pin(b, &ev->ps->candidates[
		    res->candidates[i].index]);
	}
	jsonl_add(b, "]", 1);
}

/* The whole line, newline included. */
static void
report_build(struct jsonl_buf *b, const struct report_event *ev)
{
	const char	*noted;
	char		 port[8];

	noted = report_noted_hostname(ev->ps, ev->hostname);
	if (noted == NULL)
		noted = ev->hostname;
	snprintf(port, sizeof(port), "%u", ev->port);

	jsonl_add(b, "{", 1);
	jsonl_key(b, "date-time");
	report_buf_time(b, ev->time);
	jsonl_key(b, "hostname");
	jsonl_str(b, ev->hostname);
	jsonl_key(b, "port");
	jsonl_puts(b, port);
	jsonl_key(b, "effective-expiration-date");
	if (ev->ps->has_expires)
		report_buf_time(b, pinset_end(ev->ps));
	else
		jsonl_puts(b, "null");
	jsonl_key(b, "include-subdomains");
	jsonl_puts(b, ev->ps->include_subdomains ? "true" : "false");
	jsonl_key(b, "noted-hostname");
	jsonl_str(b, noted);
	jsonl_key(b, "served-certificate-chain");
	report_buf_chain(b, ev->served_chain);
	jsonl_key(b, "validated-certificate-chain");
	report_buf_chain(b, ev->validated_chain);
	jsonl_key(b, "known-pins");
	report_buf_known_pins(b, ev->ps);
	report_buf_check(b, ev);
	jsonl_key(b, "enforced");
	jsonl_puts(b, ev->enforced ? "true" : "false");
	jsonl_key(b, "pinset");
	jsonl_str(b, ev->ps->name);
	jsonl_key(b, "client");
	jsonl_str(b, ev->client);
	if (ev->server_address != NULL && ev->server_address[0] != '\0') {
		jsonl_key(b, "server-address");
		jsonl_str(b, ev->server_address);
	}
	jsonl_add(b, "}\n", 2);
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

struct report *
report_open(const char *path, char *err, size_t errlen)
{
	struct jsonl_file	*out;
	struct report		*r;

	if ((out = jsonl_open("report_file", path, err, errlen)) == NULL)
		return NULL;
	r = xcalloc(1, sizeof(*r));
	r->out = out;
	return r;
}

bool
report_reopen(struct report *r, char *err, size_t errlen)
{
	return jsonl_reopen(r->out, err, errlen);
}

void
report_close(struct report *r)
{
	if (r == NULL)
		return;
	jsonl_close(r->out);
	free(r);
}

void
report_discard(struct report *r)
{
	if (r == NULL)
		return;
	jsonl_discard(r->out);
	free(r);
}

const char *
report_path(const struct report *r)
{
	return jsonl_path(r->out);
}

void
report_log_error(struct report *r, const char *err)
{
	jsonl_log_error(r->out, err, time(NULL));
}

enum report_outcome
report_pin_failure(struct report *r, const struct report_event *ev,
    unsigned long max, char *err, size_t errlen)
{
	struct jsonl_buf	 b = { NULL, 0, 0 };
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
	if (!jsonl_room(r->out, "report_max", max, ev->time))
		return REPORT_FULL;
	report_build(&b, ev);
	ok = jsonl_write(r->out, &b, err, errlen);
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
