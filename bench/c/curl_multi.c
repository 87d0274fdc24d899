/*
 * curl_multi: the libcurl peer of Quiver's benchmark harness (multi interface, C).
 *
 * One run: N requests kept C at a time in one curl multi handle, every response verified
 * (status 2xx and body length), one JSON line on stdout. Same flags and JSON keys as
 * quiver-bench-rust (see bench/README.md, "The client contract"):
 *
 *   curl_multi --url URL [--requests N] [--concurrency C] [--ca FILE]
 *              [--protocol auto|http1|http2] [--expect-len BYTES] [--method GET|POST]
 *              [--body-len B] [--duration SECS] [--pool-size P] [--warmup W] [--stream]
 *              [--client NAME]
 *
 * Pool: CURLMOPT_MAX_HOST_CONNECTIONS = pool size (default: the concurrency); transfers beyond
 * it wait inside libcurl. HTTP/2: one multiplexed connection (CURLOPT_PIPEWAIT), h2 over TLS
 * by ALPN, h2c by prior knowledge. Bodies: without --stream every body is copied into a
 * per-transfer buffer (like a client that returns the whole body); with --stream it is only
 * counted as it arrives.
 *
 * Build: gcc -O2 -o curl_multi curl_multi.c $(pkg-config --cflags --libs libcurl)
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <inttypes.h>

#include "bench_common.h"

struct xfer {
    CURL *easy;
    char *buf;
    size_t len, cap;
    double started;
    int stream;
};

static char *body;
static struct curl_slist *headers;
static long long failures, bytes_total;
static unsigned versions_seen;
static double *lat;        /* latencies of the timed section, seconds */
static size_t lat_n, lat_cap;

static void record(double v) {
    if (lat_n == lat_cap) {
        lat_cap = lat_cap ? lat_cap * 2 : 65536;
        lat = realloc(lat, lat_cap * sizeof *lat);
        if (!lat) { fprintf(stderr, "out of memory\n"); exit(1); }
    }
    lat[lat_n++] = v;
}

static size_t on_data(char *p, size_t size, size_t n, void *ud) {
    struct xfer *x = ud;
    size_t len = size * n;
    if (!x->stream) {
        if (x->len + len > x->cap) {
            size_t cap = x->cap ? x->cap : 16384;
            while (cap < x->len + len) cap *= 2;
            char *b = realloc(x->buf, cap);
            if (!b) return 0; /* aborts the transfer: counted as a failure */
            x->buf = b;
            x->cap = cap;
        }
        memcpy(x->buf + x->len, p, len);
    }
    x->len += len;
    return len;
}

/* libcurl before 8 (Debian 12 has 7.88.1) fails every request after the first on a reused
 * prior-knowledge h2c connection ("Error in the HTTP2 framing layer"); its Upgrade path works.
 * So h2c goes through `Upgrade: h2c` there (one HTTP/1.1 round trip per connection). */
static int h2c_upgrade(void) {
    return curl_version_info(CURLVERSION_NOW)->version_num < 0x080000;
}

static void setup_easy(struct xfer *x) {
    CURL *e = curl_easy_init();
    if (!e) { fprintf(stderr, "curl_easy_init failed\n"); exit(1); }
    x->easy = e;
    x->stream = A.stream;
    curl_easy_setopt(e, CURLOPT_URL, A.url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    if (A.ca) curl_easy_setopt(e, CURLOPT_CAINFO, A.ca);
    /* verification stays on (the defaults): peer and host name */
    int tls = !strncmp(A.url, "https:", 6);
    if (!strcmp(A.protocol, "http1"))
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    else if (!strcmp(A.protocol, "http3"))
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, 31L /* CURL_HTTP_VERSION_3ONLY */);
    else if (!strcmp(A.protocol, "http2"))
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                         (long)(tls ? CURL_HTTP_VERSION_2TLS
                                : h2c_upgrade() ? CURL_HTTP_VERSION_2_0 /* Upgrade: h2c */
                                : CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE));
    if (strcmp(A.protocol, "http1")) curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    if (!strcmp(A.method, "POST")) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)A.body_len);
    } else if (strcmp(A.method, "GET")) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, A.method);
        if (A.body_len) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)A.body_len);
        }
    }
}

/* Checks a finished transfer; returns 1 when it is a success. */
static int verify(struct xfer *x, CURLcode rc) {
    long status = 0, ver = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &ver);
    int ok = rc == CURLE_OK && status >= 200 && status < 300 &&
             (A.expect_len < 0 || (long long)x->len == A.expect_len);
    if (ok) {
        bytes_total += x->len;
        versions_seen |= ver == CURL_HTTP_VERSION_2_0 ? 2 : ver == 30 /* CURL_HTTP_VERSION_3 */ ? 4 : 1;
    } else if (failures++ == 0) {
        if (rc != CURLE_OK)
            fprintf(stderr, "request failed: %s\n", curl_easy_strerror(rc));
        else
            fprintf(stderr, "bad response: status %ld, %zu bytes (expected %lld)\n", status, x->len, A.expect_len);
    }
    return ok;
}

/* Runs `total` requests, `inflight` at a time, until done or the deadline; records latencies. */
static long long run(CURLM *m, struct xfer *xs, long inflight, long long total, double deadline,
                     int timed) {
    long long started = 0, done = 0;
    for (long i = 0; i < inflight && started < total; i++, started++) {
        xs[i].len = 0;
        xs[i].started = now();
        curl_multi_add_handle(m, xs[i].easy);
    }
    int running = 1;
    while (done < started) {
        CURLMcode mc = curl_multi_perform(m, &running);
        if (mc != CURLM_OK) { fprintf(stderr, "curl_multi_perform: %s\n", curl_multi_strerror(mc)); exit(1); }
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            struct xfer *x;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            CURLcode rc = msg->data.result;
            double t = now();
            verify(x, rc);
            if (timed) record(t - x->started);
            done++;
            curl_multi_remove_handle(m, x->easy);
            if (started < total && (deadline <= 0 || t < deadline)) {
                x->len = 0;
                x->started = now();
                curl_multi_add_handle(m, x->easy);
                started++;
            }
        }
        if (done < started) {
            mc = curl_multi_poll(m, NULL, 0, 1000, NULL);
            if (mc != CURLM_OK) { fprintf(stderr, "curl_multi_poll: %s\n", curl_multi_strerror(mc)); exit(1); }
        }
    }
    return done;
}

int main(int argc, char **argv) {
    parse_args(argc, argv, "curl_multi", "curl-multi");
    if (!strcmp(A.protocol, "http3") &&
        !(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP3)) {
        fprintf(stderr, "libcurl %s has no HTTP/3\n", curl_version_info(CURLVERSION_NOW)->version);
        return 3; /* "cannot do that": reported as n/a */
    }
    if (curl_global_init(CURL_GLOBAL_ALL)) { fprintf(stderr, "curl_global_init failed\n"); return 1; }
    body = malloc(A.body_len + 1);
    memset(body, 'x', A.body_len);
    headers = curl_slist_append(NULL, "Expect:"); /* no 100-continue round trip on big POSTs */

    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, A.pool_size);
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, A.pool_size);
    curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);

    long nx = A.concurrency > A.warmup ? A.concurrency : A.warmup;
    struct xfer *xs = calloc((size_t)nx, sizeof *xs);
    for (long i = 0; i < nx; i++) setup_easy(&xs[i]);

    if (A.warmup > 0) {
        run(m, xs, A.warmup, A.warmup, 0, 0); /* its failures count like the others */
        bytes_total = 0;
    }

    double cpu0 = cpu_seconds(NULL);
    double t0 = now();
    long long n = run(m, xs, A.concurrency, A.requests, A.duration > 0 ? t0 + A.duration : 0, 1);
    double secs = now() - t0;
    long maxrss_kb;
    double cpu = cpu_seconds(&maxrss_kb) - cpu0;

    double p50, p99;
    percentiles_ms(lat, (size_t)n, &p50, &p99);
    char proto[32];
    proto_names(versions_seen, proto);
    printf("{\"client\": \"%s\", \"requests\": %lld, \"failures\": %lld, \"seconds\": %.6f, \"rps\": %.3f, "
           "\"p50_ms\": %.4f, \"p99_ms\": %.4f, \"cpu_s_per_10k\": %.5f, \"peak_rss_bytes\": %ld, "
           "\"warmup\": %ld, \"bytes\": %lld, \"mb_per_s\": %.3f, \"proto\": \"%s\", \"note\": %s, "
           "\"libcurl\": \"%s\"}\n",
           A.client, n, failures, secs, n / secs, p50, p99, n ? cpu * 1e4 / n : 0.0, maxrss_kb * 1024L,
           A.warmup, bytes_total, bytes_total / secs / 1e6, proto,
           !strcmp(A.protocol, "http2") && strncmp(A.url, "https:", 6) && h2c_upgrade()
               ? "\"h2c by Upgrade, not prior knowledge: libcurl 7.x breaks prior-knowledge connection reuse\""
               : "null",
           curl_version_info(CURLVERSION_NOW)->version);

    for (long i = 0; i < nx; i++) {
        curl_multi_remove_handle(m, xs[i].easy);
        curl_easy_cleanup(xs[i].easy);
        free(xs[i].buf);
    }
    curl_multi_cleanup(m);
    curl_slist_free_all(headers);
    curl_global_cleanup();
    free(lat);
    free(xs);
    free(body);
    return 0;
}
