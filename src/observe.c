/*
 * The observe_file writer: each line is built in memory and appended with
 * one write(2). A hashed table of the triples written today (bounded; the
 * oldest entry of a full probe run is forgotten) keeps a host that is
 * contacted all day to one line a day; a second one counts the lines of
 * each domain (a host's last two labels, or its address), which may take
 * a quarter of observe_max a day, so that ever new names under one
 * wildcard certificate cannot spend the whole day's budget.
 */
#include "config.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/evp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hostmatch.h"
#include "log.h"
#include "observe.h"
#include "jsonl.h"
#include "pin.h"
#include "report.h"
#include "xmalloc.h"

#define OBSERVE_KEY_LEN		32

/* A triple (or a domain) seen on a day, remembered by its digest. */
struct observe_seen {
	bool		 used;
	unsigned char	 key[OBSERVE_KEY_LEN];
	long long	 day;		/* days since the epoch, UTC */
	time_t		 when;
	unsigned long	 lines;		/* a domain's, that day */
	bool		 full;		/* a domain's share was logged */
};

struct observe {
	struct jsonl_file	*out;
	struct observe_seen	 seen[OBSERVE_DEDUP_ENTRIES];
	struct observe_seen	 domains[OBSERVE_DOMAINS];
};

/* One chain entry: {"pin":...,"depth":N,"subject":...,"not_after":...}. */
static void
observe_cert(struct jsonl_buf *b, X509 *cert, int depth)
{
	struct pin	 p;
	struct tm	 tm;
	BIO		*bio;
	char		 pin[PIN_TEXT_MAX], num[16], date[16], *data;
	long		 len = 0;

	if (!pin_from_cert(cert, &p))
		xstrlcpy(pin, "", sizeof(pin));
	else
		pin_format(&p, pin, sizeof(pin));
	if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1 ||
	    strftime(date, sizeof(date), "%Y-%m-%d", &tm) == 0)
		xstrlcpy(date, "unknown", sizeof(date));
	snprintf(num, sizeof(num), "%d", depth);
	jsonl_add(b, "{", 1);
	jsonl_key(b, "pin");
	jsonl_str(b, pin);
	jsonl_key(b, "depth");
	jsonl_puts(b, num);
	jsonl_key(b, "subject");
	/* RFC 2253 with the default flags escapes every non-ASCII byte. */
	data = NULL;
	if ((bio = BIO_new(BIO_s_mem())) != NULL &&
	    X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0,
	    XN_FLAG_RFC2253) >= 0)
		len = BIO_get_mem_data(bio, &data);
	jsonl_string(b, data != NULL ? data : "", len > 0 ? (size_t)len :
	    0);
	BIO_free(bio);
	jsonl_key(b, "not_after");
	jsonl_str(b, date);
	jsonl_add(b, "}", 1);
}

/* The whole line for one observation, ending in a newline. */
static void
observe_build(struct jsonl_buf *b, const char *host, uint16_t port,
    const char *client, STACK_OF(X509) *chain, time_t now)
{
	struct tm	 tm;
	char		 text[32];
	int		 i, n;

	jsonl_add(b, "{", 1);
	jsonl_key(b, "host");
	jsonl_str(b, host);
	jsonl_key(b, "port");
	snprintf(text, sizeof(text), "%u", port);
	jsonl_puts(b, text);
	jsonl_key(b, "first_seen");
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		xstrlcpy(text, "1970-01-01T00:00:00Z", sizeof(text));
	jsonl_str(b, text);
	jsonl_key(b, "client");
	jsonl_str(b, client);
	jsonl_key(b, "chain");
	jsonl_add(b, "[", 1);
	n = sk_X509_num(chain);
	for (i = 0; i < n && i < OBSERVE_MAX_CHAIN; i++) {
		if (i > 0)
			jsonl_add(b, ",", 1);
		observe_cert(b, sk_X509_value(chain, i), i);
	}
	jsonl_puts(b, "]}\n");
}

/* What makes two observations the same: host, port and the chain's pins. */
static void
observe_key(const char *host, uint16_t port, STACK_OF(X509) *chain,
    unsigned char key[OBSERVE_KEY_LEN])
{
	EVP_MD_CTX	*ctx;
	struct pin	 p;
	unsigned char	 pb[2];
	unsigned int	 len = OBSERVE_KEY_LEN;
	int		 i, n;

	memset(key, 0, OBSERVE_KEY_LEN);
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return;
	pb[0] = port >> 8;
	pb[1] = port & 0xff;
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, host, strlen(host) + 1);
	EVP_DigestUpdate(ctx, pb, sizeof(pb));
	n = sk_X509_num(chain);
	for (i = 0; i < n && i < OBSERVE_MAX_CHAIN; i++) {
		if (pin_from_cert(sk_X509_value(chain, i), &p))
			EVP_DigestUpdate(ctx, p.digest, sizeof(p.digest));
	}
	EVP_DigestFinal_ex(ctx, key, &len);
	EVP_MD_CTX_free(ctx);
}

/*
 * The slot for key in tab (of n): the one holding it, else a free one or
 * the oldest along its probe run. *found says whether key was there.
 */
static struct observe_seen *
observe_slot(struct observe_seen *tab, size_t n, const unsigned char *key,
    bool *found)
{
	struct observe_seen	*s, *victim = NULL;
	size_t			 start, i;

	start = ((size_t)key[0] << 8 | key[1]) % n;
	*found = false;
	for (i = 0; i < OBSERVE_DEDUP_PROBES; i++) {
		s = &tab[(start + i) % n];
		if (s->used && memcmp(s->key, key, OBSERVE_KEY_LEN) == 0) {
			*found = true;
			return s;
		}
		if (victim == NULL || (victim->used && (!s->used ||
		    s->when < victim->when)))
			victim = s;
	}
	return victim;
}

struct observe *
observe_open(const char *path, char *err, size_t errlen)
{
	struct jsonl_file	*out;
	struct observe		*o;

	if ((out = jsonl_open("observe_file", path, err, errlen)) == NULL)
		return NULL;
	o = xcalloc(1, sizeof(*o));
	o->out = out;
	return o;
}

bool
observe_reopen(struct observe *o, char *err, size_t errlen)
{
	return jsonl_reopen(o->out, err, errlen);
}

void
observe_close(struct observe *o)
{
	if (o == NULL)
		return;
	jsonl_close(o->out);
	free(o);
}

void
observe_discard(struct observe *o)
{
	if (o == NULL)
		return;
	jsonl_discard(o->out);
	free(o);
}

const char *
observe_path(const struct observe *o)
{
	return jsonl_path(o->out);
}

/* A host's domain: its last two labels, or the whole of an address. */
static const char *
observe_domain(const char *host)
{
	const char	*p, *last = NULL, *prev = NULL;

	if (strchr(host, ':') != NULL)
		return host;
	for (p = host; *p != '\0'; p++) {
		if (*p != '.')
			continue;
		prev = last;
		last = p;
	}
	/* An IPv4 address: all digits and dots. */
	if (strspn(host, "0123456789.") == strlen(host))
		return host;
	return prev != NULL ? prev + 1 : host;
}

/*
 * The slot counting the lines of host's domain today, when it may take
 * one more (a quarter of max, at least one); NULL when it may not (logged
 * once a day for the domain).
 */
static struct observe_seen *
observe_domain_room(struct observe *o, unsigned long max, const char *host,
    long long day, time_t now)
{
	struct observe_seen	*slot;
	struct logline		 l;
	unsigned char		 key[OBSERVE_KEY_LEN];
	unsigned int		 len = OBSERVE_KEY_LEN;
	unsigned long		 share = max / 4 > 0 ? max / 4 : 1;
	const char		*domain = observe_domain(host);
	char			 err[HOSTMATCH_NAME_MAX + 128];
	bool			 found;

	memset(key, 0, sizeof(key));
	EVP_Digest(domain, strlen(domain), key, &len, EVP_sha256(), NULL);
	slot = observe_slot(o->domains, OBSERVE_DOMAINS, key, &found);
	if (!found || slot->day != day) {
		memset(slot, 0, sizeof(*slot));
		slot->used = true;
		memcpy(slot->key, key, OBSERVE_KEY_LEN);
		slot->day = day;
	}
	slot->when = now;
	if (slot->lines < share)
		return slot;
	if (!slot->full) {
		slot->full = true;
		snprintf(err, sizeof(err), "%s: a quarter of observe_max (%lu "
		    "new lines a UTC day) reached for this domain: its further "
		    "hosts are left out until 00:00 UTC", domain, share);
		log_begin(&l, EV_REPORT_ERROR);
		log_str(&l, LK_FILE, jsonl_path(o->out));
		log_str(&l, LK_HOST, host);
		log_str(&l, LK_ERROR, err);
		log_end(&l);
	}
	return NULL;
}

bool
observe_chain(struct observe *o, unsigned long max, const char *host,
    uint16_t port, const char *client, STACK_OF(X509) *chain, time_t now)
{
	struct jsonl_buf	 b = { NULL, 0, 0 };
	struct observe_seen	*slot, *dom;
	unsigned char		 key[OBSERVE_KEY_LEN];
	char			 err[256];
	long long		 day;
	bool			 found, ok;

	if (o == NULL || chain == NULL || sk_X509_num(chain) == 0)
		return false;
	day = jsonl_day(now);
	observe_key(host, port, chain, key);
	slot = observe_slot(o->seen, OBSERVE_DEDUP_ENTRIES, key, &found);
	if ((found && slot->day == day) ||
	    !jsonl_room(o->out, "observe_max", max, now) ||
	    (dom = observe_domain_room(o, max, host, day, now)) == NULL)
		return false;
	observe_build(&b, host, port, client != NULL ? client : "", chain,
	    now);
	ok = jsonl_write(o->out, &b, err, sizeof(err));
	free(b.data);
	if (!ok) {
		jsonl_log_error(o->out, err, now);
		return false;
	}
	slot->used = true;
	memcpy(slot->key, key, OBSERVE_KEY_LEN);
	slot->day = day;
	slot->when = now;
	dom->lines++;
	return true;
}
