/*
 * bench_build.h - every benchmark says so when it was built without
 * optimization.
 *
 * How it works
 *   A Debug build runs weir's own code several times slower while
 *   librdkafka, RocksDB and libc stay optimized, so its ratios to the
 *   ceilings mean nothing. `make bench` always builds Release; this
 *   catches a build directory configured by hand.
 */
#ifndef WEIR_BENCH_BUILD_H
#define WEIR_BENCH_BUILD_H

#include <stdio.h>

static inline void bench_check_build(const char *name)
{
#ifndef __OPTIMIZE__
    fprintf(stderr,
            "%s: WARNING: built without optimization (a Debug build); "
            "configure with -DCMAKE_BUILD_TYPE=Release for figures that "
            "mean anything\n",
            name);
#else
    (void)name;
#endif
}

#endif /* WEIR_BENCH_BUILD_H */
