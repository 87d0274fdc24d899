/*
 * quiver_bench: the C row of quiver in Quiver's benchmark harness (libquiver's C ABI).
 *
 * One run: N requests from C concurrent workers through one quiver_client, every response
 * verified (status 2xx and body length), one JSON line on stdout. Same flags and JSON keys as
 * curl_multi.c and quiver-bench-rust (bench/README.md, "The client contract"):
 *
 *   quiver_bench_c --url URL [--requests N] [--concurrency C] [--ca FILE]
 *                  [--protocol auto|http1|http2|http3] [--expect-len BYTES] [--method GET|POST]
 *                  [--body-len B] [--duration SECS] [--pool-size P] [--warmup W] [--stream]
 *                  [--client NAME]
 *
 * A worker is a chain of asynchronous calls: quiver_client_send (or quiver_client_stream with
 * --stream) whose callback, on one of quiver's runtime threads, verifies the response, records
 * its latency and sends the worker's next request, until --requests or --duration is reached.
 * The main thread only waits. Pool options as in the Rust row: `size` = pool size (default the
 * concurrency), `protocol`, `ca_file`, `checkout_timeout` 120 s. Without --stream every body
 * arrives whole in a quiver_response (like a client that returns the whole body); with
 * --stream it is counted chunk by chunk as it arrives and dropped.
 *
 * Build (bench/run.sh does): gcc -O2 -I PREFIX/include quiver_bench.c PREFIX/lib/libquiver.a
 *                            -lpthread -ldl -lm
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>

#include "bench_common.h"
#include "quiver.h"

/* One worker: at most one request in flight, so its fields are touched by one callback at a
 * time. Everything a callback writes is written before it sends the worker's next request. */
struct worker {
    double started;
    int timed;              /* 0: warm-up (one request, no follow-up) */
    uint16_t status;        /* --stream: from on_head */
    unsigned version_bit;
    unsigned long long len; /* --stream: bytes counted so far */
    double *lat;            /* latencies of the timed section, seconds */
    size_t lat_n, lat_cap;
};

static const quiver_client *client;
static uint8_t *body;
static double deadline;     /* 0: none */
static atomic_llong next_request, failures, bytes_total;
static atomic_uint versions_seen;
static atomic_int first_failure_reported;
static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static long running; /* workers with a request in flight, under done_mu */

static unsigned version_bit(quiver_http_version v) {
    switch (v) {
    case QUIVER_HTTP_VERSION_HTTP2: return 2;
    case QUIVER_HTTP_VERSION_HTTP3: return 4;
    case QUIVER_HTTP_VERSION_HTTP1_0:
    case QUIVER_HTTP_VERSION_HTTP1_1: return 1;
    default: return 8;
    }
}

static void record(struct worker *w, double v) {
    if (w->lat_n == w->lat_cap) {
        w->lat_cap = w->lat_cap ? w->lat_cap * 2 : 4096;
        w->lat = realloc(w->lat, w->lat_cap * sizeof *w->lat);
        if (!w->lat) { fprintf(stderr, "out of memory\n"); exit(1); }
    }
    w->lat[w->lat_n++] = v;
}

/* Counts one outcome; the first failure is described on stderr. */
static void verify(const quiver_error *err, uint16_t status, unsigned long long len, unsigned vbit) {
    int ok = !err && status >= 200 && status < 300 && (A.expect_len < 0 || (long long)len == A.expect_len);
    if (ok) {
        atomic_fetch_add_explicit(&bytes_total, (long long)len, memory_order_relaxed);
        atomic_fetch_or_explicit(&versions_seen, vbit, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&failures, 1, memory_order_relaxed);
    if (atomic_exchange(&first_failure_reported, 1)) return;
    if (err)
        fprintf(stderr, "request failed: %s (%s): %s\n", quiver_error_kind(err),
                quiver_class_str(quiver_error_class(err)), quiver_error_message(err));
    else
        fprintf(stderr, "bad response: status %u, %llu bytes (expected %lld)\n", status, len, A.expect_len);
}

static void worker_done(void) {
    pthread_mutex_lock(&done_mu);
    if (--running == 0) pthread_cond_signal(&done_cv);
    pthread_mutex_unlock(&done_mu);
}

static void start(struct worker *w);

/* After a request of `w` ended: its next one, or the end of the worker. */
static void follow_up(struct worker *w, double finished) {
    if (w->timed) {
        record(w, finished - w->started);
        if (atomic_fetch_add_explicit(&next_request, 1, memory_order_relaxed) < A.requests &&
            !(deadline > 0 && now() >= deadline)) {
            start(w);
            return;
        }
    }
    worker_done();
}

static void on_response(void *ud, quiver_response *resp, quiver_error *err) {
    struct worker *w = ud;
    double t = now();
    const uint8_t *data = NULL;
    size_t len = 0;
    if (resp) quiver_response_body(resp, &data, &len);
    verify(err, quiver_response_status(resp), len, version_bit(quiver_response_version(resp)));
    quiver_response_free(resp);
    quiver_error_free(err);
    follow_up(w, t);
}

static void on_head(void *ud, const quiver_stream *s, const quiver_response *head) {
    (void)s;
    struct worker *w = ud;
    w->status = quiver_response_status(head);
    w->version_bit = version_bit(quiver_response_version(head));
}

static void on_data(void *ud, const quiver_stream *s, const uint8_t *data, size_t len) {
    (void)s;
    (void)data;
    ((struct worker *)ud)->len += len;
}

static void on_end(void *ud, const quiver_stream *s, quiver_error *err) {
    (void)s;
    struct worker *w = ud;
    double t = now();
    verify(err, w->status, w->len, w->version_bit);
    quiver_error_free(err);
    follow_up(w, t);
}

/* Sends the worker's next request; a call quiver refuses counts as a failure and ends it. */
static void start(struct worker *w) {
    w->status = 0;
    w->version_bit = 0;
    w->len = 0;
    quiver_request *req = quiver_request_new(A.method, A.url);
    if (!req) { fprintf(stderr, "quiver_request_new failed\n"); exit(1); }
    if (A.body_len) quiver_request_set_body_borrowed(req, body, A.body_len, NULL, NULL);
    w->started = now();
    quiver_result rc = A.stream ? quiver_client_stream(client, req, on_head, on_data, on_end, w, NULL)
                                : quiver_client_send(client, req, on_response, w);
    if (rc != QUIVER_RESULT_OK) {
        atomic_fetch_add(&failures, 1);
        if (!atomic_exchange(&first_failure_reported, 1))
            fprintf(stderr, "quiver_client_%s: %s\n", A.stream ? "stream" : "send", quiver_result_str(rc));
        worker_done();
    }
}

/* Starts `n` workers and waits until every one has ended. */
static void run(struct worker *ws, long n, int timed) {
    pthread_mutex_lock(&done_mu);
    running = n;
    pthread_mutex_unlock(&done_mu);
    long started = 0;
    for (long i = 0; i < n; i++) {
        ws[i].timed = timed;
        if (timed) {
            if (atomic_fetch_add_explicit(&next_request, 1, memory_order_relaxed) >= A.requests) break;
            ws[i].started = now();
        }
        started++;
        start(&ws[i]);
    }
    pthread_mutex_lock(&done_mu);
    running -= n - started; /* workers that never started */
    while (running > 0) pthread_cond_wait(&done_cv, &done_mu);
    pthread_mutex_unlock(&done_mu);
}

static void config_or_die(quiver_result rc, const char *what) {
    if (rc != QUIVER_RESULT_OK) {
        fprintf(stderr, "quiver_config_set %s: %s\n", what, quiver_result_str(rc));
        exit(1);
    }
}

int main(int argc, char **argv) {
    parse_args(argc, argv, "quiver_bench_c", "quiver-c");
    body = malloc(A.body_len + 1);
    memset(body, 'x', A.body_len);

    quiver_config *cfg = quiver_config_new();
    config_or_die(quiver_config_set_int(cfg, NULL, "size", A.pool_size), "size");
    config_or_die(quiver_config_set_str(cfg, NULL, "protocol", A.protocol), "protocol");
    config_or_die(quiver_config_set_duration_ms(cfg, NULL, "checkout_timeout", 120000), "checkout_timeout");
    if (A.ca) config_or_die(quiver_config_set_str(cfg, NULL, "ca_file", A.ca), "ca_file");
    quiver_error *err = NULL;
    quiver_result rc = quiver_client_new(cfg, &client, &err);
    quiver_config_free(cfg);
    if (rc != QUIVER_RESULT_OK) {
        fprintf(stderr, "quiver_client_new: %s: %s\n", quiver_result_str(rc),
                err ? quiver_error_message(err) : "");
        return 1;
    }

    long nw = A.concurrency > A.warmup ? A.concurrency : A.warmup;
    struct worker *ws = calloc((size_t)nw, sizeof *ws);
    if (A.warmup > 0) {
        run(ws, A.warmup, 0); /* opens the connections; its failures count like the others */
        atomic_store(&bytes_total, 0);
    }

    double cpu0 = cpu_seconds(NULL);
    double t0 = now();
    deadline = A.duration > 0 ? t0 + A.duration : 0;
    run(ws, A.concurrency, 1);
    double secs = now() - t0;
    long maxrss_kb;
    double cpu = cpu_seconds(&maxrss_kb) - cpu0;

    size_t n = 0;
    for (long i = 0; i < nw; i++) n += ws[i].lat_n;
    double *lat = malloc((n ? n : 1) * sizeof *lat);
    size_t k = 0;
    for (long i = 0; i < nw; i++) {
        memcpy(lat + k, ws[i].lat, ws[i].lat_n * sizeof *lat);
        k += ws[i].lat_n;
    }
    double p50, p99;
    percentiles_ms(lat, n, &p50, &p99);
    char proto[32];
    proto_names(atomic_load(&versions_seen), proto);
    long long bytes = atomic_load(&bytes_total);
    printf("{\"client\": \"%s\", \"requests\": %zu, \"failures\": %lld, \"seconds\": %.6f, \"rps\": %.3f, "
           "\"p50_ms\": %.4f, \"p99_ms\": %.4f, \"cpu_s_per_10k\": %.5f, \"peak_rss_bytes\": %ld, "
           "\"warmup\": %ld, \"bytes\": %lld, \"mb_per_s\": %.3f, \"proto\": \"%s\", \"note\": null, "
           "\"quiver\": \"%s\"}\n",
           A.client, n, atomic_load(&failures), secs, n / secs, p50, p99, n ? cpu * 1e4 / n : 0.0,
           maxrss_kb * 1024L, A.warmup, bytes, bytes / secs / 1e6, proto, quiver_version());
    fflush(stdout);

    quiver_client_free(client); /* waits for nothing: every callback has run */
    for (long i = 0; i < nw; i++) free(ws[i].lat);
    free(ws);
    free(lat);
    free(body);
    return 0;
}
