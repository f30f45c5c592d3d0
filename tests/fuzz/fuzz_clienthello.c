/*
 * libFuzzer target for the ClientHello parser: the input is what a client
 * sent so far. Besides memory safety it checks that a verdict reached on
 * some bytes never changes when more bytes arrive, that a parsed hello
 * lies within the bytes it claims, and that what it returns is well formed.
 */
#include "config.h"

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "clienthello.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A parsed hello: a printable SNI and an ALPN list in wire format. */
static void
fuzz_check_hello(const struct clienthello *ch, size_t size)
{
	size_t	 i, count = 0;

	assert(ch->consumed > 0 && ch->consumed <= size);
	assert(ch->sni_len <= CLIENTHELLO_SNI_MAX);
	assert(strlen(ch->sni) == ch->sni_len);
	assert((ch->alpn == NULL) == (ch->alpn_len == 0));
	for (i = 0; i < ch->alpn_len; i += 1 + ch->alpn[i]) {
		assert(ch->alpn[i] > 0);
		count++;
	}
	assert(i == ch->alpn_len && count == ch->alpn_count);
}

/* A verdict on the first len bytes must agree with the one on them all. */
static void
fuzz_check_prefix(const uint8_t *data, size_t len,
    enum clienthello_result full, const struct clienthello *fullch)
{
	struct clienthello	 ch;
	enum clienthello_result	 r;

	memset(&ch, 0xa5, sizeof(ch));
	r = clienthello_parse(data, len, &ch);
	if (r == CH_OK) {
		assert(full == CH_OK);
		assert(ch.consumed == fullch->consumed);
		assert(strcmp(ch.sni, fullch->sni) == 0);
		assert(ch.alpn_len == fullch->alpn_len);
		if (ch.alpn_len > 0)
			assert(memcmp(ch.alpn, fullch->alpn,
			    ch.alpn_len) == 0);
	} else {
		assert(ch.alpn == NULL && ch.sni_len == 0);
		assert(r == CH_NEED_MORE || r == full);
		if (full == CH_OK)
			assert(r == CH_NEED_MORE && len < fullch->consumed);
	}
	clienthello_clear(&ch);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct clienthello	 ch;
	enum clienthello_result	 r;

	/* The contract says out need not be initialised. */
	memset(&ch, 0xa5, sizeof(ch));
	r = clienthello_parse(data, size, &ch);
	assert(clienthello_result_name(r) != NULL);
	if (r == CH_OK) {
		fuzz_check_hello(&ch, size);
		fuzz_check_prefix(data, ch.consumed, r, &ch);
		fuzz_check_prefix(data, ch.consumed - 1, r, &ch);
	} else
		assert(ch.alpn == NULL && ch.sni_len == 0 && ch.sni[0] == '\0');
	if (size > 0) {
		fuzz_check_prefix(data, size / 2, r, &ch);
		fuzz_check_prefix(data, size - 1, r, &ch);
	}
	clienthello_clear(&ch);
	clienthello_clear(&ch);
	return 0;
}
