/*
 * fileio.h - the two POSIX file helpers the operators that write files
 * share (file sink, dedup segment store): a write that finishes or fails,
 * and an fsync of a directory (so a created or renamed file's name is
 * durable). Internal to the library.
 *
 * Thread-safety: stateless; errno tells why a call failed.
 */
#ifndef WEIR_FILEIO_H
#define WEIR_FILEIO_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <unistd.h>

/* Writes all n bytes (retrying short writes and EINTR): 0 or -1. */
static inline int weir__write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    ssize_t w;

    while (n > 0) {
        w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* fsync()s the directory itself: 0 or -1. */
static inline int weir__fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

#endif
