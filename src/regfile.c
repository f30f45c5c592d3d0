/*
 * Regular files only: open with O_NOFOLLOW and O_NONBLOCK, then fstat.
 * A symbolic link, FIFO, directory, socket or device named by the
 * configuration is refused with a message that says which it is.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "regfile.h"
#include "xmalloc.h"

/* What a file that is not a regular one is, for an error message. */
const char *
regfile_kind(mode_t mode)
{
	if (S_ISLNK(mode))
		return "a symbolic link";
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "a device";
	return "not a regular file";
}

/* The error for a file of another kind. */
static void
regfile_refuse(const char *what, const char *path, mode_t mode, char *err,
    size_t errlen)
{
	snprintf(err, errlen, "%s %s is %s, not a regular file: refused",
	    what, path, regfile_kind(mode));
}

/* Whether uid may own what the daemon appends to: its user's or root's. */
static bool
regfile_uid_ok(uid_t uid, bool any_owner)
{
	return any_owner || uid == 0 || uid == geteuid();
}

/*
 * Whether a file the daemon appends to is its own: owned by its user or
 * root (any owner with any_owner), not writable by others, and its one
 * name. One another user made (in a shared directory, before the daemon
 * first started) could be read, emptied or filled with forged lines by
 * them; false with err then.
 */
static bool
regfile_owned(const char *what, const char *path, const struct stat *st,
    bool any_owner, char *err, size_t errlen)
{
	/* Another name of a file elsewhere (hard links are not checked). */
	if (st->st_nlink > 1) {
		snprintf(err, errlen, "%s %s has %lu links: another name of "
		    "a file elsewhere is refused", what, path,
		    (unsigned long)st->st_nlink);
		return false;
	}
	if (!regfile_uid_ok(st->st_uid, any_owner)) {
		snprintf(err, errlen, "%s %s is owned by uid %lu, not by "
		    "pinproxy's user (uid %lu) or root: another user's file "
		    "is refused", what, path, (unsigned long)st->st_uid,
		    (unsigned long)geteuid());
		return false;
	}
	if (st->st_mode & S_IWOTH) {
		snprintf(err, errlen, "%s %s is writable by every user "
		    "(mode %04o): refused", what, path,
		    (unsigned int)(st->st_mode & 07777));
		return false;
	}
	return true;
}

/*
 * Whether fd, opened without blocking, is a regular file (its status in
 * *st), made blocking again: a regular file never waits, so read(2) and
 * write(2) stay plain. 0; 1 for a file of another kind; -1 with errno.
 */
static int
regfile_settle(int fd, struct stat *st)
{
	int	 fl;

	if (fstat(fd, st) == -1)
		return -1;
	if (!S_ISREG(st->st_mode))
		return 1;
	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1)
		return -1;
	return 0;
}

int
regfile_open(const char *what, const char *path, int flags, mode_t mode,
    struct stat *st, char *err, size_t errlen)
{
	int	 fd, saved;

	fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
	if (fd == -1) {
		saved = errno;
		if (lstat(path, st) == 0 && !S_ISREG(st->st_mode))
			regfile_refuse(what, path, st->st_mode, err, errlen);
		else
			snprintf(err, errlen, "cannot open %s %s: %s", what,
			    path, strerror(saved));
		errno = saved;
		return -1;
	}
	switch (regfile_settle(fd, st)) {
	case 0:
		return fd;
	case 1:
		regfile_refuse(what, path, st->st_mode, err, errlen);
		saved = EINVAL;
		break;
	default:
		saved = errno;
		snprintf(err, errlen, "%s %s: %s", what, path,
		    strerror(saved));
	}
	close(fd);
	errno = saved;
	return -1;
}

FILE *
regfile_fopen(const char *path, const char *label, char *err, size_t errlen)
{
	const char	*sep = label != NULL ? " " : "";
	struct stat	 st;
	FILE		*fp;
	int		 fd, kind;

	if (label == NULL)
		label = "";
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot open%s%s: %s", sep, label,
		    strerror(errno));
		return NULL;
	}
	if ((kind = regfile_settle(fd, &st)) == 0 &&
	    (fp = fdopen(fd, "r")) != NULL)
		return fp;
	if (kind == 1)
		snprintf(err, errlen, "%s%sis %s, not a regular file: refused",
		    label, sep, regfile_kind(st.st_mode));
	else
		snprintf(err, errlen, "cannot read%s%s: %s", sep, label,
		    strerror(errno));
	close(fd);
	return NULL;
}

char *
regfile_dirname(const char *path)
{
	char	*dir, *slash;

	if (strchr(path, '/') == NULL)
		return xstrdup(".");
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	return dir;
}

/*
 * Whether no other user can put something else in place of path through
 * a directory above it: each symbolic link on the way to its directory
 * owned by root or this process's user, and that directory, resolved, and
 * each one up to / as well (any owner with any_owner), and writable by
 * every user only when sticky (then none can rename or remove what
 * another owns). A directory that does not exist is judged by the caller.
 * False with err naming the directory or link.
 */
static bool
regfile_dirs_safe(const char *what, const char *path, bool any_owner,
    char *err, size_t errlen)
{
	struct stat	 st;
	char		*dir, *real, *slash, c;
	bool		 ok = true, have;
	size_t		 i, len;

	dir = regfile_dirname(path);
	len = strlen(dir);
	for (i = 1; i <= len && ok; i++) {
		if (dir[i] != '/' && dir[i] != '\0')
			continue;
		c = dir[i];
		dir[i] = '\0';
		if (lstat(dir, &st) == 0 && S_ISLNK(st.st_mode) &&
		    !regfile_uid_ok(st.st_uid, any_owner)) {
			snprintf(err, errlen, "%s %s: the link %s is owned by "
			    "uid %lu, not by pinproxy's user or root: that user "
			    "could point it elsewhere", what, path, dir,
			    (unsigned long)st.st_uid);
			ok = false;
		}
		dir[i] = c;
	}
	real = ok ? realpath(dir, NULL) : NULL;
	free(dir);
	if (real == NULL)
		return ok;
	while (ok) {
		have = stat(real, &st) == 0;
		if (have && !regfile_uid_ok(st.st_uid, any_owner)) {
			snprintf(err, errlen, "%s %s: the directory %s is owned "
			    "by uid %lu, not by pinproxy's user or root: that "
			    "user could put another file in its place", what,
			    path, real, (unsigned long)st.st_uid);
			ok = false;
		} else if (have && (st.st_mode & S_IWOTH) &&
		    !(st.st_mode & S_ISVTX)) {
			snprintf(err, errlen, "%s %s: the directory %s is "
			    "writable by every user and not sticky: any user "
			    "could put another file in its place", what, path,
			    real);
			ok = false;
		} else if (strcmp(real, "/") == 0)
			break;
		else if ((slash = strrchr(real, '/')) == real)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	free(real);
	return ok;
}

bool
regfile_check_append(const char *what, const char *path, char *err,
    size_t errlen)
{
	struct stat	 st;
	char		*dir;
	bool		 ok, any_owner;

	/*
	 * Root checking cannot tell the user the daemon will run as (the
	 * service's own): the owners are for the start to judge.
	 */
	any_owner = geteuid() == 0;
	if (!regfile_dirs_safe(what, path, any_owner, err, errlen))
		return false;
	if (lstat(path, &st) == 0) {
		if (!S_ISREG(st.st_mode)) {
			regfile_refuse(what, path, st.st_mode, err, errlen);
			return false;
		}
		if (!regfile_owned(what, path, &st, any_owner, err, errlen))
			return false;
		/* As open() judges: effective IDs and capabilities. */
		if (faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) == 0)
			return true;
		snprintf(err, errlen, "%s %s: %s", what, path,
		    strerror(errno));
		return false;
	}
	if (errno != ENOENT) {
		snprintf(err, errlen, "%s %s: %s", what, path,
		    strerror(errno));
		return false;
	}
	dir = regfile_dirname(path);
	ok = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
	if (!ok)
		snprintf(err, errlen, "%s %s: its directory %s does not exist",
		    what, path, dir);
	else
		ok = regfile_writable_dir(what, path, dir, err, errlen);
	free(dir);
	return ok;
}

/* path with its directory resolved, or NULL when that does not exist. */
static char *
regfile_resolved(const char *path)
{
	char	*dir, *real, *out;
	const char *base;

	dir = regfile_dirname(path);
	real = realpath(dir, NULL);
	free(dir);
	if (real == NULL)
		return NULL;
	base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
	out = xasprintf("%s/%s", real, base);
	free(real);
	return out;
}

bool
regfile_dirs_own(const char *what, const char *path, char *err,
    size_t errlen)
{
	return regfile_dirs_safe(what, path, false, err, errlen);
}

bool
regfile_same(const char *a, const char *b)
{
	struct stat	 sa, sb;
	char		*ra, *rb;
	bool		 same;

	if (strcmp(a, b) == 0)
		return true;
	if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
		return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
	ra = regfile_resolved(a);
	rb = regfile_resolved(b);
	same = ra != NULL && rb != NULL && strcmp(ra, rb) == 0;
	free(ra);
	free(rb);
	return same;
}

bool
regfile_writable_dir(const char *what, const char *path, const char *dir,
    char *err, size_t errlen)
{
	if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) == 0)
		return true;
	snprintf(err, errlen, "%s %s: cannot create it in %s: %s", what, path,
	    dir, strerror(errno));
	return false;
}

int
regfile_append(const char *what, const char *path, bool *created, char *err,
    size_t errlen)
{
	struct stat	 st;
	int		 fd, tries;

	*created = false;
	if (!regfile_dirs_safe(what, path, false, err, errlen))
		return -1;
	/* Made here or not: an open that finds it, else one that makes it. */
	for (tries = 0; tries < 3; tries++) {
		fd = regfile_open(what, path, O_WRONLY | O_APPEND, 0, &st,
		    err, errlen);
		if (fd != -1 || errno != ENOENT)
			break;
		fd = regfile_open(what, path, O_WRONLY | O_APPEND | O_CREAT |
		    O_EXCL, 0640, &st, err, errlen);
		if (fd != -1 || errno != EEXIST) {
			*created = fd != -1;
			break;
		}
	}
	if (fd != -1 && !regfile_owned(what, path, &st, false, err, errlen)) {
		/* Made here but not ours (a root squashed by NFS, say). */
		if (*created)
			regfile_discard(path, fd);
		close(fd);
		*created = false;
		return -1;
	}
	return fd;
}

void
regfile_discard(const char *path, int fd)
{
	struct stat	 st, at;

	if (fstat(fd, &st) == 0 && st.st_size == 0 &&
	    lstat(path, &at) == 0 && at.st_dev == st.st_dev &&
	    at.st_ino == st.st_ino)
		unlink(path);
}

void
fileid_set(struct fileid *id, const struct stat *st)
{
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtime = st->st_mtim;
	id->ctime = st->st_ctim;
}

bool
fileid_same(const struct fileid *id, const struct stat *st)
{
	return st->st_dev == id->dev && st->st_ino == id->ino &&
	    st->st_size == id->size &&
	    st->st_mtim.tv_sec == id->mtime.tv_sec &&
	    st->st_mtim.tv_nsec == id->mtime.tv_nsec &&
	    st->st_ctim.tv_sec == id->ctime.tv_sec &&
	    st->st_ctim.tv_nsec == id->ctime.tv_nsec;
}
