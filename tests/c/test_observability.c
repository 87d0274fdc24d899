/* Observability from C: the event callback (every event kind, on real requests: a fresh and a
 * reused connection, TLS and HTTP/2 streams, HTTP/3, retries, redirects, failures, GOAWAY),
 * events delivered through a completion queue, response timings (one-shot and streamed) and
 * progress records (a streamed upload and a large download, read while they run and at the
 * end). Against the loopback test servers tests/c/run.sh starts (QUIVER_TEST_* variables;
 * QUIVER_TEST_H2C_REFUSE and QUIVER_TEST_H2C_GOAWAY are servers started with
 * --h2-refuse-every 5 and --h2-goaway-after 1). */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_util.h"

static const char *HTTP, *HTTPS, *H3, *CA_FILE, *H2C_REFUSE, *H2C_GOAWAY;
static pthread_t main_thread;

static uint64_t monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- a recorder: the event callback copies each event here (quick, under a mutex) ---- */

typedef struct {
    quiver_event_kind kind;
    char *name, *origin, *protocol, *alpn, *method, *url, *location, *remote, *message, *reason;
    uint64_t request_id, connection_id, time_ns, bytes;
    int64_t stream_id;
    uint16_t status;
    bool reused, resumed, name_matches;
    size_t addresses;
    quiver_result error_kind;
    quiver_class error_class;
    bool on_main_thread;
} rec_event;

typedef struct {
    pthread_mutex_t mu;
    rec_event *events;
    int len, cap;
    /* The client, so that the callback can check that blocking calls are refused there. */
    const quiver_client *client;
    int blocking_checked;
    quiver_result blocking_result;
} recorder;

static void rec_init(recorder *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
}

/* A NUL-terminated copy of (text, len), or NULL; checks the NUL the API promises. */
static char *copy_text(const char *text, size_t len) {
    if (text == NULL) {
        return NULL;
    }
    CHECK(text[len] == '\0' && strlen(text) == len);
    char *s = malloc(len + 1);
    REQUIRE(s != NULL);
    memcpy(s, text, len);
    s[len] = '\0';
    return s;
}

static void rec_free_event(rec_event *e) {
    free(e->name);
    free(e->origin);
    free(e->protocol);
    free(e->alpn);
    free(e->method);
    free(e->url);
    free(e->location);
    free(e->remote);
    free(e->message);
    free(e->reason);
}

static void rec_clear(recorder *r) {
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->len; i++) {
        rec_free_event(&r->events[i]);
    }
    r->len = 0;
    pthread_mutex_unlock(&r->mu);
}

static void rec_destroy(recorder *r) {
    rec_clear(r);
    free(r->events);
    pthread_mutex_destroy(&r->mu);
}

static int rec_len(recorder *r) {
    pthread_mutex_lock(&r->mu);
    int n = r->len;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void on_event(void *userdata, const quiver_event *ev) {
    recorder *r = userdata;
    rec_event e;
    memset(&e, 0, sizeof e);
    e.kind = ev->kind;
    e.name = copy_text(ev->name, strlen(ev->name));
    e.name_matches = strcmp(ev->name, quiver_event_kind_str(ev->kind)) == 0;
    e.origin = copy_text(ev->origin, ev->origin_len);
    e.protocol = ev->protocol ? copy_text(ev->protocol, strlen(ev->protocol)) : NULL;
    e.alpn = copy_text(ev->alpn, ev->alpn_len);
    e.method = copy_text(ev->method, ev->method_len);
    e.url = copy_text(ev->url, ev->url_len);
    e.location = copy_text(ev->location, ev->location_len);
    e.remote = copy_text(ev->remote, ev->remote_len);
    e.message = copy_text(ev->error_message, ev->error_message_len);
    e.reason = copy_text(ev->reason, ev->reason_len);
    e.request_id = ev->request_id;
    e.connection_id = ev->connection_id;
    e.stream_id = ev->stream_id;
    e.time_ns = ev->time_ns;
    e.bytes = ev->bytes;
    e.status = ev->status;
    e.reused = ev->reused;
    e.resumed = ev->resumed;
    e.addresses = ev->addresses;
    e.error_kind = ev->error_kind;
    e.error_class = ev->error_class;
    e.on_main_thread = pthread_equal(pthread_self(), main_thread);

    pthread_mutex_lock(&r->mu);
    int check_blocking = r->client != NULL && !r->blocking_checked;
    r->blocking_checked = 1;
    if (r->len == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->events = realloc(r->events, (size_t)r->cap * sizeof *r->events);
        REQUIRE(r->events != NULL);
    }
    r->events[r->len++] = e;
    pthread_mutex_unlock(&r->mu);

    if (check_blocking) {
        /* Blocking calls are refused here, without sending anything. */
        quiver_response *resp = NULL;
        quiver_result got = quiver_client_send_blocking(
            r->client, quiver_request_new("GET", "http://127.0.0.1:1/"), &resp, NULL);
        pthread_mutex_lock(&r->mu);
        r->blocking_result = got;
        pthread_mutex_unlock(&r->mu);
        quiver_response_free(resp);
    }
}

/* The index of the first event of `kind` (for `request_id` when non-zero), or -1. The caller
 * holds no lock; events are only appended, so indexes stay valid until rec_clear. */
static int rec_find(recorder *r, quiver_event_kind kind, uint64_t request_id, int from) {
    pthread_mutex_lock(&r->mu);
    int found = -1;
    for (int i = from; i < r->len; i++) {
        if (r->events[i].kind == kind &&
            (request_id == 0 || r->events[i].request_id == request_id)) {
            found = i;
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return found;
}

static int rec_count(recorder *r, quiver_event_kind kind) {
    pthread_mutex_lock(&r->mu);
    int n = 0;
    for (int i = 0; i < r->len; i++) {
        n += r->events[i].kind == kind;
    }
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* A shallow copy of event `i` (its strings stay valid until rec_clear). */
static rec_event rec_at(recorder *r, int i) {
    pthread_mutex_lock(&r->mu);
    REQUIRE(i >= 0 && i < r->len);
    rec_event e = r->events[i];
    pthread_mutex_unlock(&r->mu);
    return e;
}

/* The first event of `kind` (for `request_id` when non-zero); REQUIREs that there is one. */
static rec_event rec_first(recorder *r, quiver_event_kind kind, uint64_t request_id) {
    int i = rec_find(r, kind, request_id, 0);
    if (i < 0) {
        fprintf(stderr, "no %s event (request %llu)\n", quiver_event_kind_str(kind),
                (unsigned long long)request_id);
        exit(1);
    }
    return rec_at(r, i);
}

/* Waits (polling) until an event of `kind` for `connection_id` (0: any) was recorded. */
static int rec_wait_for(recorder *r, quiver_event_kind kind, uint64_t connection_id,
                        long timeout_ms) {
    double deadline = now_ms() + (double)(timeout_ms * slow_factor());
    for (;;) {
        pthread_mutex_lock(&r->mu);
        int found = 0;
        for (int i = 0; i < r->len && !found; i++) {
            found = r->events[i].kind == kind &&
                    (connection_id == 0 || r->events[i].connection_id == connection_id);
        }
        pthread_mutex_unlock(&r->mu);
        if (found) return 1;
        if (now_ms() >= deadline) return 0;
        sleep_ms(10);
    }
}

/* The kinds of one request's events, in order, as "a,b,c" (into buf). */
static const char *rec_request_kinds(recorder *r, uint64_t request_id, char *buf, size_t cap) {
    buf[0] = '\0';
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->len; i++) {
        if (r->events[i].request_id == request_id) {
            if (buf[0] != '\0') strncat(buf, ",", cap - strlen(buf) - 1);
            strncat(buf, r->events[i].name, cap - strlen(buf) - 1);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return buf;
}

/* The kinds of one connection's own events (no request), in order. */
static const char *rec_connection_kinds(recorder *r, uint64_t connection_id, char *buf,
                                        size_t cap) {
    buf[0] = '\0';
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->len; i++) {
        if (r->events[i].request_id == 0 && r->events[i].connection_id == connection_id) {
            if (buf[0] != '\0') strncat(buf, ",", cap - strlen(buf) - 1);
            strncat(buf, r->events[i].name, cap - strlen(buf) - 1);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return buf;
}

#define CHECK_KINDS(got, want)                                                          \
    do {                                                                                \
        const char *g_ = (got);                                                         \
        if (strcmp(g_, (want)) != 0) {                                                  \
            fprintf(stderr, "%s:%d: %s: events\n  got  %s\n  want %s\n", __FILE__,      \
                    __LINE__, __func__, g_, (want));                                    \
            test_failures++;                                                            \
        }                                                                               \
    } while (0)

/* Every event: well-formed, named as quiver_event_kind_str names its kind, and ordered in time
 * within each request and connection. */
static void check_well_formed(recorder *r) {
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->len; i++) {
        rec_event *e = &r->events[i];
        CHECK(e->kind != QUIVER_EVENT_KIND_UNKNOWN);
        CHECK(e->name_matches);
        CHECK(e->origin != NULL && strstr(e->origin, "://") != NULL);
        CHECK(e->time_ns > 0);
        if (e->request_id == 0) {
            CHECK(e->stream_id == -1);
        }
        for (int j = 0; j < i; j++) {
            rec_event *p = &r->events[j];
            int same = (e->request_id != 0 && p->request_id == e->request_id) ||
                       (e->request_id == 0 && p->request_id == 0 && e->connection_id != 0 &&
                        p->connection_id == e->connection_id);
            if (same && p->time_ns > e->time_ns) {
                fprintf(stderr, "  out of order: %s after %s\n", e->name, p->name);
                test_failures++;
            }
        }
    }
    pthread_mutex_unlock(&r->mu);
}

static quiver_config *base_config(recorder *r) {
    quiver_config *config = quiver_config_new();
    REQUIRE(config != NULL);
    CHECK_RESULT(quiver_config_set_bool(config, NULL, "proxy_from_env", false), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_str(config, NULL, "ca_file", CA_FILE), QUIVER_RESULT_OK);
    if (r != NULL) {
        CHECK_RESULT(quiver_config_set_event_callback(config, on_event, r), QUIVER_RESULT_OK);
    }
    return config;
}


static quiver_timings timings_of(const quiver_response *resp) {
    quiver_timings t;
    memset(&t, 0, sizeof t);
    CHECK_RESULT(quiver_response_timings(resp, &t), QUIVER_RESULT_OK);
    return t;
}

/* Whether `needle` occurs in the `len` bytes at `data`. */
static int contains(const uint8_t *data, size_t len, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(data + i, needle, n) == 0) return 1;
    }
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ---- HTTP/1.1: a fresh connection, then the same one again ---- */

static void test_http1_fresh_then_reused(void) {
    recorder rec;
    rec_init(&rec);
    quiver_config *config = base_config(&rec);
    const quiver_client *client = new_client(config);
    quiver_config_free(config);
    rec.client = client;
    char kinds[1024];

    char *url = format("%s/echo", HTTP);
    uint64_t before = monotonic_ns();
    quiver_response *resp = fetch(client, "POST", url, "hello", NULL);
    uint64_t after = monotonic_ns();
    REQUIRE(resp != NULL);

    rec_event s = rec_first(&rec, QUIVER_EVENT_KIND_REQUEST_START, 0);
    uint64_t id = s.request_id;
    CHECK(id != 0 && s.connection_id == 0);
    CHECK(s.method != NULL && strcmp(s.method, "POST") == 0);
    CHECK(s.url != NULL && strcmp(s.url, url) == 0);
    CHECK(strcmp(s.origin, HTTP) == 0);
    /* Event times are CLOCK_MONOTONIC readings, comparable with the program's own. */
    CHECK(s.time_ns + 1000000 >= before && s.time_ns <= after + 1000000);
    CHECK_KINDS(rec_request_kinds(&rec, id, kinds, sizeof kinds),
                "request_start,queued,connection_acquired,headers_sent,body_sent,"
                "response_headers,response_end");
    uint64_t conn = rec_first(&rec, QUIVER_EVENT_KIND_CONNECTION_OPENED, 0).connection_id;
    CHECK(conn != 0);
    CHECK_KINDS(rec_connection_kinds(&rec, conn, kinds, sizeof kinds),
                "dns_resolved,connected,connection_opened");
    CHECK(rec_first(&rec, QUIVER_EVENT_KIND_DNS_RESOLVED, 0).addresses >= 1);
    rec_event connected = rec_first(&rec, QUIVER_EVENT_KIND_CONNECTED, 0);
    CHECK(connected.remote != NULL && strncmp(connected.remote, "127.0.0.1:", 10) == 0);
    CHECK(connected.request_id == 0 && connected.connection_id == conn);
    rec_event acquired = rec_first(&rec, QUIVER_EVENT_KIND_CONNECTION_ACQUIRED, id);
    CHECK(!acquired.reused && acquired.connection_id == conn);
    CHECK(rec_first(&rec, QUIVER_EVENT_KIND_BODY_SENT, id).bytes == 5);
    rec_event head = rec_first(&rec, QUIVER_EVENT_KIND_RESPONSE_HEADERS, id);
    CHECK(head.status == 200 && head.connection_id == conn && head.stream_id == -1);
    CHECK(head.protocol != NULL && strcmp(head.protocol, "http1") == 0);
    CHECK(rec_first(&rec, QUIVER_EVENT_KIND_RESPONSE_END, id).bytes == 5);

    quiver_timings t = timings_of(resp);
    CHECK(!t.reused && t.dns_ns >= 0 && t.connect_ns >= 0 && t.tls_ns == -1);
    CHECK(t.connection_id == conn);
    CHECK(t.ttfb_ns >= t.queued_ns && t.ttfb_ns > 0);
    CHECK(t.total_ns >= t.ttfb_ns);
    CHECK(t.redirects_ns == 0);
    CHECK(t.protocol != NULL && strcmp(t.protocol, "http1") == 0);
    CHECK(t.stream_id == -1 && t.alpn == NULL && t.alpn_len == 0 && !t.resumed);
    CHECK(t.remote != NULL && t.remote_len == strlen(t.remote) &&
          strncmp(t.remote, "127.0.0.1:", 10) == 0);
    /* What the program measured around the call bounds the total. */
    CHECK((uint64_t)t.total_ns <= after - before);
    quiver_response_free(resp);
    free(url);

    /* The same connection again: no dial, reused, no queueing. */
    rec_clear(&rec);
    url = format("%s/bytes/100", HTTP);
    resp = fetch(client, "GET", url, NULL, NULL);
    REQUIRE(resp != NULL);
    id = rec_first(&rec, QUIVER_EVENT_KIND_REQUEST_START, 0).request_id;
    CHECK_KINDS(rec_request_kinds(&rec, id, kinds, sizeof kinds),
                "request_start,connection_acquired,headers_sent,body_sent,response_headers,"
                "response_end");
    CHECK(rec_first(&rec, QUIVER_EVENT_KIND_CONNECTION_ACQUIRED, id).reused);
    CHECK(rec_count(&rec, QUIVER_EVENT_KIND_DNS_RESOLVED) == 0);
    CHECK(rec_first(&rec, QUIVER_EVENT_KIND_RESPONSE_END, id).bytes == 100);
    t = timings_of(resp);
    CHECK(t.reused && t.dns_ns == -1 && t.connect_ns == -1 && t.tls_ns == -1);
    CHECK(t.connection_id == conn);
    CHECK(t.total_ns >= t.ttfb_ns && t.ttfb_ns >= t.queued_ns);
    quiver_response_free(resp);
    free(url);

    /* A blocking call from the event callback was refused. */
    pthread_mutex_lock(&rec.mu);
    CHECK(rec.blocking_checked && rec.blocking_result == QUIVER_RESULT_WOULD_DEADLOCK);
    pthread_mutex_unlock(&rec.mu);

    /* Closing the client closes the connection, which says why. */
    CHECK_RESULT(quiver_client_close(client), QUIVER_RESULT_OK);
    CHECK(rec_wait_for(&rec, QUIVER_EVENT_KIND_CONNECTION_CLOSED, conn, 5000));
    rec_event closed = rec_first(&rec, QUIVER_EVENT_KIND_CONNECTION_CLOSED, 0);
    CHECK(closed.reason != NULL && closed.reason[0] != '\0' && closed.request_id == 0);
    for (int i = 0; i < rec_len(&rec); i++) {
        CHECK(!rec_at(&rec, i).on_main_thread);
    }
    check_well_formed(&rec);

    /* Once quiver_client_free returned, nothing more reaches the callback. */
    quiver_client_free(client);
    int n = rec_len(&rec);
    sleep_ms(100);
    CHECK(rec_len(&rec) == n);
    rec_destroy(&rec);
    printf("http1: fresh then reused connection: ok\n");
}

/* ---- TLS and HTTP/2 streams; a streamed response's timings and download progress ---- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const quiver_progress *progress;
    quiver_timings at_head;
    int heads, data_calls, ends, paused, resumed, progress_ok;
    size_t bytes;
    quiver_error *error;
} stream_state;

static void st_head(void *userdata, const quiver_stream *stream, const quiver_response *head) {
    (void)stream;
    stream_state *s = userdata;
    pthread_mutex_lock(&s->mu);
    s->heads++;
    CHECK_RESULT(quiver_response_timings(head, &s->at_head), QUIVER_RESULT_OK);
    pthread_mutex_unlock(&s->mu);
}

static void st_data(void *userdata, const quiver_stream *stream, const uint8_t *data,
                    size_t len) {
    (void)data;
    stream_state *s = userdata;
    uint64_t downloaded = 0;
    int64_t total = 0;
    CHECK_RESULT(quiver_progress_get(s->progress, NULL, NULL, &downloaded, &total),
                 QUIVER_RESULT_OK);
    pthread_mutex_lock(&s->mu);
    s->bytes += len;
    s->data_calls++;
    /* The chunk being delivered has been taken: counted already. */
    if (downloaded != s->bytes || total != 1000000) {
        s->progress_ok = 0;
    }
    if (s->data_calls == 1) {
        quiver_stream_pause(stream);
        s->paused = 1;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

static void st_end(void *userdata, const quiver_stream *stream, quiver_error *error) {
    (void)stream;
    stream_state *s = userdata;
    pthread_mutex_lock(&s->mu);
    s->ends++;
    s->error = error;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Waits until `*flag` (guarded by s->mu) is set, at most `timeout_ms` (times QUIVER_TEST_SLOW). */
static int st_wait(stream_state *s, const int *flag, long timeout_ms) {
    return wait_count(&s->mu, flag, 1, timeout_ms);
}

static void test_tls_and_http2_streams(void) {
    recorder rec;
    rec_init(&rec);
    quiver_config *config = base_config(&rec);
    const quiver_client *client = new_client(config);
    quiver_config_free(config);

    char *url = format("%s/bytes/10", HTTPS);
    quiver_response *resp = fetch(client, "GET", url, NULL, NULL);
    REQUIRE(resp != NULL);
    rec_event tls = rec_first(&rec, QUIVER_EVENT_KIND_TLS_DONE, 0);
    CHECK(tls.alpn != NULL && strcmp(tls.alpn, "h2") == 0 && !tls.resumed);
    CHECK(tls.request_id == 0 && tls.connection_id != 0);
    rec_event connected = rec_first(&rec, QUIVER_EVENT_KIND_CONNECTED, 0);
    CHECK(connected.remote != NULL && connected.connection_id == tls.connection_id);
    quiver_timings t = timings_of(resp);
    CHECK(t.protocol != NULL && strcmp(t.protocol, "http2") == 0);
    CHECK(t.alpn != NULL && t.alpn_len == 2 && memcmp(t.alpn, "h2", 2) == 0);
    CHECK(t.stream_id == 1 && !t.reused && !t.resumed);
    CHECK(t.dns_ns >= 0 && t.connect_ns >= 0 && t.tls_ns >= 0);
    CHECK(t.ttfb_ns >= t.queued_ns && t.total_ns >= t.ttfb_ns);
    CHECK(t.connection_id == tls.connection_id);
    rec_event head = rec_first(&rec, QUIVER_EVENT_KIND_RESPONSE_HEADERS, 0);
    CHECK(head.stream_id == 1 && head.status == 200);
    CHECK(head.protocol != NULL && strcmp(head.protocol, "http2") == 0);
    quiver_response_free(resp);

    /* A second request: the next stream on the same connection. */
    resp = fetch(client, "GET", url, NULL, NULL);
    REQUIRE(resp != NULL);
    t = timings_of(resp);
    CHECK(t.stream_id == 3 && t.reused && t.tls_ns == -1 && t.dns_ns == -1);
    CHECK(t.connection_id == tls.connection_id);
    quiver_response_free(resp);
    free(url);

    /* A streamed response: timings from on_head on, total once it ended; the download's
     * progress read in on_data and, while the stream is paused, from this thread. */
    stream_state s;
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    s.progress_ok = 1;
    s.progress = quiver_progress_new();
    REQUIRE(s.progress != NULL);
    url = format("%s/bytes/1000000", HTTPS);
    quiver_request *req = quiver_request_new("GET", url);
    CHECK_RESULT(quiver_request_set_progress(req, s.progress), QUIVER_RESULT_OK);
    const quiver_stream *stream = NULL;
    CHECK_RESULT(quiver_client_stream(client, req, st_head, st_data, st_end, &s, &stream),
                 QUIVER_RESULT_OK);
    CHECK(st_wait(&s, &s.paused, 10000));
    uint64_t uploaded = 1, downloaded = 0;
    int64_t upload_total = 0, download_total = 0;
    CHECK_RESULT(quiver_progress_get(s.progress, &uploaded, &upload_total, &downloaded,
                                     &download_total),
                 QUIVER_RESULT_OK);
    CHECK(downloaded > 0 && downloaded < 1000000 && download_total == 1000000);
    CHECK(uploaded == 0 && upload_total == 0);
    quiver_stream_resume(stream);
    CHECK(st_wait(&s, &s.ends, 20000));
    pthread_mutex_lock(&s.mu);
    CHECK(s.heads == 1 && s.ends == 1 && s.error == NULL && s.bytes == 1000000);
    CHECK(s.progress_ok);
    CHECK(s.at_head.total_ns == -1 && s.at_head.ttfb_ns >= 0);
    CHECK(s.at_head.stream_id == 5 && s.at_head.reused);
    CHECK(s.at_head.protocol != NULL && strcmp(s.at_head.protocol, "http2") == 0);
    pthread_mutex_unlock(&s.mu);
    print_error("stream", s.error);
    quiver_error_free(s.error);
    const quiver_response *streamed = quiver_stream_response(stream);
    REQUIRE(streamed != NULL);
    t = timings_of(streamed);
    CHECK(t.total_ns >= t.ttfb_ns && t.ttfb_ns >= 0 && t.stream_id == 5);
    CHECK_RESULT(quiver_progress_get(s.progress, NULL, NULL, &downloaded, &download_total),
                 QUIVER_RESULT_OK);
    CHECK(downloaded == 1000000 && download_total == 1000000);
    quiver_stream_free(stream);
    quiver_progress_free(s.progress);
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
    free(url);

    check_well_formed(&rec);
    quiver_client_free(client);
    rec_destroy(&rec);
    printf("tls and http2 streams: ok\n");
}

/* ---- HTTP/3 ---- */

static void test_http3(void) {
    if (H3 == NULL) {
        printf("http3: not served here, skipped\n");
        return;
    }
    recorder rec;
    rec_init(&rec);
    quiver_config *config = base_config(&rec);
    CHECK_RESULT(quiver_config_set_str(config, H3, "protocol", "http3"), QUIVER_RESULT_OK);
    const quiver_client *client = new_client(config);
    quiver_config_free(config);
    char *url = format("%s/bytes/10", H3);
    quiver_response *resp = fetch(client, "GET", url, NULL, NULL);
    REQUIRE(resp != NULL);
    const quiver_event_kind want[] = {
        QUIVER_EVENT_KIND_REQUEST_START,     QUIVER_EVENT_KIND_DNS_RESOLVED,
        QUIVER_EVENT_KIND_CONNECTED,         QUIVER_EVENT_KIND_CONNECTION_OPENED,
        QUIVER_EVENT_KIND_CONNECTION_ACQUIRED, QUIVER_EVENT_KIND_HEADERS_SENT,
        QUIVER_EVENT_KIND_BODY_SENT,         QUIVER_EVENT_KIND_RESPONSE_HEADERS,
        QUIVER_EVENT_KIND_RESPONSE_END,
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (rec_find(&rec, want[i], 0, 0) < 0) {
            fprintf(stderr, "  http3: no %s event\n", quiver_event_kind_str(want[i]));
            test_failures++;
        }
    }
    quiver_timings t = timings_of(resp);
    CHECK(t.protocol != NULL && strcmp(t.protocol, "http3") == 0);
    CHECK(t.alpn != NULL && strcmp(t.alpn, "h3") == 0);
    CHECK(t.connect_ns >= 0 && t.tls_ns == -1 && t.stream_id >= 0 && !t.reused);
    CHECK(t.total_ns >= t.ttfb_ns && t.ttfb_ns >= t.queued_ns);
    rec_event head = rec_first(&rec, QUIVER_EVENT_KIND_RESPONSE_HEADERS, 0);
    CHECK(head.stream_id == t.stream_id && head.connection_id == t.connection_id);
    CHECK(head.protocol != NULL && strcmp(head.protocol, "http3") == 0);
    quiver_response_free(resp);
    free(url);
    check_well_formed(&rec);
    quiver_client_free(client);
    rec_destroy(&rec);
    printf("http3: ok\n");
}

/* ---- retries: streams refused by the server (HTTP/2), a stale keep-alive connection ---- */

static uint64_t total_stat(const quiver_client *client, quiver_stat stat) {
    quiver_stats *stats = NULL;
    CHECK_RESULT(quiver_client_stats(client, &stats), QUIVER_RESULT_OK);
    uint64_t v = quiver_stats_total(stats, stat);
    quiver_stats_free(stats);
    return v;
}

static void test_retried(void) {
    if (H2C_REFUSE == NULL) {
        printf("retried (refused streams): no --h2-refuse-every server, skipped\n");
    } else {
        recorder rec;
        rec_init(&rec);
        quiver_config *config = base_config(&rec);
        CHECK_RESULT(quiver_config_set_str(config, NULL, "protocol", "http2"), QUIVER_RESULT_OK);
        const quiver_client *client = new_client(config);
        quiver_config_free(config);
        char *url = format("%s/health", H2C_REFUSE);
        for (int i = 0; i < 10; i++) {
            quiver_response_free(fetch(client, "GET", url, NULL, NULL));
        }
        free(url);
        int retried = 0;
        for (int i = rec_find(&rec, QUIVER_EVENT_KIND_RETRIED, 0, 0); i >= 0;
             i = rec_find(&rec, QUIVER_EVENT_KIND_RETRIED, 0, i + 1)) {
            rec_event e = rec_at(&rec, i);
            CHECK(e.error_kind == QUIVER_RESULT_REFUSED_STREAM);
            CHECK(e.error_class == QUIVER_CLASS_TRANSIENT && e.request_id != 0);
            retried++;
        }
        CHECK(retried >= 1);
        CHECK(total_stat(client, QUIVER_STAT_RETRIES) == (uint64_t)retried);
        check_well_formed(&rec);
        quiver_client_free(client);
        rec_destroy(&rec);
    }

    /* HTTP/1.1: the server drops the next request on the connection without a byte. */
    recorder rec;
    rec_init(&rec);
    quiver_config *config = base_config(&rec);
    CHECK_RESULT(quiver_config_set_int(config, NULL, "size", 1), QUIVER_RESULT_OK);
    const quiver_client *client = new_client(config);
    quiver_config_free(config);
    char *url = format("%s/drop-next", HTTP);
    quiver_response_free(fetch(client, "GET", url, NULL, NULL));
    free(url);
    rec_clear(&rec);
    url = format("%s/conn", HTTP);
    quiver_response *resp = fetch(client, "GET", url, NULL, NULL);
    CHECK(resp != NULL && quiver_response_status(resp) == 200);
    rec_event r = rec_first(&rec, QUIVER_EVENT_KIND_RETRIED, 0);
    CHECK(r.error_kind != QUIVER_RESULT_OK && r.error_class == QUIVER_CLASS_TRANSIENT);
    uint64_t id = rec_first(&rec, QUIVER_EVENT_KIND_REQUEST_START, 0).request_id;
    CHECK(r.request_id == id);
    /* The retry went on a fresh connection. */
    CHECK(timings_of(resp).connection_id != rec_first(&rec, QUIVER_EVENT_KIND_CONNECTION_ACQUIRED,
                                                      id).connection_id);
    quiver_response_free(resp);
    free(url);
    check_well_formed(&rec);
    quiver_client_free(client);
    rec_destroy(&rec);
    printf("retried: ok\n");
}

/* ---- GOAWAY ---- */

static void test_goaway(void) {
    if (H2C_GOAWAY == NULL) {
        printf("goaway: no --h2-goaway-after server, skipped\n");
        return;
    }
    recorder rec;
    rec_init(&rec);
    quiver_config *config = base_config(&rec);
    CHECK_RESULT(quiver_config_set_str(config, NULL, "protocol", "http2"), QUIVER_RESULT_OK);
    const quiver_client *client = new_client(config);
    quiver_config_free(config);
    /* Each connection carries one stream, then the server sends GOAWAY and closes it; the
     * client hears the GOAWAY unless the close overtakes it, so try a few connections. */
    char *url = format("%s/health", H2C_GOAWAY);
    int seen = 0;
    for (int i = 0; i < 20 && !seen; i++) {
        quiver_response_free(fetch(client, "GET", url, NULL, NULL));
        seen = rec_wait_for(&rec, QUIVER_EVENT_KIND_GOAWAY, 0, 200);
    }
    free(url);
    CHECK(seen);
    int i = rec_find(&rec, QUIVER_EVENT_KIND_GOAWAY, 0, 0);
    if (i >= 0) {
        rec_event g = rec_at(&rec, i);
        CHECK(g.request_id == 0 && g.connection_id != 0);
        CHECK(g.protocol != NULL && strcmp(g.protocol, "http2") == 0);
        /* The drained connection closes. */
        CHECK(rec_wait_for(&rec, QUIVER_EVENT_KIND_CONNECTION_CLOSED, g.connection_id, 5000));
    }
    check_well_formed(&rec);
    quiver_client_free(client);
    rec_destroy(&rec);
    printf("goaway: ok\n");
}

/* ---- redirects and failures ---- */


static void test_redirects_and_failures(void) {
    recorder rec;
    rec_init(&rec);
    quiver_config *config = base_config(&rec);
    const quiver_client *client = new_client(config);
    quiver_config_free(config);

    char *url = format("%s/redirect/2", HTTP);
    quiver_response *resp = fetch(client, "GET", url, NULL, NULL);
    REQUIRE(resp != NULL);
    CHECK(quiver_response_status(resp) == 200);
    CHECK(rec_count(&rec, QUIVER_EVENT_KIND_REDIRECTED) == 2);
    int first = rec_find(&rec, QUIVER_EVENT_KIND_REDIRECTED, 0, 0);
    int second = rec_find(&rec, QUIVER_EVENT_KIND_REDIRECTED, 0, first + 1);
    REQUIRE(first >= 0 && second >= 0);
    rec_event a = rec_at(&rec, first), b = rec_at(&rec, second);
    CHECK(a.status == 302 && a.location != NULL && ends_with(a.location, "/redirect/1"));
    CHECK(b.status == 302 && b.location != NULL && ends_with(b.location, "/redirect/0"));
    CHECK(strncmp(b.location, "http://", 7) == 0);
    /* One request id for the whole chain. */
    uint64_t id = rec_first(&rec, QUIVER_EVENT_KIND_REQUEST_START, 0).request_id;
    CHECK(rec_count(&rec, QUIVER_EVENT_KIND_REQUEST_START) == 1);
    for (int i = 0; i < rec_len(&rec); i++) {
        rec_event e = rec_at(&rec, i);
        CHECK(e.request_id == 0 || e.request_id == id);
    }
    quiver_timings t = timings_of(resp);
    CHECK(t.redirects_ns > 0 && t.ttfb_ns >= t.redirects_ns && t.total_ns >= t.ttfb_ns);
    quiver_response_free(resp);
    free(url);

    /* A refused connection: connection_failed, then request_failed, with the kind. */
    rec_clear(&rec);
    url = format("http://127.0.0.1:%d/", closed_port());
    quiver_error *err = NULL;
    resp = fetch(client, "GET", url, NULL, &err);
    CHECK(resp == NULL);
    CHECK_ERROR(err, QUIVER_RESULT_CONNECT_REFUSED, QUIVER_CLASS_TRANSIENT, "connect_refused");
    quiver_error_free(err);
    rec_event cf = rec_first(&rec, QUIVER_EVENT_KIND_CONNECTION_FAILED, 0);
    CHECK(cf.error_kind == QUIVER_RESULT_CONNECT_REFUSED);
    CHECK(cf.error_class == QUIVER_CLASS_TRANSIENT && cf.request_id == 0);
    CHECK(cf.message != NULL && cf.message[0] != '\0');
    rec_event rf = rec_first(&rec, QUIVER_EVENT_KIND_REQUEST_FAILED, 0);
    CHECK(rf.error_kind == QUIVER_RESULT_CONNECT_REFUSED && rf.request_id != 0);
    CHECK(rf.message != NULL && rf.message[0] != '\0');
    free(url);

    /* A body that fails after its head: request_failed comes last, instead of response_end. */
    rec_clear(&rec);
    url = format("%s/close-mid-body/100000", HTTP);
    resp = fetch(client, "GET", url, NULL, &err);
    CHECK(resp == NULL && err != NULL);
    id = rec_first(&rec, QUIVER_EVENT_KIND_REQUEST_START, 0).request_id;
    char kinds[1024];
    rec_request_kinds(&rec, id, kinds, sizeof kinds);
    CHECK(ends_with(kinds, ",response_headers,request_failed"));
    rf = rec_first(&rec, QUIVER_EVENT_KIND_REQUEST_FAILED, id);
    CHECK(err != NULL && rf.error_kind == quiver_error_code(err));
    CHECK(err != NULL && rf.error_class == quiver_error_class(err));
    CHECK(rec_count(&rec, QUIVER_EVENT_KIND_RESPONSE_END) == 0);
    quiver_error_free(err);
    free(url);

    check_well_formed(&rec);
    quiver_client_free(client);
    rec_destroy(&rec);
    printf("redirects and failures: ok\n");
}

/* ---- events through a completion queue, dispatched on this thread ---- */

typedef struct {
    recorder *rec;
    int calls;
    int response_end_before; /* the request's response_end was dispatched before this */
    quiver_response *response;
} queued_completion;

static void on_queued_response(void *userdata, quiver_response *response, quiver_error *error) {
    queued_completion *c = userdata;
    c->calls++;
    c->response_end_before = rec_find(c->rec, QUIVER_EVENT_KIND_RESPONSE_END, 0, 0) >= 0;
    c->response = response;
    print_error("queued response", error);
    quiver_error_free(error);
}

static int readable(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* Whether `fd` is an open eventfd (a closed queue's number may be reused, not by one). */
static int is_eventfd(int fd) {
    char path[64], target[128];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n < 0) return 0;
    target[n] = '\0';
    return strstr(target, "eventfd") != NULL;
}

static void drain(const quiver_queue *queue) {
    while (quiver_queue_pending(queue) > 0) {
        quiver_queue_dispatch(queue, 64);
    }
}

static void test_queue_delivery(void) {
    const quiver_queue *queue = NULL;
    CHECK_RESULT(quiver_queue_new(&queue), QUIVER_RESULT_OK);
    REQUIRE(queue != NULL);
    int fd = quiver_queue_fd(queue);
    recorder rec;
    rec_init(&rec);

    /* Events only through the queue; the response comes back to a blocking call. */
    quiver_config *config = base_config(&rec);
    CHECK_RESULT(quiver_config_set_event_queue(config, queue), QUIVER_RESULT_OK);
    const quiver_client *client = new_client(config);
    quiver_config_free(config);
    char *url = format("%s/bytes/10", HTTP);
    quiver_response *resp = fetch(client, "GET", url, NULL, NULL);
    REQUIRE(resp != NULL);
    quiver_response_free(resp);
    CHECK(rec_len(&rec) == 0); /* nothing ran on quiver's threads */
    CHECK(quiver_queue_pending(queue) >= 7 && readable(fd));
    drain(queue);
    CHECK(!readable(fd));
    uint64_t id = rec_first(&rec, QUIVER_EVENT_KIND_REQUEST_START, 0).request_id;
    char kinds[1024];
    CHECK_KINDS(rec_request_kinds(&rec, id, kinds, sizeof kinds),
                "request_start,queued,connection_acquired,headers_sent,body_sent,"
                "response_headers,response_end");
    /* The copies outlived quiver's callback: the text is intact when dispatched. */
    rec_event s = rec_first(&rec, QUIVER_EVENT_KIND_REQUEST_START, 0);
    CHECK(s.url != NULL && strcmp(s.url, url) == 0 && strcmp(s.origin, HTTP) == 0);
    for (int i = 0; i < rec_len(&rec); i++) {
        CHECK(rec_at(&rec, i).on_main_thread);
    }
    check_well_formed(&rec);

    /* Queued events still run after the client is freed (they were copied when queued). */
    rec_clear(&rec);
    resp = fetch(client, "GET", url, NULL, NULL);
    quiver_response_free(resp);
    size_t pending = quiver_queue_pending(queue);
    CHECK(pending >= 6);
    quiver_client_free(client);
    drain(queue);
    CHECK(rec_find(&rec, QUIVER_EVENT_KIND_RESPONSE_END, 0, 0) >= 0);
    CHECK(rec_len(&rec) >= (int)pending);
    rec_clear(&rec);

    /* Completions and events on one queue: the response's events come before its callback. */
    config = base_config(&rec);
    CHECK_RESULT(quiver_config_set_queue(config, queue), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_event_queue(config, queue), QUIVER_RESULT_OK);
    client = new_client(config);
    quiver_config_free(config);
    queued_completion c = {.rec = &rec};
    CHECK_RESULT(quiver_client_send(client, quiver_request_new("GET", url), on_queued_response, &c),
                 QUIVER_RESULT_OK);
    double deadline = now_ms() + 10000.0 * (double)slow_factor();
    while (c.calls == 0 && now_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) == 1) {
            quiver_queue_dispatch(queue, 64);
        }
    }
    CHECK(c.calls == 1 && c.response != NULL && c.response_end_before);
    quiver_response_free(c.response);
    for (int i = 0; i < rec_len(&rec); i++) {
        CHECK(rec_at(&rec, i).on_main_thread);
    }
    quiver_client_free(client);
    drain(queue);
    quiver_queue_free(queue);

    /* A queue freed with events still in it discards them, and really goes (its descriptor
     * closes): queued events do not keep their queue alive (no reference cycle). */
    CHECK_RESULT(quiver_queue_new(&queue), QUIVER_RESULT_OK);
    fd = quiver_queue_fd(queue);
    CHECK(is_eventfd(fd));
    config = base_config(&rec);
    CHECK_RESULT(quiver_config_set_event_queue(config, queue), QUIVER_RESULT_OK);
    client = new_client(config);
    quiver_config_free(config);
    quiver_response_free(fetch(client, "GET", url, NULL, NULL));
    CHECK(quiver_queue_pending(queue) >= 7);
    quiver_client_free(client);
    rec_clear(&rec);
    quiver_queue_free(queue);
    /* (The client's last references go on quiver's threads shortly after it is freed.) */
    double until = now_ms() + 5000.0 * (double)slow_factor();
    while (is_eventfd(fd) && now_ms() < until) sleep_ms(5);
    CHECK(!is_eventfd(fd));
    CHECK(rec_len(&rec) == 0);

    free(url);
    rec_destroy(&rec);
    printf("events through the completion queue: ok\n");
}

/* ---- upload progress: a body source read while the upload runs ---- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t produced, total, hold_at;
    int released; /* set by the test once it has read the progress mid-upload */
    int held;     /* the source is waiting for the test */
} slow_source;

static ptrdiff_t source_read(void *userdata, uint8_t *buf, size_t capacity) {
    slow_source *s = userdata;
    pthread_mutex_lock(&s->mu);
    if (s->produced >= s->hold_at && !s->released) {
        s->held = 1;
        double deadline = now_ms() + 10000.0 * (double)slow_factor();
        while (!s->released && now_ms() < deadline) {
            cond_wait_briefly(&s->cv, &s->mu);
        }
    }
    size_t n = s->total - s->produced;
    if (n > capacity) n = capacity;
    fill_pattern(buf, n, s->produced);
    s->produced += n;
    pthread_mutex_unlock(&s->mu);
    return (ptrdiff_t)n;
}

static void test_upload_progress(void) {
    quiver_config *config = base_config(NULL);
    const quiver_client *client = new_client(config);
    quiver_config_free(config);
    const char *bases[] = {HTTP, HTTPS};
    for (size_t b = 0; b < 2; b++) {
        slow_source src;
        memset(&src, 0, sizeof src);
        pthread_mutex_init(&src.mu, NULL);
        pthread_cond_init(&src.cv, NULL);
        src.total = 1000000;
        src.hold_at = 500000;
        const quiver_progress *progress = quiver_progress_new();
        char *url = format("%s/sink", bases[b]);
        quiver_request *req = quiver_request_new("POST", url);
        CHECK_RESULT(quiver_request_add_header(req, "content-length", "1000000"),
                     QUIVER_RESULT_OK);
        CHECK_RESULT(quiver_request_set_body_source(req, source_read, NULL, &src),
                     QUIVER_RESULT_OK);
        CHECK_RESULT(quiver_request_set_progress(req, progress), QUIVER_RESULT_OK);
        completion done;
        completion_init(&done);
        CHECK_RESULT(quiver_client_send(client, req, on_response, &done), QUIVER_RESULT_OK);

        /* Mid-upload, read from this thread while the source holds the rest back. */
        CHECK(wait_count(&src.mu, &src.held, 1, 10000));
        uint64_t uploaded = 0, downloaded = 1;
        int64_t upload_total = 0, download_total = 0;
        double deadline = now_ms() + 5000.0 * (double)slow_factor();
        do {
            CHECK_RESULT(quiver_progress_get(progress, &uploaded, &upload_total, &downloaded,
                                             &download_total),
                         QUIVER_RESULT_OK);
            if (uploaded > 0) break;
            sleep_ms(5);
        } while (now_ms() < deadline);
        CHECK(uploaded > 0 && uploaded <= src.hold_at + 65536 && uploaded < 1000000);
        CHECK(upload_total == 1000000);
        CHECK(downloaded == 0 && download_total == -1); /* no response yet */
        pthread_mutex_lock(&src.mu);
        src.released = 1;
        pthread_cond_broadcast(&src.cv);
        pthread_mutex_unlock(&src.mu);

        CHECK(completion_wait(&done, 20000) == 1);
        CHECK(done.response != NULL);
        if (done.response != NULL) {
            const uint8_t *body = NULL;
            size_t len = 0;
            quiver_response_body(done.response, &body, &len);
            CHECK(len > 0 && contains(body, len, "\"received\":1000000"));
        }
        print_error("upload", done.error);
        CHECK_RESULT(quiver_progress_get(progress, &uploaded, &upload_total, NULL, NULL),
                     QUIVER_RESULT_OK);
        CHECK(uploaded == 1000000 && upload_total == 1000000);
        completion_destroy(&done);
        quiver_progress_free(progress);
        pthread_mutex_destroy(&src.mu);
        pthread_cond_destroy(&src.cv);
        free(url);

        /* Bytes in memory count once handed over whole. */
        progress = quiver_progress_new();
        url = format("%s/sink", bases[b]);
        req = quiver_request_new("POST", url);
        uint8_t *data = malloc(300000);
        REQUIRE(data != NULL);
        fill_pattern(data, 300000, 0);
        CHECK_RESULT(quiver_request_set_body_copy(req, data, 300000), QUIVER_RESULT_OK);
        free(data);
        /* The request keeps its own reference: the caller's may go before it is sent. */
        const quiver_progress *mine = quiver_progress_new();
        CHECK_RESULT(quiver_request_set_progress(req, mine), QUIVER_RESULT_OK);
        quiver_progress_free(mine);
        CHECK_RESULT(quiver_request_set_progress(req, progress), QUIVER_RESULT_OK);
        quiver_response *resp = NULL;
        CHECK_RESULT(quiver_client_send_blocking(client, req, &resp, NULL), QUIVER_RESULT_OK);
        quiver_response_free(resp);
        CHECK_RESULT(quiver_progress_get(progress, &uploaded, &upload_total, NULL, NULL),
                     QUIVER_RESULT_OK);
        CHECK(uploaded == 300000 && upload_total == 300000);
        quiver_progress_free(progress);
        free(url);
    }
    quiver_client_free(client);
    printf("upload progress: ok\n");
}

/* ---- download progress of one-shot responses ---- */

static void test_download_progress(void) {
    quiver_config *config = base_config(NULL);
    const quiver_client *client = new_client(config);
    quiver_config_free(config);
    const quiver_progress *progress = quiver_progress_new();
    char *url = format("%s/bytes/1000000", HTTP);
    quiver_request *req = quiver_request_new("GET", url);
    CHECK_RESULT(quiver_request_set_progress(req, progress), QUIVER_RESULT_OK);
    quiver_response *resp = NULL;
    CHECK_RESULT(quiver_client_send_blocking(client, req, &resp, NULL), QUIVER_RESULT_OK);
    quiver_response_free(resp);
    uint64_t uploaded = 1, downloaded = 0;
    int64_t upload_total = 1, download_total = 0;
    CHECK_RESULT(quiver_progress_get(progress, &uploaded, &upload_total, &downloaded,
                                     &download_total),
                 QUIVER_RESULT_OK);
    CHECK(downloaded == 1000000 && download_total == 1000000);
    CHECK(uploaded == 0 && upload_total == 0);
    quiver_progress_free(progress);
    free(url);

    /* A decoded body: no known total (content-length counts compressed bytes). */
    progress = quiver_progress_new();
    url = format("%s/encoded/gzip/50000", HTTP);
    req = quiver_request_new("GET", url);
    CHECK_RESULT(quiver_request_set_progress(req, progress), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_client_send_blocking(client, req, &resp, NULL), QUIVER_RESULT_OK);
    quiver_response_free(resp);
    CHECK_RESULT(quiver_progress_get(progress, NULL, NULL, &downloaded, &download_total),
                 QUIVER_RESULT_OK);
    CHECK(downloaded == 50000 && download_total == -1);
    quiver_progress_free(progress);
    free(url);
    quiver_client_free(client);
    printf("download progress: ok\n");
}

/* ---- no callback, no events; argument checks ---- */

static void test_no_callback_and_arguments(void) {
    recorder rec;
    rec_init(&rec);
    quiver_config *config = base_config(&rec);
    /* Removed again: the client registers no listener, and nothing is called. */
    CHECK_RESULT(quiver_config_set_event_callback(config, NULL, NULL), QUIVER_RESULT_OK);
    const quiver_client *client = new_client(config);
    quiver_config_free(config);
    char *url = format("%s/bytes/10", HTTP);
    quiver_response *resp = fetch(client, "GET", url, NULL, NULL);
    CHECK(resp != NULL && rec_len(&rec) == 0);
    /* Timings are there all the same. */
    quiver_timings t;
    CHECK_RESULT(quiver_response_timings(resp, &t), QUIVER_RESULT_OK);
    CHECK(t.connection_id != 0 && t.total_ns >= t.ttfb_ns);
    CHECK_RESULT(quiver_response_timings(resp, NULL), QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_response_timings(NULL, &t), QUIVER_RESULT_NULL_PARAMETER);
    quiver_response_free(resp);
    free(url);
    quiver_client_free(client);
    rec_destroy(&rec);

    CHECK_RESULT(quiver_config_set_event_callback(NULL, on_event, NULL),
                 QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_config_set_event_queue(NULL, NULL), QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_progress_get(NULL, NULL, NULL, NULL, NULL), QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_request_set_progress(NULL, NULL), QUIVER_RESULT_NULL_PARAMETER);
    quiver_progress_free(NULL);
    CHECK(strcmp(quiver_event_kind_str(QUIVER_EVENT_KIND_REQUEST_START), "request_start") == 0);
    CHECK(strcmp(quiver_event_kind_str(QUIVER_EVENT_KIND_TLS_DONE), "tls_done") == 0);
    CHECK(strcmp(quiver_event_kind_str(QUIVER_EVENT_KIND_CONNECTION_CLOSED),
                 "connection_closed") == 0);
    CHECK(strcmp(quiver_event_kind_str(999), "unknown") == 0);
    CHECK(QUIVER_EVENT_KIND_REQUEST_START == 1 && QUIVER_EVENT_KIND_CONNECTION_CLOSED == 17);
    printf("no callback, arguments: ok\n");
}

int main(void) {
    main_thread = pthread_self();
    HTTP = env_or_die("QUIVER_TEST_HTTP");
    HTTPS = env_or_die("QUIVER_TEST_HTTPS");
    CA_FILE = env_or_die("QUIVER_TEST_CA_FILE");
    H3 = getenv("QUIVER_TEST_H3");
    H2C_REFUSE = getenv("QUIVER_TEST_H2C_REFUSE");
    H2C_GOAWAY = getenv("QUIVER_TEST_H2C_GOAWAY");

    test_http1_fresh_then_reused();
    test_tls_and_http2_streams();
    test_http3();
    test_retried();
    test_goaway();
    test_redirects_and_failures();
    test_queue_delivery();
    test_upload_progress();
    test_download_progress();
    test_no_callback_and_arguments();

    if (test_failures > 0) {
        printf("test_observability: %d failure(s)\n", test_failures);
        return 1;
    }
    printf("test_observability: all passed\n");
    return 0;
}
