/*
 * SPKI pins: a strict parser for "sha256/BASE64" and pin-sha256="BASE64"
 * with the optional scopes leaf: and ca:, formatting, the SHA-256 of a
 * certificate's DER SubjectPublicKeyInfo, and constant-time comparison.
 */
#include "config.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pin.h"

/* 32 bytes take 43 base64 characters and one '=' of padding. */
#define PIN_B64_LEN	44

static const char pin_prefix[] = "sha256/";
static const char pin_rfc_prefix[] = "pin-sha256=";

static const char *const pin_scope_names[] = {
	[PIN_SCOPE_ANY] =	"any",
	[PIN_SCOPE_LEAF] =	"leaf",
	[PIN_SCOPE_CA] =	"ca",
};

/* The value of a base64 character, or -1 for anything else. */
static int
pin_b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Describe a character for an error message without breaking the line. */
static void
pin_describe_char(unsigned char c, char *buf, size_t len)
{
	if (c >= 0x21 && c <= 0x7e)
		snprintf(buf, len, "'%c'", c);
	else
		snprintf(buf, len, "byte 0x%02x", c);
}

/*
 * Decode exactly len characters of padded standard base64 into a 32-byte
 * digest. The two spare bits of the last group are ignored, as RFC 4648
 * decoders do: SPEC's own sample pin "sha256/BBBB...B=" sets them.
 */
static bool
pin_decode(const char *s, size_t len, struct pin *out, char *err,
    size_t errlen)
{
	unsigned char	 digest[PIN_DIGEST_LEN];
	char		 what[16];
	size_t		 i, npad, ndata, nbytes, o;
	unsigned long	 acc;
	int		 v;

	npad = 0;
	for (i = 0; i < len; i++) {
		if (s[i] == '=') {
			npad++;
			continue;
		}
		if (pin_b64_value((unsigned char)s[i]) < 0) {
			pin_describe_char((unsigned char)s[i], what,
			    sizeof(what));
			snprintf(err, errlen, "bad base64 character %s", what);
			return false;
		}
		if (npad > 0) {
			snprintf(err, errlen, "bad base64: '=' padding in "
			    "the middle of the digest");
			return false;
		}
	}
	if (len == 0) {
		snprintf(err, errlen, "empty digest");
		return false;
	}
	if (len % 4 != 0 || npad > 2) {
		snprintf(err, errlen, "bad base64: %zu characters is not a "
		    "padded encoding (missing or extra '=' padding?)", len);
		return false;
	}
	ndata = len - npad;
	nbytes = len / 4 * 3 - npad;
	if (nbytes != PIN_DIGEST_LEN) {
		snprintf(err, errlen, "digest is %zu bytes, a SHA-256 pin has "
		    "%d", nbytes, PIN_DIGEST_LEN);
		return false;
	}

	acc = 0;
	o = 0;
	for (i = 0; i < ndata; i++) {
		v = pin_b64_value((unsigned char)s[i]);
		acc = (acc << 6) | (unsigned long)v;
		if (i % 4 == 3) {
			digest[o++] = (acc >> 16) & 0xff;
			digest[o++] = (acc >> 8) & 0xff;
			digest[o++] = acc & 0xff;
			acc = 0;
		}
	}
	/* The last group holds 3 characters for 2 bytes: 2 bits are spare. */
	digest[o++] = (acc >> 10) & 0xff;
	digest[o++] = (acc >> 2) & 0xff;

	memcpy(out->digest, digest, PIN_DIGEST_LEN);
	return true;
}

/* Explain a pin whose algorithm is not sha256, whatever its form. */
static void
pin_bad_algorithm(const char *text, char *err, size_t errlen)
{
	static const char	 alnum[] = "abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	const char		*alg;
	size_t			 n;

	if (strncasecmp(text, "leaf:", 5) == 0 ||
	    strncasecmp(text, "ca:", 3) == 0) {
		snprintf(err, errlen, "a scope (leaf: or ca:) is allowed only "
		    "on a pin line");
		return;
	}
	if (strncasecmp(text, "sha1/", 5) == 0 ||
	    strncasecmp(text, "pin-sha1=", 9) == 0) {
		snprintf(err, errlen, "SHA-1 pins are not accepted; use "
		    "sha256/");
		return;
	}
	alg = strncasecmp(text, "pin-", 4) == 0 ? text + 4 : text;
	n = strspn(alg, alnum);
	if (n > 0 && n < 16 && alg[n] == (alg == text ? '/' : '=')) {
		snprintf(err, errlen, "unsupported pin algorithm '%.*s'; use "
		    "sha256/", (int)n, alg);
		return;
	}
	snprintf(err, errlen, "a pin must look like sha256/BASE64 or "
	    "pin-sha256=\"BASE64\"");
}

bool
pin_parse(const char *text, struct pin *out, char *err, size_t errlen)
{
	const char	*b64, *end;
	size_t		 len;

	if (strncasecmp(text, pin_prefix, sizeof(pin_prefix) - 1) == 0) {
		b64 = text + sizeof(pin_prefix) - 1;
		len = strlen(b64);
	} else if (strncasecmp(text, pin_rfc_prefix,
	    sizeof(pin_rfc_prefix) - 1) == 0) {
		b64 = text + sizeof(pin_rfc_prefix) - 1;
		if (*b64 != '"') {
			snprintf(err, errlen, "the digest of pin-sha256= "
			    "must be in double quotes");
			return false;
		}
		b64++;
		end = strchr(b64, '"');
		if (end == NULL) {
			snprintf(err, errlen, "missing closing quote after "
			    "the digest");
			return false;
		}
		if (end[1] != '\0') {
			snprintf(err, errlen, "trailing characters after "
			    "the pin");
			return false;
		}
		len = (size_t)(end - b64);
	} else {
		pin_bad_algorithm(text, err, errlen);
		return false;
	}

	out->scope = PIN_SCOPE_ANY;
	/* A valid digest followed by anything is junk, not a bad digest. */
	if (len > PIN_B64_LEN &&
	    pin_decode(b64, PIN_B64_LEN, out, err, errlen)) {
		snprintf(err, errlen, "trailing characters after the pin");
		return false;
	}
	return pin_decode(b64, len, out, err, errlen);
}

bool
pin_parse_scoped(const char *text, struct pin *out, char *err, size_t errlen)
{
	enum pin_scope	 scope;
	size_t		 n;

	for (scope = PIN_SCOPE_LEAF; scope <= PIN_SCOPE_CA; scope++) {
		n = strlen(pin_scope_names[scope]);
		if (strncasecmp(text, pin_scope_names[scope], n) == 0 &&
		    text[n] == ':') {
			if (!pin_parse(text + n + 1, out, err, errlen))
				return false;
			out->scope = scope;
			return true;
		}
	}
	return pin_parse(text, out, err, errlen);
}

bool
pin_scope_allows(enum pin_scope scope, size_t depth)
{
	switch (scope) {
	case PIN_SCOPE_LEAF:
		return depth == 0;
	case PIN_SCOPE_CA:
		return depth >= 1;
	case PIN_SCOPE_ANY:
		break;
	}
	return true;
}

const char *
pin_scope_name(enum pin_scope scope)
{
	if ((size_t)scope >= sizeof(pin_scope_names) /
	    sizeof(pin_scope_names[0]))
		return "unknown";
	return pin_scope_names[scope];
}

void
pin_format(const struct pin *p, char *buf, size_t len)
{
	unsigned char	 b64[PIN_B64_LEN + 1];

	EVP_EncodeBlock(b64, p->digest, PIN_DIGEST_LEN);
	snprintf(buf, len, "%s%s", pin_prefix, (const char *)b64);
}

void
pin_format_scoped(const struct pin *p, char *buf, size_t len)
{
	char	 pin[PIN_TEXT_MAX];

	pin_format(p, pin, sizeof(pin));
	if (p->scope == PIN_SCOPE_ANY)
		snprintf(buf, len, "%s", pin);
	else
		snprintf(buf, len, "%s:%s", pin_scope_name(p->scope), pin);
}

bool
pin_from_cert(X509 *cert, struct pin *out)
{
	X509_PUBKEY	*pub;
	unsigned char	*der;
	unsigned int	 mdlen;
	int		 len;
	bool		 ok;

	if (cert == NULL || (pub = X509_get_X509_PUBKEY(cert)) == NULL)
		return false;
	der = NULL;
	if ((len = i2d_X509_PUBKEY(pub, &der)) <= 0)
		return false;
	out->scope = PIN_SCOPE_ANY;
	ok = EVP_Digest(der, (size_t)len, out->digest, &mdlen, EVP_sha256(),
	    NULL) == 1 && mdlen == PIN_DIGEST_LEN;
	OPENSSL_free(der);
	return ok;
}

bool
pin_equal(const struct pin *a, const struct pin *b)
{
	return CRYPTO_memcmp(a->digest, b->digest, PIN_DIGEST_LEN) == 0;
}

int
pin_cmp(const void *a, const void *b)
{
	return memcmp(((const struct pin *)a)->digest,
	    ((const struct pin *)b)->digest, PIN_DIGEST_LEN);
}
