/*
 * What the C rows of the benchmark harness share (curl_multi.c, quiver_bench.c): the client
 * contract's flags (bench/README.md, "The client contract"), the clock, CPU and memory
 * readings, latency percentiles and the protocols seen. Each program is one translation unit
 * that includes this once.
 */
#ifndef QUIVER_BENCH_COMMON_H
#define QUIVER_BENCH_COMMON_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct args {
    const char *client, *url, *ca, *protocol, *method;
    long long requests, expect_len; /* expect_len < 0: not checked */
    long concurrency, pool_size, warmup; /* pool_size/warmup < 0: default */
    size_t body_len;
    double duration; /* <= 0: none */
    int stream;
};

/* The flags of this run, filled by parse_args. */
static struct args A;

/* The program's name, for usage messages. */
static const char *bench_program;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(const char *msg) {
    fprintf(stderr, "%s: %s\n", bench_program, msg);
    fprintf(stderr, "usage: %s --url URL [--requests N] [--concurrency C] [--ca FILE] "
                    "[--protocol auto|http1|http2|http3] [--expect-len B] [--method M] [--body-len B] "
                    "[--duration S] [--pool-size P] [--warmup W] [--stream] [--client NAME]\n",
            bench_program);
    exit(2);
}

static long long num(const char *flag, const char *v) {
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || n < 0) {
        char m[256];
        snprintf(m, sizeof m, "%s: not a number: %s", flag, v);
        usage(m);
    }
    return n;
}

/* Fills A from the command line (`client` is the default --client), with the contract's
 * defaults; exits 2 on a bad flag. */
static void parse_args(int argc, char **argv, const char *program, const char *client) {
    bench_program = program;
    A = (struct args){.client = client, .url = NULL, .ca = NULL, .protocol = "auto",
                      .method = "GET", .requests = 10000, .expect_len = -1, .concurrency = 32,
                      .pool_size = -1, .warmup = -1, .body_len = 0, .duration = 0, .stream = 0};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--stream")) { A.stream = 1; continue; }
        if (i + 1 >= argc) { char m[128]; snprintf(m, sizeof m, "%s needs a value", f); usage(m); }
        const char *v = argv[++i];
        if (!strcmp(f, "--client")) A.client = v;
        else if (!strcmp(f, "--url")) A.url = v;
        else if (!strcmp(f, "--ca")) A.ca = v;
        else if (!strcmp(f, "--protocol")) A.protocol = v;
        else if (!strcmp(f, "--method")) A.method = v;
        else if (!strcmp(f, "--requests")) A.requests = num(f, v);
        else if (!strcmp(f, "--expect-len")) A.expect_len = num(f, v);
        else if (!strcmp(f, "--concurrency")) A.concurrency = (long)num(f, v);
        else if (!strcmp(f, "--pool-size")) A.pool_size = (long)num(f, v);
        else if (!strcmp(f, "--warmup")) A.warmup = (long)num(f, v);
        else if (!strcmp(f, "--body-len")) A.body_len = (size_t)num(f, v);
        else if (!strcmp(f, "--duration")) A.duration = atof(v);
        else { char m[256]; snprintf(m, sizeof m, "unknown flag %s", f); usage(m); }
    }
    if (!A.url) usage("--url is required");
    if (A.concurrency < 1) usage("--concurrency must be at least 1");
    if (A.pool_size < 0) A.pool_size = A.concurrency;
    if (A.pool_size < 1) usage("--pool-size must be at least 1");
    if (A.warmup < 0) A.warmup = A.stream ? 0 : (A.pool_size < A.concurrency ? A.pool_size : A.concurrency);
    if (strcmp(A.protocol, "auto") && strcmp(A.protocol, "http1") && strcmp(A.protocol, "http2") &&
        strcmp(A.protocol, "http3"))
        usage("--protocol must be auto, http1, http2 or http3");
}

/* CPU seconds of the process (user + system, every thread); its peak RSS in KiB to
 * `*maxrss_kb` when not NULL. */
static double cpu_seconds(long *maxrss_kb) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (maxrss_kb) *maxrss_kb = ru.ru_maxrss;
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts the `n` latencies (seconds) and writes their p50 and p99 in milliseconds. */
static void percentiles_ms(double *lat, size_t n, double *p50, double *p99) {
    qsort(lat, n, sizeof *lat, cmp_double);
    *p50 = n ? lat[(size_t)(n * 0.50) < n ? (size_t)(n * 0.50) : n - 1] * 1e3 : 0;
    *p99 = n ? lat[(size_t)(n * 0.99) < n ? (size_t)(n * 0.99) : n - 1] * 1e3 : 0;
}

/* The protocols seen (bit 0 h1, 1 h2, 2 h3, 3 anything else) as the contract's "proto":
 * "h1", "h2+h3", ... */
static void proto_names(unsigned seen, char out[32]) {
    const char *names[] = {"h1", "h2", "h3", "other"};
    out[0] = '\0';
    for (int b = 0; b < 4; b++)
        if (seen & (1u << b)) {
            if (out[0]) strcat(out, "+");
            strcat(out, names[b]);
        }
}

#endif
