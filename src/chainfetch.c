/*
 * A blocking TLS client for pinproxy-pin: dial the host (or connect_to),
 * complete a handshake within the timeout without failing on a bad chain,
 * and hand back the chain OpenSSL verified and the chain the server sent.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chainfetch.h"
#include "conf_value.h"
#include "hostmatch.h"
#include "resolve.h"
#include "trust.h"
#include "xmalloc.h"

/* The text of a host and port, "[::1]:443" for an IPv6 literal. */
#define CHAINFETCH_TARGET_MAX	(256 + 8)

static long long
chainfetch_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until deadline; 1 ready, 0 timed out, -1 error. */
static int
chainfetch_wait(int fd, short events, long long deadline)
{
	struct pollfd	 pfd;
	long long	 left;
	int		 n;

	for (;;) {
		left = deadline - chainfetch_now_ms();
		if (left <= 0)
			return 0;
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, (int)left);
		if (n == -1 && errno == EINTR)
			continue;
		return n > 0 ? 1 : n;
	}
}

/*
 * Connect a non-blocking socket to one address before deadline. Returns
 * the socket, or -1 with err filled.
 */
static int
chainfetch_connect_addr(const struct sockaddr *sa, socklen_t salen,
    long long deadline, char *err, size_t errlen)
{
	char		 text[CONF_ADDR_TEXT_MAX];
	socklen_t	 optlen;
	int		 fd, soerr, r;

	cv_sockaddr_text(sa, text, sizeof(text));
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1) {
		snprintf(err, errlen, "cannot connect to %s: %s", text,
		    strerror(errno));
		return -1;
	}
	if (connect(fd, sa, salen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		soerr = errno;
		goto fail;
	}
	r = chainfetch_wait(fd, POLLOUT, deadline);
	if (r == 0) {
		snprintf(err, errlen, "cannot connect to %s: timed out", text);
		close(fd);
		return -1;
	}
	if (r == -1) {
		soerr = errno;
		goto fail;
	}
	optlen = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &optlen) == -1)
		soerr = errno;
	if (soerr == 0)
		return fd;
fail:
	snprintf(err, errlen, "cannot connect to %s: %s", text,
	    strerror(soerr));
	close(fd);
	return -1;
}

/*
 * Dial connect_to when given, otherwise every address of the host in
 * turn. Returns a connected socket or -1 with err filled.
 */
static int
chainfetch_dial(const struct chainfetch_opts *opts, long long deadline,
    char *err, size_t errlen)
{
	struct conf_addr	 addr;
	struct evutil_addrinfo	*res, *ai;
	char			 cverr[128];
	int			 fd;

	if (opts->connect_to != NULL) {
		if (!cv_addr(opts->connect_to, &addr, cverr, sizeof(cverr))) {
			snprintf(err, errlen, "bad address %s: %s",
			    opts->connect_to, cverr);
			return -1;
		}
		return chainfetch_connect_addr((struct sockaddr *)&addr.ss,
		    addr.sslen, deadline, err, errlen);
	}

	/* Resolve as the daemon does, through its resolver configuration. */
	if ((res = resolve_wait(opts->dial != NULL ? opts->dial : opts->host,
	    opts->port, opts->timeout_ms, err, errlen)) == NULL)
		return -1;
	fd = -1;
	for (ai = res; ai != NULL && fd == -1; ai = ai->ai_next)
		fd = chainfetch_connect_addr(ai->ai_addr, ai->ai_addrlen,
		    deadline, err, errlen);
	evutil_freeaddrinfo(res);
	return fd;
}

/* A client context trusting opts->trust plus opts->ca_file. */
static SSL_CTX *
chainfetch_ctx(const struct chainfetch_opts *opts, char *err, size_t errlen)
{
	SSL_CTX		*ctx;
	X509_STORE	*store;

	store = trust_store_new(opts->trust, opts->ca_file, err, errlen);
	if (store == NULL)
		return NULL;
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "cannot create a TLS context");
		X509_STORE_free(store);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_cert_store(ctx, store);
	/*
	 * The handshake must finish whatever the chain is: the tool prints
	 * the served chain when it does not verify. The result of the
	 * verification OpenSSL still runs is read afterwards.
	 */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}

/* Ask for the host name (or IP address) to be checked in the leaf. */
static bool
chainfetch_set_name(SSL *ssl, const struct chainfetch_opts *opts,
    char *err, size_t errlen)
{
	X509_VERIFY_PARAM	*param;
	const char		*sni;
	bool			 ip;

	param = SSL_get0_param(ssl);
	ip = hostmatch_is_ip(opts->host);
	if (ip) {
		if (X509_VERIFY_PARAM_set1_ip_asc(param, opts->host) != 1)
			goto fail;
	} else {
		/* As the daemon: never the subject CN, only subjectAltName. */
		X509_VERIFY_PARAM_set_hostflags(param,
		    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
		    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
		if (X509_VERIFY_PARAM_set1_host(param, opts->host, 0) != 1)
			goto fail;
	}
	sni = opts->sni != NULL ? opts->sni : opts->host;
	/* RFC 6066 allows only host names in server_name. */
	if (!hostmatch_is_ip(sni) && SSL_set_tlsext_host_name(ssl, sni) != 1)
		goto fail;
	return true;
fail:
	snprintf(err, errlen, "cannot use %s as a TLS name", opts->host);
	return false;
}

/* Drive SSL_connect on a non-blocking socket until done or deadline. */
static bool
chainfetch_handshake(SSL *ssl, int fd, const char *target, long long deadline,
    char *err, size_t errlen)
{
	unsigned long	 e;
	int		 r, sslerr, w;

	for (;;) {
		ERR_clear_error();
		r = SSL_connect(ssl);
		if (r == 1)
			return true;
		sslerr = SSL_get_error(ssl, r);
		if (sslerr == SSL_ERROR_WANT_READ)
			w = chainfetch_wait(fd, POLLIN, deadline);
		else if (sslerr == SSL_ERROR_WANT_WRITE)
			w = chainfetch_wait(fd, POLLOUT, deadline);
		else
			break;
		if (w == 0) {
			snprintf(err, errlen,
			    "TLS handshake with %s timed out", target);
			return false;
		}
		if (w == -1) {
			snprintf(err, errlen, "TLS handshake with %s: %s",
			    target, strerror(errno));
			return false;
		}
	}
	if ((e = ERR_peek_last_error()) != 0)
		snprintf(err, errlen, "TLS handshake with %s failed: %s",
		    target, ERR_reason_error_string(e) != NULL ?
		    ERR_reason_error_string(e) : "unknown error");
	else if (sslerr == SSL_ERROR_SYSCALL && errno != 0)
		snprintf(err, errlen, "TLS handshake with %s failed: %s",
		    target, strerror(errno));
	else
		snprintf(err, errlen, "TLS handshake with %s failed: "
		    "connection closed by the server", target);
	ERR_clear_error();
	return false;
}

/* Copy the chains and the verification outcome of a finished handshake. */
static void
chainfetch_collect(SSL *ssl, struct chainfetch_result *res)
{
	STACK_OF(X509)	*served, *verified;
	long		 vr;

	served = SSL_get_peer_cert_chain(ssl);
	if (served != NULL)
		res->served_chain = X509_chain_up_ref(served);
	vr = SSL_get_verify_result(ssl);
	verified = SSL_get0_verified_chain(ssl);
	/* OpenSSL keeps the partial chain of a failed verification too. */
	if (vr == X509_V_OK && verified != NULL &&
	    sk_X509_num(verified) > 0) {
		res->verified = true;
		res->verified_chain = X509_chain_up_ref(verified);
		return;
	}
	if (vr == X509_V_OK)
		xstrlcpy(res->reason, "the server sent no certificate",
		    sizeof(res->reason));
	else
		xstrlcpy(res->reason, X509_verify_cert_error_string(vr),
		    sizeof(res->reason));
}

bool
chainfetch(const struct chainfetch_opts *opts, struct chainfetch_result *res,
    char *err, size_t errlen)
{
	SSL_CTX		*ctx;
	SSL		*ssl = NULL;
	char		 target[CHAINFETCH_TARGET_MAX];
	long long	 deadline;
	int		 fd = -1;
	bool		 ok = false;

	memset(res, 0, sizeof(*res));
	cv_hostport_text(opts->host, opts->port, target, sizeof(target));
	if ((ctx = chainfetch_ctx(opts, err, errlen)) == NULL)
		return false;
	deadline = chainfetch_now_ms() + (long long)opts->timeout_ms;
	if ((fd = chainfetch_dial(opts, deadline, err, errlen)) == -1)
		goto out;
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1) {
		snprintf(err, errlen, "cannot create a TLS connection");
		goto out;
	}
	if (!chainfetch_set_name(ssl, opts, err, errlen))
		goto out;
	deadline = chainfetch_now_ms() + (long long)opts->timeout_ms;
	if (!chainfetch_handshake(ssl, fd, target, deadline, err, errlen))
		goto out;
	chainfetch_collect(ssl, res);
	/* A courtesy close_notify; the answer is not awaited. */
	SSL_shutdown(ssl);
	ok = true;
out:
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd != -1)
		close(fd);
	ERR_clear_error();
	return ok;
}

void
chainfetch_result_clear(struct chainfetch_result *res)
{
	sk_X509_pop_free(res->verified_chain, X509_free);
	sk_X509_pop_free(res->served_chain, X509_free);
	res->verified_chain = NULL;
	res->served_chain = NULL;
	res->verified = false;
	res->reason[0] = '\0';
}
