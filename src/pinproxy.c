/*
 * pinproxy: the daemon's entry point. Parses the command line, reads the
 * configuration, and either reports on it (-t) or hands it to the proxy.
 */
#include "config.h"

#include <event2/event.h>

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "ca.h"
#include "conf.h"
#include "conf_parse.h"
#include "diag.h"
#include "log.h"
#include "proxy.h"
#include "regfile.h"
#include "upstream.h"
#include "version.h"
#include "xmalloc.h"

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: pinproxy [-c FILE] [-t] [-d] [-V] [-h]\n"
	    "  -c FILE  configuration file (default: %s)\n"
	    "  -t       check the configuration and exit\n"
	    "  -d       log at debug level\n"
	    "  -V       print the version and exit\n"
	    "  -h       print this help and exit\n", PINPROXY_CONF_PATH);
}

int
main(int argc, char *argv[])
{
	const char	*path = PINPROXY_CONF_PATH;
	struct diag	*d;
	struct conf	*conf;
	bool		 check = false, debug = false, builtin = false;
	bool		 explicit_path = false;
	char		 err[512], warn[512];
	int		 ch, rc;

	proxy_hold_signals();
	while ((ch = getopt(argc, argv, "c:tdVh")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			explicit_path = true;
			break;
		case 't':
			check = true;
			break;
		case 'd':
			debug = true;
			break;
		case 'V':
			version_print(stdout, "pinproxy");
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "pinproxy: unexpected argument: %s\n",
		    argv[optind]);
		usage(stderr);
		return 2;
	}

	d = diag_new();
	/* Without -c and without the file, the built-in defaults apply. */
	if (!explicit_path && access(path, F_OK) == -1 && errno == ENOENT) {
		builtin = true;
		conf = conf_new_default();
		conf->path = xstrdup(path);
	} else
		conf = conf_parse_file(path, time(NULL), d);
	/* The CA must load (or both files be missing, to be created). */
	if (conf != NULL && !ca_check(conf->ca_cert, conf->ca_key, warn,
	    sizeof(warn), err, sizeof(err))) {
		diag_error(d, path, conf_error_line(conf, err),
		    "interception CA: %s", err);
		conf_unref(conf);
		conf = NULL;
	} else if (conf != NULL && warn[0] != '\0')
		diag_warn(d, path, conf_error_line(conf, warn),
		    "interception CA: %s", warn);
	/*
	 * The files the proxy appends to must open when it starts, and (for
	 * -t: the start logs it as start_failed) upstream_mark be settable,
	 * else -t passed what the start refuses.
	 */
	if (conf != NULL && ((conf->report_file != NULL &&
	    !regfile_check_append("report_file", conf->report_file, err,
	    sizeof(err))) || (conf->observe_file != NULL &&
	    !regfile_check_append("observe_file", conf->observe_file, err,
	    sizeof(err))) || (check && !upstream_mark_check(
	    conf->upstream_mark, err, sizeof(err))))) {
		diag_error(d, path, conf_error_line(conf, err), "%s", err);
		conf_unref(conf);
		conf = NULL;
	}
	if (check) {
		if (builtin)
			printf("%s: not found; the built-in defaults apply\n",
			    path);
		diag_print(d, stderr);
		if (conf != NULL)
			printf("%s: configuration OK (%zu pin set%s)\n", path,
			    conf->npinsets, conf->npinsets == 1 ? "" : "s");
		rc = conf == NULL ? 1 : 0;
		diag_free(d);
		conf_unref(conf);
		return rc;
	}
	if (conf == NULL) {
		diag_print(d, stderr);
		diag_free(d);
		return 1;
	}
	log_open(conf->log, debug ? LL_DEBUG : conf->log_level);
	event_set_log_callback(log_libevent);
	if (builtin)
		log_msg(EV_CONFIG_WARNING, "no configuration file at %s; "
		    "running with the built-in defaults", path);
	proxy_log_warnings(d);
	diag_free(d);
	rc = proxy_main(conf, path, debug);
	conf_unref(conf);
	return rc;
}
