/*
 * Allocation wrappers that never return NULL: running out of memory is not
 * a condition pinproxy tries to survive, so it stops with a message.
 */
#ifndef PINPROXY_XMALLOC_H
#define PINPROXY_XMALLOC_H

#include <stddef.h>

/* Allocate size bytes or abort. */
void	*xmalloc(size_t size);
/* Allocate nmemb zeroed elements or abort. */
void	*xcalloc(size_t nmemb, size_t size);
/* Resize an array of nmemb elements, checking for overflow, or abort. */
void	*xreallocarray(void *ptr, size_t nmemb, size_t size);
/*
 * Make room for element n of an array of n elements that only this call
 * grows (and that may shrink): its size doubles when n is a power of two,
 * so appending one at a time costs linear, not quadratic, copying.
 */
void	*xappendarray(void *ptr, size_t n, size_t size);
/* Duplicate a string or abort. */
char	*xstrdup(const char *s);
/* Duplicate at most n bytes of a string or abort. */
char	*xstrndup(const char *s, size_t n);
/* Format into a newly allocated string or abort. */
char	*xasprintf(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));
/* Format a reason into err (NULL or of size 0: nothing is written). */
void	 xseterr(char *err, size_t errlen, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* Copy src into dst of size dstsize, always terminating; returns strlen(src). */
size_t	 xstrlcpy(char *dst, const char *src, size_t dstsize);

#endif
