/*
 * weir/version.h - the version of the headers, and of the library at run
 * time (weir_version()).
 */
#ifndef WEIR_VERSION_H
#define WEIR_VERSION_H

#define WEIR_VERSION_MAJOR 0
#define WEIR_VERSION_MINOR 1
#define WEIR_VERSION_PATCH 0
#define WEIR_VERSION_HEX                                                       \
    ((WEIR_VERSION_MAJOR << 16) | (WEIR_VERSION_MINOR << 8) |                  \
     WEIR_VERSION_PATCH)

#ifndef WEIR_EXTERN
#if defined(__GNUC__)
#define WEIR_EXTERN __attribute__((visibility("default")))
#else
#define WEIR_EXTERN
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** @brief The library's WEIR_VERSION_HEX, which may differ from the
 * headers' when linked dynamically. Thread-safe. */
WEIR_EXTERN unsigned weir_version(void);

#ifdef __cplusplus
}
#endif
#endif
