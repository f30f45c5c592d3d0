/*
 * Tests of the ClientHello parser: real hellos captured from openssl
 * s_client and curl (tests/data/clienthello), hellos built here to reach
 * every length field, and inputs that are not TLS at all.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clienthello.h"

#define ALPN_H2_HTTP11	"\x02h2\x08http/1.1"

/* A buffer that a hello is built into. */
struct buf {
	unsigned char	 b[65536];
	size_t		 len;
};

/* What build_hello() puts into a hello. */
struct hello_spec {
	const char	*sni;		/* NULL: no server_name extension */
	size_t		 sni_len;	/* 0: strlen(sni) */
	bool		 sni_twice;	/* two server_name extensions */
	bool		 sni_two_names;	/* two host_name entries in one */
	int		 sni_other_type; /* another type's entry: 1 before, 2 after */
	bool		 sni_trailing;	/* a byte after the server_name list */
	const char	*const *alpn;	/* NULL: no ALPN extension */
	size_t		 nalpn;
	bool		 alpn_twice;	/* two ALPN extensions */
	size_t		 key_share;	/* bytes of an opaque key share */
	size_t		 padding;	/* bytes of a padding extension */
	bool		 no_extensions;
};

/* The length fields of a built hello, for tampering. */
enum field {
	F_HS_LEN,		/* 3 bytes */
	F_SID_LEN,		/* 1 byte */
	F_CS_LEN,
	F_COMP_LEN,		/* 1 byte */
	F_EXT_LEN,
	F_SNI_EXT_LEN,
	F_SNI_LIST_LEN,
	F_SNI_NAME_LEN,
	F_ALPN_EXT_LEN,
	F_ALPN_LIST_LEN,
	F_ALPN_PROTO_LEN,	/* 1 byte */
	F_PAD_EXT_LEN,
	F__COUNT
};

/* Where each field is in a built hello; 0 when it is absent. */
struct hello_fields {
	size_t		 at[F__COUNT];
};

static void
put8(struct buf *b, unsigned int v)
{
	assert_true(b->len < sizeof(b->b));
	b->b[b->len++] = (unsigned char)v;
}

static void
put16(struct buf *b, unsigned int v)
{
	put8(b, v >> 8);
	put8(b, v & 0xff);
}

static void
putn(struct buf *b, const void *p, size_t n)
{
	assert_true(b->len + n <= sizeof(b->b));
	memcpy(b->b + b->len, p, n);
	b->len += n;
}

static void
putfill(struct buf *b, unsigned char c, size_t n)
{
	assert_true(b->len + n <= sizeof(b->b));
	memset(b->b + b->len, c, n);
	b->len += n;
}

/* Reserve a 2-byte length; end16() fills it with what followed. */
static size_t
begin16(struct buf *b)
{
	put16(b, 0);
	return b->len - 2;
}

static void
end16(struct buf *b, size_t at)
{
	size_t	 n = b->len - at - 2;

	b->b[at] = (unsigned char)(n >> 8);
	b->b[at + 1] = (unsigned char)n;
}

/* A server_name entry of type 1 (none is defined but host_name, 0). */
static void
build_sni_other(struct buf *m)
{
	put8(m, 1);
	put16(m, 14);
	putn(m, "pinned.example", 14);
}

static void
build_sni(struct buf *m, const struct hello_spec *s, struct hello_fields *f)
{
	size_t	 ext, list, len = s->sni_len != 0 ? s->sni_len :
	    strlen(s->sni);

	put16(m, 0);
	f->at[F_SNI_EXT_LEN] = ext = begin16(m);
	f->at[F_SNI_LIST_LEN] = list = begin16(m);
	if (s->sni_other_type == 1)
		build_sni_other(m);
	put8(m, 0);
	f->at[F_SNI_NAME_LEN] = m->len;
	put16(m, (unsigned int)len);
	putn(m, s->sni, len);
	if (s->sni_two_names) {
		put8(m, 0);
		put16(m, 5);
		putn(m, "other", 5);
	}
	if (s->sni_other_type == 2)
		build_sni_other(m);
	end16(m, list);
	if (s->sni_trailing)
		put8(m, 0);
	end16(m, ext);
}

static void
build_alpn(struct buf *m, const struct hello_spec *s, struct hello_fields *f)
{
	size_t	 ext, list, i, n;

	put16(m, 16);
	f->at[F_ALPN_EXT_LEN] = ext = begin16(m);
	f->at[F_ALPN_LIST_LEN] = list = begin16(m);
	for (i = 0; i < s->nalpn; i++) {
		n = strlen(s->alpn[i]);
		if (i == 0)
			f->at[F_ALPN_PROTO_LEN] = m->len;
		put8(m, (unsigned int)n);
		putn(m, s->alpn[i], n);
	}
	end16(m, list);
	end16(m, ext);
}

/* A handshake message (no record header) as described by s. */
static void
build_hello(struct buf *m, const struct hello_spec *s, struct hello_fields *f)
{
	size_t	 exts, ext, list, n;

	memset(f, 0, sizeof(*f));
	m->len = 0;
	put8(m, 1);
	f->at[F_HS_LEN] = m->len;
	put8(m, 0);
	put16(m, 0);
	put16(m, 0x0303);
	putfill(m, 0xaa, 32);
	f->at[F_SID_LEN] = m->len;
	put8(m, 32);
	putfill(m, 0xbb, 32);
	f->at[F_CS_LEN] = m->len;
	put16(m, 4);
	put16(m, 0x1301);
	put16(m, 0xc02f);
	f->at[F_COMP_LEN] = m->len;
	put8(m, 1);
	put8(m, 0);
	if (!s->no_extensions) {
		f->at[F_EXT_LEN] = exts = begin16(m);
		if (s->sni != NULL) {
			build_sni(m, s, f);
			if (s->sni_twice)
				build_sni(m, s, f);
		}
		if (s->alpn != NULL) {
			build_alpn(m, s, f);
			if (s->alpn_twice)
				build_alpn(m, s, f);
		}
		if (s->key_share > 0) {
			put16(m, 51);
			ext = begin16(m);
			list = begin16(m);
			put16(m, 0x6399);
			put16(m, (unsigned int)s->key_share);
			putfill(m, 0x5a, s->key_share);
			end16(m, list);
			end16(m, ext);
		}
		if (s->padding > 0) {
			put16(m, 21);
			f->at[F_PAD_EXT_LEN] = m->len;
			put16(m, (unsigned int)s->padding);
			putfill(m, 0, s->padding);
		}
		end16(m, exts);
	}
	n = m->len - 4;
	m->b[1] = (unsigned char)(n >> 16);
	m->b[2] = (unsigned char)(n >> 8);
	m->b[3] = (unsigned char)n;
}

/* Wrap msg into handshake records of at most frag bytes each. */
static void
wrap_records(struct buf *out, const struct buf *msg, size_t frag)
{
	size_t	 off, n;

	out->len = 0;
	for (off = 0; off < msg->len; off += n) {
		n = msg->len - off < frag ? msg->len - off : frag;
		put8(out, 22);
		put16(out, 0x0301);
		put16(out, (unsigned int)n);
		putn(out, msg->b + off, n);
	}
}

/* Build s into one record, in rec; f gets field offsets within rec. */
static void
build_record(struct buf *rec, const struct hello_spec *s,
    struct hello_fields *f)
{
	static struct buf	 msg;
	size_t			 i;

	build_hello(&msg, s, f);
	wrap_records(rec, &msg, 16384);
	for (i = 0; i < F__COUNT; i++) {
		if (f->at[i] != 0)
			f->at[i] += 5;
	}
}

/*
 * Parse a private, exactly sized copy of data, so that the sanitizer sees
 * any read past the end.
 */
static enum clienthello_result
parse_copy(const void *data, size_t len, struct clienthello *ch)
{
	enum clienthello_result	 r;
	void			*copy;

	copy = malloc(len > 0 ? len : 1);
	assert_non_null(copy);
	memcpy(copy, data, len);
	r = clienthello_parse(copy, len, ch);
	free(copy);
	return r;
}

/* A fixture from tests/data/clienthello. */
static unsigned char *
load_fixture(const char *name, size_t *len)
{
	const char	*top;
	char		 path[4096];
	unsigned char	*data;
	FILE		*fp;
	long		 size;

	if ((top = getenv("top_srcdir")) == NULL)
		top = "..";
	snprintf(path, sizeof(path), "%s/tests/data/clienthello/%s", top,
	    name);
	fp = fopen(path, "rb");
	if (fp == NULL)
		fail_msg("cannot open %s (set top_srcdir)", path);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	size = ftell(fp);
	assert_true(size > 0);
	rewind(fp);
	data = malloc((size_t)size);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, (size_t)size, fp), (size_t)size);
	fclose(fp);
	*len = (size_t)size;
	return data;
}

static void
assert_every_prefix_needs_more(const unsigned char *data, size_t len)
{
	struct clienthello	 ch;
	size_t			 i;

	for (i = 0; i < len; i++) {
		if (parse_copy(data, i, &ch) != CH_NEED_MORE)
			fail_msg("prefix of %zu of %zu bytes: not need_more",
			    i, len);
		/* The bytes still needed: more than there are, never more
		 * than the whole hello. */
		if (ch.need <= i || ch.need > len)
			fail_msg("prefix of %zu of %zu bytes: need %zu", i,
			    len, ch.need);
	}
	assert_int_equal(parse_copy(data, len, &ch), CH_OK);
	assert_int_equal(ch.consumed, len);
	clienthello_clear(&ch);
}

static void
test_clienthello_extracts_sni_and_alpn_from_openssl_hello(void **state)
{
	struct clienthello	 ch;
	unsigned char		*data;
	size_t			 len;

	data = load_fixture("openssl_sni_alpn.bin", &len);
	assert_int_equal(parse_copy(data, len, &ch), CH_OK);
	assert_string_equal(ch.sni, "api.test");
	assert_int_equal(ch.sni_len, 8);
	assert_int_equal(ch.alpn_count, 2);
	assert_int_equal(ch.alpn_len, sizeof(ALPN_H2_HTTP11) - 1);
	assert_memory_equal(ch.alpn, ALPN_H2_HTTP11, ch.alpn_len);
	assert_int_equal(ch.legacy_version, 0x0303);
	assert_int_equal(ch.consumed, len);
	clienthello_clear(&ch);
	assert_null(ch.alpn);
	free(data);
}

static void
test_clienthello_extracts_sni_and_alpn_from_curl_hello(void **state)
{
	struct clienthello	 ch;
	unsigned char		*data;
	size_t			 len;

	data = load_fixture("curl_h2.bin", &len);
	assert_true(len > 512);
	assert_int_equal(parse_copy(data, len, &ch), CH_OK);
	assert_string_equal(ch.sni, "api.test");
	assert_int_equal(ch.alpn_count, 2);
	assert_memory_equal(ch.alpn, ALPN_H2_HTTP11, ch.alpn_len);
	assert_int_equal(ch.consumed, len);
	clienthello_clear(&ch);
	free(data);
}

static void
test_clienthello_reports_no_sni_when_the_client_sends_none(void **state)
{
	struct clienthello	 ch;
	unsigned char		*data;
	size_t			 len;

	data = load_fixture("openssl_no_sni.bin", &len);
	assert_int_equal(parse_copy(data, len, &ch), CH_OK);
	assert_int_equal(ch.sni_len, 0);
	assert_string_equal(ch.sni, "");
	assert_null(ch.alpn);
	assert_int_equal(ch.alpn_count, 0);
	clienthello_clear(&ch);
	free(data);
}

static void
test_clienthello_needs_more_for_every_prefix_of_real_hellos(void **state)
{
	static const char *const names[] = {
		"openssl_sni_alpn.bin", "openssl_no_sni.bin", "curl_h2.bin",
		"openssl_split_records.bin"
	};
	unsigned char	*data;
	size_t		 len, i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		data = load_fixture(names[i], &len);
		assert_every_prefix_needs_more(data, len);
		free(data);
	}
}

static void
test_clienthello_gathers_a_real_hello_sent_in_three_records(void **state)
{
	struct clienthello	 ch;
	unsigned char		*data;
	size_t			 len;

	data = load_fixture("openssl_split_records.bin", &len);
	/* The capture really is three records: 512 + 512 + 389 bytes. */
	assert_int_equal(len, 3 * 5 + 512 + 512 + 389);
	assert_int_equal(data[5 + 512], 22);
	assert_int_equal(parse_copy(data, len, &ch), CH_OK);
	assert_string_equal(ch.sni, "split.api.test");
	assert_int_equal(ch.alpn_count, 42);
	assert_memory_equal(ch.alpn, ALPN_H2_HTTP11, 12);
	assert_int_equal(ch.consumed, len);
	clienthello_clear(&ch);
	free(data);
}

static void
test_clienthello_leaves_bytes_after_the_hello_alone(void **state)
{
	static const unsigned char ccs[] = { 20, 3, 3, 0, 1, 1 };
	struct clienthello	 ch;
	unsigned char		*data, *more;
	size_t			 len;

	data = load_fixture("curl_h2.bin", &len);
	more = malloc(len + sizeof(ccs));
	assert_non_null(more);
	memcpy(more, data, len);
	memcpy(more + len, ccs, sizeof(ccs));
	assert_int_equal(parse_copy(more, len + sizeof(ccs), &ch), CH_OK);
	assert_int_equal(ch.consumed, len);
	clienthello_clear(&ch);
	free(more);
	free(data);
}

static void
test_clienthello_parses_a_large_hello_split_into_two_records(void **state)
{
	static const char *const alpn[] = { "h2", "http/1.1" };
	static struct buf	 msg, rec;
	struct hello_spec	 s = { .sni = "big.example.com", .alpn = alpn,
				    .nalpn = 2, .key_share = 1216,
				    .padding = 300 };
	struct hello_fields	 f;
	struct clienthello	 ch;

	build_hello(&msg, &s, &f);
	assert_true(msg.len > 1500);
	wrap_records(&rec, &msg, 1000);
	assert_int_equal(rec.len, msg.len + 10);
	assert_every_prefix_needs_more(rec.b, rec.len);
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_OK);
	assert_string_equal(ch.sni, "big.example.com");
	assert_int_equal(ch.alpn_count, 2);
	clienthello_clear(&ch);
}

static void
test_clienthello_accepts_a_header_split_across_records(void **state)
{
	static struct buf	 msg, rec;
	struct hello_spec	 s = { .sni = "tiny.example" };
	struct hello_fields	 f;
	struct clienthello	 ch;
	size_t			 frag;

	build_hello(&msg, &s, &f);
	for (frag = 1; frag <= 5; frag++) {
		wrap_records(&rec, &msg, frag);
		assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_OK);
		assert_string_equal(ch.sni, "tiny.example");
		clienthello_clear(&ch);
	}
}

static void
test_clienthello_accepts_a_hello_without_extensions(void **state)
{
	static struct buf	 rec;
	struct hello_spec	 s = { .no_extensions = true };
	struct hello_fields	 f;
	struct clienthello	 ch;

	build_record(&rec, &s, &f);
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_OK);
	assert_int_equal(ch.sni_len, 0);
	assert_null(ch.alpn);
	clienthello_clear(&ch);
}

static void
test_clienthello_rejects_plain_http_from_the_first_byte(void **state)
{
	static const char	 get[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	struct clienthello	 ch;

	assert_int_equal(parse_copy(get, 1, &ch), CH_NOT_TLS);
	assert_int_equal(parse_copy(get, sizeof(get) - 1, &ch), CH_NOT_TLS);
	assert_int_equal(parse_copy("CONNECT a:443 HTTP/1.1\r\n", 24, &ch),
	    CH_NOT_TLS);
}

static void
test_clienthello_rejects_an_sslv2_hello_as_not_tls(void **state)
{
	static const unsigned char v2[] = {
		0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00,
		0x10, 0x01, 0x00, 0x80
	};
	struct clienthello	 ch;

	assert_int_equal(parse_copy(v2, 1, &ch), CH_NOT_TLS);
	assert_int_equal(parse_copy(v2, sizeof(v2), &ch), CH_NOT_TLS);
}

/*
 * Servers ignore the record version, or check little of it (OpenSSL's
 * its major 3, Go's below 0x1000, Java's from 3.0 up): a hello under any
 * version is read, so that its SNI is judged, never tunnelled blind.
 */
static void
test_clienthello_reads_a_hello_under_any_record_version(void **state)
{
	static const unsigned char versions[][2] = {
		{ 3, 5 }, { 3, 0xff }, { 2, 0 }, { 0, 0 }, { 0x0f, 0xff },
		{ 0x10, 3 }, { 0xff, 0xff }
	};
	struct clienthello	 ch;
	unsigned char		*data;
	size_t			 len, i;

	data = load_fixture("openssl_sni_alpn.bin", &len);
	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		data[1] = versions[i][0];
		data[2] = versions[i][1];
		assert_int_equal(parse_copy(data, 3, &ch), CH_NEED_MORE);
		assert_int_equal(parse_copy(data, len, &ch), CH_OK);
		assert_true(ch.sni_len > 0);
		clienthello_clear(&ch);
	}
	free(data);
}

/*
 * A TLS record of another type first (an alert, which a server may skip
 * before the hello, a ChangeCipherSpec, data) is malformed, never "not
 * TLS": a CONNECT by address tunnels what is not TLS blind.
 */
static void
test_clienthello_refuses_another_record_type_first(void **state)
{
	static const unsigned char alert[] = { 21, 3, 3, 0, 2, 1, 0 };
	static const unsigned char ccs[] = { 20, 3, 1, 0, 1, 1 };
	static const unsigned char data[] = { 23, 3, 3, 0, 1, 0 };
	static const unsigned char beat[] = { 24, 3, 3, 0, 1, 0 };
	static const unsigned char other[] = { 25, 3 };
	struct clienthello	 ch;

	assert_int_equal(parse_copy(alert, 1, &ch), CH_MALFORMED);
	assert_int_equal(parse_copy(alert, sizeof(alert), &ch),
	    CH_MALFORMED);
	assert_int_equal(parse_copy(ccs, sizeof(ccs), &ch), CH_MALFORMED);
	assert_int_equal(parse_copy(data, sizeof(data), &ch), CH_MALFORMED);
	assert_int_equal(parse_copy(beat, sizeof(beat), &ch), CH_MALFORMED);
	assert_int_equal(parse_copy(other, sizeof(other), &ch), CH_NOT_TLS);
}

static void
test_clienthello_needs_more_for_empty_input(void **state)
{
	struct clienthello	 ch;

	assert_int_equal(clienthello_parse("", 0, &ch), CH_NEED_MORE);
}

static void
test_clienthello_rejects_a_handshake_other_than_a_hello(void **state)
{
	static const unsigned char sh[] = { 22, 3, 3, 0, 10, 2, 0, 0, 6 };
	struct clienthello	 ch;

	assert_int_equal(parse_copy(sh, sizeof(sh), &ch), CH_MALFORMED);
}

static void
test_clienthello_rejects_an_empty_record(void **state)
{
	static const unsigned char empty[] = { 22, 3, 1, 0, 0, 1 };
	struct clienthello	 ch;

	assert_int_equal(parse_copy(empty, sizeof(empty), &ch), CH_MALFORMED);
}

static void
test_clienthello_rejects_a_message_over_16_kib_at_once(void **state)
{
	static const unsigned char big[] = { 22, 3, 1, 0x40, 0, 1, 0, 0x40, 1 };
	struct clienthello	 ch;

	assert_int_equal(parse_copy(big, sizeof(big), &ch), CH_TOO_LARGE);
}

/*
 * A hello that arrives a byte at a time, in records of frag bytes: a
 * caller that parses again only once the input reaches what the last
 * parse said it needs gets there in a few dozen parses, not one a byte.
 */
static size_t
parses_of_a_drip(size_t frag)
{
	static struct buf	 msg, rec;
	struct hello_spec	 s = { .sni = "drip.example", .padding = 2000 };
	struct hello_fields	 f;
	struct clienthello	 ch;
	enum clienthello_result	 r = CH_NEED_MORE;
	size_t			 len, need = 0, parses = 0;

	build_hello(&msg, &s, &f);
	wrap_records(&rec, &msg, frag);
	assert_true(rec.len <= CLIENTHELLO_MAX_INPUT);
	for (len = 1; len <= rec.len && r == CH_NEED_MORE; len++) {
		if (len < need)
			continue;
		parses++;
		r = parse_copy(rec.b, len, &ch);
		need = ch.need;
	}
	assert_int_equal(r, CH_OK);
	assert_int_equal(len - 1, rec.len);
	clienthello_clear(&ch);
	return parses;
}

static void
test_clienthello_says_how_much_a_dripping_hello_still_needs(void **state)
{
	(void)state;
	/* One byte a record: six input bytes a byte of the hello. */
	assert_true(parses_of_a_drip(1) <= 64);
	assert_true(parses_of_a_drip(7) <= 64);
	/* One record: its length is known from its header on. */
	assert_true(parses_of_a_drip(16384) <= 8);
}

static void
test_clienthello_rejects_a_hello_in_too_many_tiny_records(void **state)
{
	static struct buf	 msg, rec;
	struct hello_spec	 s = { .sni = "a.example", .padding = 4000 };
	struct hello_fields	 f;
	struct clienthello	 ch;

	build_hello(&msg, &s, &f);
	assert_true(msg.len < CLIENTHELLO_MAX_MESSAGE);
	wrap_records(&rec, &msg, 1);
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_TOO_LARGE);
}

static void
test_clienthello_rejects_every_length_field_set_to_ffff(void **state)
{
	static const char *const alpn[] = { "h2", "http/1.1" };
	static struct buf	 rec;
	struct hello_spec	 s = { .sni = "api.example.com", .alpn = alpn,
				    .nalpn = 2, .padding = 16 };
	struct hello_fields	 f;
	struct clienthello	 ch;
	size_t			 i, at, hslen;

	build_record(&rec, &s, &f);
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_OK);
	clienthello_clear(&ch);

	for (i = F_SID_LEN; i < F__COUNT; i++) {
		build_record(&rec, &s, &f);
		at = f.at[i];
		assert_true(at != 0);
		rec.b[at] = 0xff;
		if (i != F_SID_LEN && i != F_COMP_LEN && i != F_ALPN_PROTO_LEN)
			rec.b[at + 1] = 0xff;
		if (parse_copy(rec.b, rec.len, &ch) != CH_MALFORMED)
			fail_msg("length field %zu at %zu: not malformed", i,
			    at);
	}

	/* The record length, past the 16 KiB a record may carry. */
	build_record(&rec, &s, &f);
	rec.b[3] = 0xff;
	rec.b[4] = 0xff;
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_MALFORMED);

	/* The message length: too large, or longer or shorter than sent. */
	build_record(&rec, &s, &f);
	at = f.at[F_HS_LEN];
	hslen = (size_t)rec.b[at + 1] << 8 | rec.b[at + 2];
	rec.b[at + 1] = 0xff;
	rec.b[at + 2] = 0xff;
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_TOO_LARGE);
	rec.b[at + 1] = (unsigned char)((hslen + 1) >> 8);
	rec.b[at + 2] = (unsigned char)(hslen + 1);
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_NEED_MORE);
	rec.b[at + 1] = (unsigned char)((hslen - 1) >> 8);
	rec.b[at + 2] = (unsigned char)(hslen - 1);
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_MALFORMED);
}

static void
test_clienthello_rejects_an_extension_longer_than_the_hello(void **state)
{
	static struct buf	 rec;
	struct hello_spec	 s = { .sni = "api.example.com", .padding = 8 };
	struct hello_fields	 f;
	struct clienthello	 ch;

	build_record(&rec, &s, &f);
	rec.b[f.at[F_PAD_EXT_LEN] + 1]++;
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_MALFORMED);
	build_record(&rec, &s, &f);
	rec.b[f.at[F_EXT_LEN] + 1]--;
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_MALFORMED);
}

static void
test_clienthello_rejects_bytes_after_the_extensions(void **state)
{
	static struct buf	 msg, rec;
	struct hello_spec	 s = { .sni = "a.example" };
	struct hello_fields	 f;
	struct clienthello	 ch;

	build_hello(&msg, &s, &f);
	msg.b[msg.len++] = 0;
	msg.b[3]++;
	wrap_records(&rec, &msg, 16384);
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_MALFORMED);
}

static void
test_clienthello_rejects_an_sni_with_a_zero_length_name(void **state)
{
	static struct buf	 rec;
	struct hello_spec	 s = { .sni = "", .sni_len = 0 };
	struct hello_fields	 f;
	struct clienthello	 ch;

	build_record(&rec, &s, &f);
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_MALFORMED);
}

static void
test_clienthello_rejects_bytes_after_the_server_name_list(void **state)
{
	static struct buf	 rec;
	struct hello_spec	 s = { .sni = "a.example",
				    .sni_trailing = true };
	struct hello_fields	 f;
	struct clienthello	 ch;

	build_record(&rec, &s, &f);
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_MALFORMED);
}

static void
test_clienthello_rejects_a_duplicate_sni_extension(void **state)
{
	static struct buf	 rec;
	struct hello_spec	 s = { .sni = "a.example", .sni_twice = true };
	struct hello_fields	 f;
	struct clienthello	 ch;

	build_record(&rec, &s, &f);
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_MALFORMED);
}

static void
test_clienthello_rejects_a_duplicate_alpn_extension(void **state)
{
	static const char *const alpn[] = { "h2" };
	static struct buf	 rec;
	struct hello_spec	 s = { .alpn = alpn, .nalpn = 1,
				    .alpn_twice = true };
	struct hello_fields	 f;
	struct clienthello	 ch;

	build_record(&rec, &s, &f);
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_MALFORMED);
}

static void
test_clienthello_rejects_two_host_names_in_one_sni(void **state)
{
	static struct buf	 rec;
	struct hello_spec	 s = { .sni = "a.example",
				    .sni_two_names = true };
	struct hello_fields	 f;
	struct clienthello	 ch;

	build_record(&rec, &s, &f);
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_MALFORMED);
}

/*
 * An entry of another type than host_name, before or after it: a server
 * that took the first entry whatever its type would serve a name the
 * proxy never judged.
 */
static void
test_clienthello_rejects_an_sni_entry_of_another_type(void **state)
{
	static struct buf	 rec;
	struct hello_spec	 s = { .sni = "a.example" };
	struct hello_fields	 f;
	struct clienthello	 ch;
	int			 where;

	for (where = 1; where <= 2; where++) {
		s.sni_other_type = where;
		build_record(&rec, &s, &f);
		assert_int_equal(parse_copy(rec.b, rec.len, &ch),
		    CH_MALFORMED);
	}
	s.sni_other_type = 0;
	build_record(&rec, &s, &f);
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_OK);
	assert_string_equal(ch.sni, "a.example");
}

static void
test_clienthello_rejects_nul_and_control_bytes_in_the_sni(void **state)
{
	static const char *const bad[] = {
		"api.example.com\0evil.com", "api\nexample", "api example",
		"api\x7f", "\xc3\xa9t\xc3\xa9"
	};
	static const size_t	 badlen[] = { 24, 11, 11, 4, 6 };
	static struct buf	 rec;
	struct hello_spec	 s = { 0 };
	struct hello_fields	 f;
	struct clienthello	 ch;
	size_t			 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s.sni = bad[i];
		s.sni_len = badlen[i];
		build_record(&rec, &s, &f);
		if (parse_copy(rec.b, rec.len, &ch) != CH_MALFORMED)
			fail_msg("SNI %zu accepted", i);
	}
}

static void
test_clienthello_rejects_an_sni_longer_than_255_bytes(void **state)
{
	static struct buf	 rec;
	char			 name[300];
	struct hello_spec	 s = { .sni = name };
	struct hello_fields	 f;
	struct clienthello	 ch;

	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	build_record(&rec, &s, &f);
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_MALFORMED);
	name[255] = '\0';
	build_record(&rec, &s, &f);
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_OK);
	assert_int_equal(ch.sni_len, 255);
	clienthello_clear(&ch);
}

static void
test_clienthello_rejects_an_empty_alpn_protocol(void **state)
{
	static const char *const alpn[] = { "h2", "" };
	static struct buf	 rec;
	struct hello_spec	 s = { .alpn = alpn, .nalpn = 2 };
	struct hello_fields	 f;
	struct clienthello	 ch;

	build_record(&rec, &s, &f);
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_MALFORMED);
}

static void
test_clienthello_rejects_bytes_after_the_hello_in_its_record(void **state)
{
	static struct buf	 rec;
	struct hello_spec	 s = { .sni = "a.example" };
	struct hello_fields	 f;
	struct clienthello	 ch;

	build_record(&rec, &s, &f);
	rec.b[rec.len++] = 0;
	rec.b[4]++;
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_MALFORMED);
}

static void
test_clienthello_rejects_another_record_type_mid_hello(void **state)
{
	static struct buf	 msg, rec;
	struct hello_spec	 s = { .sni = "a.example" };
	struct hello_fields	 f;
	struct clienthello	 ch;

	build_hello(&msg, &s, &f);
	wrap_records(&rec, &msg, 20);
	rec.b[25] = 21;
	assert_int_equal(parse_copy(rec.b, rec.len, &ch), CH_MALFORMED);
}

static void
test_clienthello_survives_every_byte_of_real_hellos_flipped(void **state)
{
	static const char *const names[] = {
		"openssl_sni_alpn.bin", "curl_h2.bin",
		"openssl_split_records.bin"
	};
	static const unsigned char flips[] = { 0xff, 0x80, 0x01 };
	struct clienthello	 ch;
	unsigned char		*data;
	size_t			 len, i, j, k;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		data = load_fixture(names[i], &len);
		for (j = 0; j < len; j++) {
			for (k = 0; k < sizeof(flips); k++) {
				data[j] ^= flips[k];
				if (parse_copy(data, len, &ch) == CH_OK) {
					assert_true(ch.consumed <= len);
					assert_int_equal(strlen(ch.sni),
					    ch.sni_len);
					clienthello_clear(&ch);
				}
				data[j] ^= flips[k];
			}
		}
		free(data);
	}
}

static void
test_clienthello_names_every_result(void **state)
{
	assert_string_equal(clienthello_result_name(CH_NEED_MORE),
	    "need_more");
	assert_string_equal(clienthello_result_name(CH_OK), "ok");
	assert_string_equal(clienthello_result_name(CH_NOT_TLS), "not_tls");
	assert_string_equal(clienthello_result_name(CH_MALFORMED),
	    "malformed");
	assert_string_equal(clienthello_result_name(CH_TOO_LARGE),
	    "too_large");
}

#define T(f)	cmocka_unit_test(f)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_clienthello_extracts_sni_and_alpn_from_openssl_hello),
		T(test_clienthello_extracts_sni_and_alpn_from_curl_hello),
		T(test_clienthello_reports_no_sni_when_the_client_sends_none),
		T(test_clienthello_needs_more_for_every_prefix_of_real_hellos),
		T(test_clienthello_gathers_a_real_hello_sent_in_three_records),
		T(test_clienthello_leaves_bytes_after_the_hello_alone),
		T(test_clienthello_parses_a_large_hello_split_into_two_records),
		T(test_clienthello_accepts_a_header_split_across_records),
		T(test_clienthello_accepts_a_hello_without_extensions),
		T(test_clienthello_rejects_plain_http_from_the_first_byte),
		T(test_clienthello_rejects_an_sslv2_hello_as_not_tls),
		T(test_clienthello_reads_a_hello_under_any_record_version),
		T(test_clienthello_refuses_another_record_type_first),
		T(test_clienthello_needs_more_for_empty_input),
		T(test_clienthello_rejects_a_handshake_other_than_a_hello),
		T(test_clienthello_rejects_an_empty_record),
		T(test_clienthello_rejects_a_message_over_16_kib_at_once),
		T(test_clienthello_rejects_a_hello_in_too_many_tiny_records),
		T(test_clienthello_says_how_much_a_dripping_hello_still_needs),
		T(test_clienthello_rejects_every_length_field_set_to_ffff),
		T(test_clienthello_rejects_an_extension_longer_than_the_hello),
		T(test_clienthello_rejects_bytes_after_the_extensions),
		T(test_clienthello_rejects_an_sni_with_a_zero_length_name),
		T(test_clienthello_rejects_bytes_after_the_server_name_list),
		T(test_clienthello_rejects_a_duplicate_sni_extension),
		T(test_clienthello_rejects_a_duplicate_alpn_extension),
		T(test_clienthello_rejects_two_host_names_in_one_sni),
		T(test_clienthello_rejects_an_sni_entry_of_another_type),
		T(test_clienthello_rejects_nul_and_control_bytes_in_the_sni),
		T(test_clienthello_rejects_an_sni_longer_than_255_bytes),
		T(test_clienthello_rejects_an_empty_alpn_protocol),
		T(test_clienthello_rejects_bytes_after_the_hello_in_its_record),
		T(test_clienthello_rejects_another_record_type_mid_hello),
		T(test_clienthello_survives_every_byte_of_real_hellos_flipped),
		T(test_clienthello_names_every_result),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
