/*
 * A ring of recent upstream dials: see dialring.h.
 */
#include "config.h"

#include <netinet/in.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dialring.h"
#include "monotime.h"
#include "xmalloc.h"

/*
 * One end of a connection: IPv4 in the first 4 bytes of addr. No padding,
 * and every byte set, so that ends compare with memcmp().
 */
struct dialring_end {
	uint8_t		 addr[16];
	uint16_t	 port;		/* network order */
	uint8_t		 family;	/* AF_INET, AF_INET6; 0: none */
	uint8_t		 zero;
};

struct dialring_dial {
	struct dialring_end	 local;
	struct dialring_end	 remote;
};

struct dialring {
	struct dialring_dial	 dials[DIALRING_SLOTS];
	uint64_t		 at_us[DIALRING_SLOTS];	/* when dialled */
	size_t			 next;
	uint64_t		(*clock)(void);
};

/* The end sa names, an IPv4-mapped address as IPv4; false if neither. */
static bool
dialring_end(const struct sockaddr *sa, struct dialring_end *e)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6	*sin6 =
	    (const struct sockaddr_in6 *)sa;

	memset(e, 0, sizeof(*e));
	if (sa->sa_family == AF_INET) {
		e->family = AF_INET;
		memcpy(e->addr, &sin->sin_addr, 4);
		e->port = sin->sin_port;
		return true;
	}
	if (sa->sa_family != AF_INET6)
		return false;
	e->port = sin6->sin6_port;
	if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		e->family = AF_INET;
		memcpy(e->addr, &sin6->sin6_addr.s6_addr[12], 4);
	} else {
		e->family = AF_INET6;
		memcpy(e->addr, &sin6->sin6_addr, 16);
	}
	return true;
}

/*
 * An end as a connection reaches it: a dial of the unspecified address
 * arrives at the loopback one, which the redirected side then sees.
 */
static bool
dialring_reached(const struct sockaddr *sa, struct dialring_end *e)
{
	static const uint8_t	 zero[16];

	if (!dialring_end(sa, e))
		return false;
	if (e->family == AF_INET && memcmp(e->addr, zero, 4) == 0) {
		e->addr[0] = 127;
		e->addr[3] = 1;
	} else if (e->family == AF_INET6 && memcmp(e->addr, zero, 16) == 0)
		e->addr[15] = 1;
	return true;
}

struct dialring *
dialring_new(void)
{
	struct dialring	*r = xcalloc(1, sizeof(*r));

	r->clock = monotime_us;
	return r;
}

void
dialring_set_clock(struct dialring *r, uint64_t (*clock)(void))
{
	r->clock = clock;
}

void
dialring_free(struct dialring *r)
{
	free(r);
}

void
dialring_add(struct dialring *r, const struct sockaddr *local,
    const struct sockaddr *remote)
{
	struct dialring_dial	 d;

	if (r == NULL || !dialring_end(local, &d.local) ||
	    !dialring_reached(remote, &d.remote))
		return;
	memcpy(&r->dials[r->next], &d, sizeof(d));
	r->at_us[r->next] = r->clock();
	r->next = (r->next + 1) % DIALRING_SLOTS;
}

bool
dialring_has(const struct dialring *r, const struct sockaddr *peer,
    const struct sockaddr *dst)
{
	struct dialring_dial	 d;
	uint64_t		 now;
	size_t			 i;

	if (r == NULL || !dialring_end(peer, &d.local) ||
	    !dialring_reached(dst, &d.remote))
		return false;
	now = r->clock();
	for (i = 0; i < DIALRING_SLOTS; i++)
		if (memcmp(&r->dials[i], &d, sizeof(d)) == 0 &&
		    now - r->at_us[i] <= DIALRING_TTL_MS * 1000)
			return true;
	return false;
}
