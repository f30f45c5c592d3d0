/*
 * Opening files the daemon reads or appends to (the CA, report_file):
 * only a regular file is accepted, a symbolic link is never followed, and
 * a FIFO never blocks the open.
 */
#ifndef PINPROXY_REGFILE_H
#define PINPROXY_REGFILE_H

#include <sys/stat.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

/*
 * What a file was when it was read: a file replaced, rewritten or touched
 * since then differs in one of these.
 */
struct fileid {
	dev_t		 dev;
	ino_t		 ino;
	off_t		 size;
	struct timespec	 mtime;
	struct timespec	 ctime;
};

/* The identity st describes. */
void	 fileid_set(struct fileid *id, const struct stat *st);
/* Whether st describes the file id recorded, unchanged. */
bool	 fileid_same(const struct fileid *id, const struct stat *st);

/*
 * Open path with flags (O_RDONLY, or O_WRONLY | O_APPEND | O_CREAT with
 * mode) plus O_NOFOLLOW and O_CLOEXEC; the descriptor is blocking again
 * when returned, its status in *st. On failure -1, with err naming what
 * (the configuration key) and path.
 */
int	 regfile_open(const char *what, const char *path, int flags,
	    mode_t mode, struct stat *st, char *err, size_t errlen);

/*
 * Open path for reading as a stream, following symbolic links (a
 * configuration file, a ca_file): a regular file only, as a FIFO would
 * block whoever reads it (a reload, a check). NULL with err on failure,
 * naming the file as label (NULL: not at all, the caller names it).
 */
FILE	*regfile_fopen(const char *path, const char *label, char *err,
	    size_t errlen);

/* What a file of mode is, for an error: "a directory", "a device". */
const char *regfile_kind(mode_t mode);

/* The directory path names its entry in (".", "/", or a prefix); free it. */
char	*regfile_dirname(const char *path);

/*
 * Whether regfile_append() could open path, without creating it (for a
 * check of the configuration): a regular file it would take, or none in a
 * directory that exists. False with err naming what and path.
 */
bool	 regfile_check_append(const char *what, const char *path, char *err,
	    size_t errlen);

/*
 * Whether this process may create path in its directory dir (which
 * exists); false with err naming what, path and why.
 */
bool	 regfile_writable_dir(const char *what, const char *path,
	    const char *dir, char *err, size_t errlen);

/*
 * Whether no other user than root and this process's can put another file
 * in place of path through the directories above it (or the links on the
 * way): false with err naming what, path and the directory.
 */
bool	 regfile_dirs_own(const char *what, const char *path, char *err,
	    size_t errlen);

/*
 * Whether paths a and b name one file: the same file when both exist,
 * else the same name in the same directory (symbolic links followed).
 */
bool	 regfile_same(const char *a, const char *b);

/*
 * Open path for appending, created with mode 0640 when missing (*created
 * says whether this call made it); a file owned by another user than this
 * process's and root, or writable by every user, is refused (err says
 * so), as that user could read or forge what is written.
 */
int	 regfile_append(const char *what, const char *path, bool *created,
	    char *err, size_t errlen);
/*
 * Remove path, which regfile_append() created as fd, when nothing was
 * written to it and it is still that file (a failed reload leaves no new
 * empty file behind). fd stays open.
 */
void	 regfile_discard(const char *path, int fd);

#endif
