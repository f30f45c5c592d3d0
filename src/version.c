/* Version reporting for both programs (-V). */
#include "config.h"

#include <event2/event.h>
#include <openssl/crypto.h>
#include <stdio.h>

#include "version.h"

const char *
version_string(void)
{
	return PACKAGE_VERSION;
}

void
version_print(FILE *fp, const char *program)
{
	fprintf(fp, "%s %s\n", program, PACKAGE_VERSION);
	fprintf(fp, "libevent %s\n", event_get_version());
	fprintf(fp, "%s\n", OpenSSL_version(OPENSSL_VERSION));
}
