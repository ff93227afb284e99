/*
 * weir/errno.h - error codes.
 *
 * Every weir function that can fail returns WEIR_OK (0) or one of the
 * negative codes below. The table is an X-macro so that the enum,
 * weir_strerror() and weir_err_name() cannot drift apart.
 *
 * Two positive codes exist and are documented where they are returned:
 * WEIR_DONE (a source has reached the end of its input) and WEIR_IDLE (a
 * source has nothing to emit right now).
 */
#ifndef WEIR_ERRNO_H
#define WEIR_ERRNO_H

#ifdef __cplusplus
extern "C" {
#endif

#ifndef WEIR_EXTERN
#if defined(__GNUC__)
#define WEIR_EXTERN __attribute__((visibility("default")))
#else
#define WEIR_EXTERN
#endif
#endif

/* XX(NAME, value, "message") */
#define WEIR_ERRNO_MAP(XX)                                                     \
    XX(EINVAL, -1, "invalid argument")                                         \
    XX(ENOMEM, -2, "out of memory")                                            \
    XX(ENOENT, -3, "no such entry")                                            \
    XX(EIO, -4, "input/output error")                                          \
    XX(ESTATE, -5, "state backend error")                                      \
    XX(ECODEC, -6, "record could not be decoded or encoded")                   \
    XX(EKAFKA, -7, "Kafka error")                                              \
    XX(ECANCELED, -8, "operation canceled")                                    \
    XX(EEXIST, -9, "already exists")                                           \
    XX(ERANGE, -10, "value out of range")                                      \
    XX(EBUSY, -11, "resource busy")                                            \
    XX(ENOTSUP, -12, "operation not supported")                                \
    XX(EPARSE, -13, "parse error")                                             \
    XX(EFATAL, -14, "fatal error")                                             \
    XX(ETIMEDOUT, -15, "timed out")                                            \
    XX(ETOPOLOGY, -16, "invalid pipeline topology")                            \
    XX(ECORRUPT, -17, "checkpoint data is corrupt")                            \
    XX(EFENCED, -18, "producer fenced by a newer instance")

/** @brief Error codes: WEIR_OK is 0, every failure is negative. */
typedef enum weir_errno {
    WEIR_OK = 0,
#define WEIR__ERRNO_ENUM(name, val, msg) WEIR_##name = (val),
    WEIR_ERRNO_MAP(WEIR__ERRNO_ENUM)
#undef WEIR__ERRNO_ENUM
        WEIR_DONE = 1, /* a source has no more input (positive, not an error) */
    WEIR_IDLE = 2      /* a source has nothing to emit now (positive)       */
} weir_errno_t;

/**
 * @brief A static, human-readable message for an error code.
 * @returns Never NULL; unknown codes give "unknown error".
 * @remark Thread-safety: safe from any thread.
 */
WEIR_EXTERN const char *weir_strerror(int err);

/**
 * @brief The symbolic name of an error code ("WEIR_EINVAL").
 * @returns Never NULL; unknown codes give "WEIR_UNKNOWN".
 * @remark Thread-safety: safe from any thread.
 */
WEIR_EXTERN const char *weir_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif /* WEIR_ERRNO_H */
