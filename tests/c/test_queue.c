/* The completion queue (quiver_queue_*), driven by an epoll loop on this thread: every
 * callback runs here, in quiver_queue_dispatch, never on quiver's threads. Against the loopback
 * test server (tests/c/run.sh starts it and sets QUIVER_TEST_* in the environment). */
#define _POSIX_C_SOURCE 200809L

#include <poll.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "test_util.h"

static const char *HTTP, *HTTPS, *H3, *CA_FILE;
static pthread_t main_thread;
static atomic_int off_thread; /* callbacks that ran on another thread: must stay 0 */

static void on_this_thread(void) {
    if (!pthread_equal(pthread_self(), main_thread)) {
        atomic_fetch_add(&off_thread, 1);
    }
}

static int readable(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static const quiver_client *queue_client(const quiver_queue *queue, const char *stream_window) {
    quiver_config *config = config_with_ca_h3(CA_FILE, H3);
    CHECK_RESULT(quiver_config_set_queue(config, queue), QUIVER_RESULT_OK);
    /* Under valgrind the first burst (handshakes) takes longer than the 5 s default. */
    CHECK_RESULT(quiver_config_set_duration_ms(config, NULL, "checkout_timeout", 120000),
                 QUIVER_RESULT_OK);
    if (stream_window != NULL) {
        CHECK_RESULT(quiver_config_set_int(config, NULL, "stream_window", atol(stream_window)),
                     QUIVER_RESULT_OK);
    }
    const quiver_client *c = new_client(config);
    quiver_config_free(config);
    return c;
}

/* ---- one-shot requests: no locks needed, everything happens on this thread ---- */

typedef struct {
    int calls;
    size_t expected_len;
    quiver_response *response;
    quiver_error *error;
} slot;

static void on_slot(void *userdata, quiver_response *response, quiver_error *error) {
    on_this_thread();
    slot *s = userdata;
    s->calls++;
    if (s->calls == 1) {
        s->response = response;
        s->error = error;
    } else {
        quiver_response_free(response);
        quiver_error_free(error);
    }
}

static int slot_ok(const slot *s) {
    const uint8_t *data = NULL;
    size_t len = 0;
    return s->calls == 1 && s->response != NULL &&
           quiver_response_body(s->response, &data, &len) == QUIVER_RESULT_OK &&
           len == s->expected_len && is_pattern(data, len, 0);
}

static void slot_free(slot *s) {
    quiver_response_free(s->response);
    quiver_error_free(s->error);
}

/* ---- a stream paused from its callback, resumed by a timer in the loop ---- */

typedef struct {
    int heads, data_calls, ends, pattern_ok, paused, resumed;
    int data_calls_when_paused;
    size_t bytes;
    quiver_error *error;
} stream_log;

static void log_head(void *userdata, const quiver_stream *stream, const quiver_response *head) {
    (void)stream;
    on_this_thread();
    stream_log *s = userdata;
    s->heads++;
    CHECK(quiver_response_status(head) == 200);
}

static void log_data(void *userdata, const quiver_stream *stream, const uint8_t *data,
                     size_t len) {
    on_this_thread();
    stream_log *s = userdata;
    if (!is_pattern(data, len, s->bytes)) {
        s->pattern_ok = 0;
    }
    s->bytes += len;
    s->data_calls++;
    if (s->data_calls == 1) {
        quiver_stream_pause(stream);
        s->paused = 1;
        s->data_calls_when_paused = s->data_calls;
    }
}

static void count_data(void *userdata, const quiver_stream *stream, const uint8_t *data,
                       size_t len) {
    (void)stream;
    (void)data;
    on_this_thread();
    stream_log *s = userdata;
    s->bytes += len;
    s->data_calls++;
}

static void log_end(void *userdata, const quiver_stream *stream, quiver_error *error) {
    (void)stream;
    on_this_thread();
    stream_log *s = userdata;
    s->ends++;
    if (s->ends == 1) {
        s->error = error;
    } else {
        quiver_error_free(error);
    }
}

/* ---- a datagram channel: 20 datagrams out from on_open, closed when they are back ---- */

typedef struct {
    int opens, datagrams, ends, send_failures;
    quiver_error *error;
} channel_log;

static void chan_open(void *userdata, const quiver_channel *channel, const quiver_response *head) {
    (void)head;
    on_this_thread();
    channel_log *c = userdata;
    c->opens++;
    for (int i = 0; i < 20; i++) {
        char text[32];
        int n = snprintf(text, sizeof text, "datagram %d", i);
        if (quiver_channel_send(channel, (const uint8_t *)text, (size_t)n, NULL) !=
            QUIVER_RESULT_OK) {
            c->send_failures++;
        }
    }
}

static void chan_datagram(void *userdata, const quiver_channel *channel, const uint8_t *data,
                          size_t len) {
    on_this_thread();
    channel_log *c = userdata;
    CHECK(len >= 10 && memcmp(data, "datagram ", 9) == 0);
    if (++c->datagrams == 20) {
        quiver_channel_close(channel);
    }
}

static void chan_end(void *userdata, const quiver_channel *channel, quiver_error *error) {
    (void)channel;
    on_this_thread();
    channel_log *c = userdata;
    c->ends++;
    if (c->ends == 1) {
        c->error = error;
    } else {
        quiver_error_free(error);
    }
}

/* ---- the epoll loop ---- */

enum { REQUESTS = 150 };

static void test_epoll_loop(void) {
    const quiver_queue *queue = NULL;
    CHECK_RESULT(quiver_queue_new(&queue), QUIVER_RESULT_OK);
    REQUIRE(queue != NULL);
    int qfd = quiver_queue_fd(queue);
    CHECK(qfd >= 0 && !readable(qfd) && quiver_queue_pending(queue) == 0);
    const quiver_client *c = queue_client(queue, NULL);

    static slot slots[REQUESTS];
    const char *bases[3] = {HTTP, HTTPS, H3};
    size_t nbases = H3 != NULL ? 3 : 2;
    for (int i = 0; i < REQUESTS; i++) {
        memset(&slots[i], 0, sizeof slots[i]);
        slots[i].expected_len = 1 + (size_t)i * 53 % 3000;
        char *url = format("%s/bytes/%zu", bases[(size_t)i % nbases], slots[i].expected_len);
        CHECK_RESULT(quiver_client_send(c, quiver_request_new("GET", url), on_slot, &slots[i]),
                     QUIVER_RESULT_OK);
        free(url);
    }
    stream_log stream = {.pattern_ok = 1};
    size_t stream_size = 2u << 20;
    char *url = format("%s/bytes/%zu", HTTPS, stream_size);
    const quiver_stream *stream_handle = NULL;
    CHECK_RESULT(quiver_client_stream(c, quiver_request_new("GET", url), log_head, log_data,
                                      log_end, &stream, &stream_handle),
                 QUIVER_RESULT_OK);
    free(url);
    channel_log chan = {0};
    const quiver_channel *channel = NULL;
    if (H3 != NULL) {
        url = format("%s/datagram-echo", H3);
        CHECK_RESULT(quiver_client_open_channel(c, quiver_request_new("CONNECT", url), NULL,
                                                chan_open, chan_datagram, NULL, chan_end, &chan,
                                                &channel),
                     QUIVER_RESULT_OK);
        free(url);
    }

    /* Nothing runs until dispatched; the descriptor says there is something to do. */
    double deadline = now_ms() + 5000.0 * (double)slow_factor();
    while (quiver_queue_pending(queue) < 10 && now_ms() < deadline) {
        sleep_ms(5);
    }
    sleep_ms(100);
    int ran = 0;
    for (int i = 0; i < REQUESTS; i++) {
        ran += slots[i].calls;
    }
    CHECK(ran == 0 && stream.heads == 0 && chan.opens == 0);
    CHECK(quiver_queue_pending(queue) > 0);
    CHECK(readable(qfd));

    int ep = epoll_create1(EPOLL_CLOEXEC);
    REQUIRE(ep >= 0);
    int timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    REQUIRE(timer >= 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = qfd};
    REQUIRE(epoll_ctl(ep, EPOLL_CTL_ADD, qfd, &ev) == 0);
    ev.data.fd = timer;
    REQUIRE(epoll_ctl(ep, EPOLL_CTL_ADD, timer, &ev) == 0);

    int timer_armed = 0, dispatches = 0;
    size_t dispatched = 0;
    deadline = now_ms() + 60000.0 * (double)slow_factor();
    for (;;) {
        int done = 0;
        for (int i = 0; i < REQUESTS; i++) {
            done += slots[i].calls > 0;
        }
        if (done == REQUESTS && stream.ends == 1 && (H3 == NULL || chan.ends == 1)) {
            break;
        }
        if (done == REQUESTS && stream.ends == 1 && chan.opens == 1) {
            quiver_channel_close(channel); /* in case a datagram was lost */
        }
        if (now_ms() > deadline) {
            fprintf(stderr, "  loop timed out: %d of %d requests, stream ends %d, channel ends %d\n",
                    done, REQUESTS, stream.ends, chan.ends);
            CHECK(0);
            break;
        }
        struct epoll_event events[4];
        int n = epoll_wait(ep, events, 4, 1000);
        for (int k = 0; k < n; k++) {
            if (events[k].data.fd == qfd) {
                dispatched += quiver_queue_dispatch(queue, 16);
                dispatches++;
            } else if (events[k].data.fd == timer) {
                uint64_t expirations;
                CHECK(read(timer, &expirations, sizeof expirations) == sizeof expirations);
                /* Paused for the timer's 300 ms: no data callback ran meanwhile. */
                CHECK(stream.data_calls == stream.data_calls_when_paused);
                CHECK_RESULT(quiver_stream_resume(stream_handle), QUIVER_RESULT_OK);
                stream.resumed = 1;
            }
        }
        if (stream.paused && !timer_armed) {
            struct itimerspec its = {.it_value = {.tv_sec = 0, .tv_nsec = 300 * 1000000L}};
            REQUIRE(timerfd_settime(timer, 0, &its, NULL) == 0);
            timer_armed = 1;
        }
    }
    CHECK(dispatches > 1);

    int ok = 0;
    for (int i = 0; i < REQUESTS; i++) {
        ok += slot_ok(&slots[i]);
        if (!slot_ok(&slots[i])) {
            print_error("queued request", slots[i].error);
        }
    }
    CHECK(ok == REQUESTS);
    CHECK(stream.heads == 1 && stream.ends == 1 && stream.error == NULL);
    CHECK(stream.resumed && stream.bytes == stream_size && stream.pattern_ok);
    print_error("queued stream", stream.error);
    if (H3 != NULL) {
        CHECK(chan.opens == 1 && chan.ends == 1 && chan.error == NULL);
        CHECK(chan.send_failures == 0 && chan.datagrams >= 1);
        print_error("queued channel", chan.error);
    }
    /* Everything ran; nothing is left; the descriptor is quiet again. */
    CHECK(quiver_queue_pending(queue) == 0 && !readable(qfd));
    CHECK(quiver_queue_dispatch(queue, 16) == 0);
    CHECK(dispatched >= (size_t)REQUESTS + 3);

    quiver_stream_free(stream_handle);
    quiver_channel_free(channel);
    quiver_client_free(c);
    /* Freeing the client queued nothing more (everything had ended). */
    CHECK(quiver_queue_pending(queue) == 0);
    for (int i = 0; i < REQUESTS; i++) {
        CHECK(slots[i].calls == 1);
        slot_free(&slots[i]);
    }
    quiver_error_free(stream.error);
    quiver_error_free(chan.error);
    close(timer);
    close(ep);
    quiver_queue_free(queue);
}

/* ---- a stream holds one event in the queue at a time (backpressure) ---- */

static void test_one_event_at_a_time(void) {
    const quiver_queue *queue = NULL;
    CHECK_RESULT(quiver_queue_new(&queue), QUIVER_RESULT_OK);
    const quiver_client *c = queue_client(queue, "65536");
    stream_log s = {.pattern_ok = 1};
    char *url = format("%s/bytes/%u", HTTPS, 8u << 20);
    const quiver_stream *stream = NULL;
    CHECK_RESULT(quiver_client_stream(c, quiver_request_new("GET", url), log_head, count_data,
                                      log_end, &s, &stream),
                 QUIVER_RESULT_OK);
    /* Head, then chunks: each waits in the queue until dispatched, and the stream reads
     * nothing more meanwhile, so quiver holds about one window however long we wait. */
    for (int step = 0; step < 4; step++) {
        double deadline = now_ms() + 5000.0 * (double)slow_factor();
        while (quiver_queue_pending(queue) == 0 && now_ms() < deadline) {
            sleep_ms(5);
        }
        sleep_ms(150);
        CHECK(quiver_queue_pending(queue) == 1);
        quiver_stats *stats = NULL;
        CHECK_RESULT(quiver_client_stats(c, &stats), QUIVER_RESULT_OK);
        CHECK(quiver_stats_total(stats, QUIVER_STAT_BUFFERED_BYTES) <= 65536 + 16384);
        quiver_stats_free(stats);
        CHECK(quiver_queue_dispatch(queue, 1) == 1);
    }
    CHECK(s.heads == 1 && s.ends == 0);
    /* Cancelled with an event queued: that event is skipped, then on_end(cancelled), once. */
    double deadline = now_ms() + 5000.0 * (double)slow_factor();
    while (quiver_queue_pending(queue) == 0 && now_ms() < deadline) {
        sleep_ms(5);
    }
    CHECK_RESULT(quiver_stream_cancel(stream), QUIVER_RESULT_OK);
    deadline = now_ms() + 5000.0 * (double)slow_factor();
    while (s.ends == 0 && now_ms() < deadline) {
        quiver_queue_dispatch(queue, 10);
        sleep_ms(5);
    }
    CHECK(s.ends == 1);
    CHECK_ERROR(s.error, QUIVER_RESULT_CANCELLED, QUIVER_CLASS_TRANSIENT, "cancelled");
    sleep_ms(50);
    CHECK(quiver_queue_dispatch(queue, 10) == 0 && s.ends == 1);
    quiver_error_free(s.error);
    quiver_stream_free(stream);
    quiver_client_free(c);
    quiver_queue_free(queue);
    free(url);
}

/* ---- freeing the client with calls in flight: it returns at once, the rest is queued ---- */

typedef struct {
    const quiver_client *client;
    slot done;
} freeing;

static void on_free_client(void *userdata, quiver_response *response, quiver_error *error) {
    freeing *f = userdata;
    /* On the dispatching thread (not a quiver thread): waits for the client's other calls to
     * be queued, not for them to be dispatched, so it cannot deadlock here. */
    quiver_client_free(f->client);
    on_slot(&f->done, response, error);
}

static void test_free_in_flight(void) {
    const quiver_queue *queue = NULL;
    CHECK_RESULT(quiver_queue_new(&queue), QUIVER_RESULT_OK);
    const quiver_client *c = queue_client(queue, NULL);
    enum { N = 5 };
    slot slots[N];
    memset(slots, 0, sizeof slots);
    char *slow = format("%s/slow/5000", HTTP);
    for (int i = 0; i < N; i++) {
        CHECK_RESULT(quiver_client_send(c, quiver_request_new("GET", slow), on_slot, &slots[i]),
                     QUIVER_RESULT_OK);
    }
    stream_log s = {.pattern_ok = 1};
    CHECK_RESULT(quiver_client_stream(c, quiver_request_new("GET", slow), log_head, log_data,
                                      log_end, &s, NULL),
                 QUIVER_RESULT_OK);
    sleep_ms(100);
    double t0 = now_ms();
    quiver_client_free(c);
    CHECK(now_ms() - t0 < 2000.0 * (double)slow_factor());
    /* Nothing ran: every completion waits in the queue. */
    CHECK(quiver_queue_pending(queue) == N + 1 && readable(quiver_queue_fd(queue)));
    for (int i = 0; i < N; i++) {
        CHECK(slots[i].calls == 0);
    }
    CHECK(s.ends == 0);
    CHECK(quiver_queue_dispatch(queue, 100) == N + 1);
    for (int i = 0; i < N; i++) {
        CHECK(slots[i].calls == 1);
        CHECK_ERROR(slots[i].error, QUIVER_RESULT_SHUTDOWN, QUIVER_CLASS_TRANSIENT, "shutdown");
        slot_free(&slots[i]);
    }
    CHECK(s.ends == 1 && s.heads == 0);
    CHECK_ERROR(s.error, QUIVER_RESULT_SHUTDOWN, QUIVER_CLASS_TRANSIENT, "shutdown");
    quiver_error_free(s.error);

    /* Freed from inside a dispatched callback: the other request still completes once. */
    freeing f = {.client = queue_client(queue, NULL)};
    slot other = {0};
    char *quick = format("%s/health", HTTP);
    CHECK_RESULT(quiver_client_send(f.client, quiver_request_new("GET", slow), on_slot, &other),
                 QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_client_send(f.client, quiver_request_new("GET", quick), on_free_client, &f),
                 QUIVER_RESULT_OK);
    double deadline = now_ms() + 5000.0 * (double)slow_factor();
    while (f.done.calls == 0 && now_ms() < deadline) {
        quiver_queue_dispatch(queue, 1);
        sleep_ms(5);
    }
    CHECK(f.done.calls == 1 && f.done.response != NULL);
    /* Inside the callback free did not wait: the other completion is queued shortly after. */
    deadline = now_ms() + 5000.0 * (double)slow_factor();
    while (quiver_queue_pending(queue) == 0 && now_ms() < deadline) {
        sleep_ms(5);
    }
    CHECK(other.calls == 0 && quiver_queue_pending(queue) == 1);
    CHECK(quiver_queue_dispatch(queue, 10) == 1);
    CHECK(other.calls == 1);
    CHECK_ERROR(other.error, QUIVER_RESULT_SHUTDOWN, QUIVER_CLASS_TRANSIENT, "shutdown");
    slot_free(&other);
    slot_free(&f.done);
    quiver_queue_free(queue);
    free(quick);
    free(slow);
}

/* ---- a queue freed with callbacks in it: they never run, nothing leaks ---- */

static void test_discarded(void) {
    const quiver_queue *queue = NULL;
    CHECK_RESULT(quiver_queue_new(&queue), QUIVER_RESULT_OK);
    const quiver_client *c = queue_client(queue, NULL);
    enum { N = 3 };
    slot slots[N];
    memset(slots, 0, sizeof slots);
    char *url = format("%s/bytes/1000", HTTPS);
    for (int i = 0; i < N; i++) {
        CHECK_RESULT(quiver_client_send(c, quiver_request_new("GET", url), on_slot, &slots[i]),
                     QUIVER_RESULT_OK);
    }
    double deadline = now_ms() + 5000.0 * (double)slow_factor();
    while (quiver_queue_pending(queue) < N && now_ms() < deadline) {
        sleep_ms(5);
    }
    CHECK(quiver_queue_pending(queue) == N);
    quiver_client_free(c);
    quiver_queue_free(queue); /* the responses waiting in it are freed with it */
    for (int i = 0; i < N; i++) {
        CHECK(slots[i].calls == 0);
    }
    free(url);

    /* A queue outlives the caller's reference while a client holds it. */
    CHECK_RESULT(quiver_queue_new(&queue), QUIVER_RESULT_OK);
    c = queue_client(queue, NULL);
    int fd = quiver_queue_fd(queue);
    quiver_queue_free(queue);
    slot one = {.expected_len = 2};
    url = format("%s/health", HTTP);
    CHECK_RESULT(quiver_client_send(c, quiver_request_new("GET", url), on_slot, &one),
                 QUIVER_RESULT_OK);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK(poll(&p, 1, (int)(5000 * slow_factor())) == 1);
    quiver_client_free(c); /* the queued response is discarded with the queue */
    CHECK(one.calls == 0);
    free(url);
}

int main(void) {
    HTTP = env_or_die("QUIVER_TEST_HTTP");
    HTTPS = env_or_die("QUIVER_TEST_HTTPS");
    H3 = getenv("QUIVER_TEST_H3");
    CA_FILE = env_or_die("QUIVER_TEST_CA_FILE");
    main_thread = pthread_self();

    struct {
        const char *name;
        void (*run)(void);
    } tests[] = {
        {"epoll_loop", test_epoll_loop},
        {"one_event_at_a_time", test_one_event_at_a_time},
        {"free_in_flight", test_free_in_flight},
        {"discarded", test_discarded},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        int before = test_failures;
        double t0 = now_ms();
        tests[i].run();
        printf("queue %-26s %s (%.0f ms)\n", tests[i].name,
               test_failures == before ? "ok" : "FAILED", now_ms() - t0);
        fflush(stdout);
    }
    CHECK(atomic_load(&off_thread) == 0);
    printf("test_queue: %s\n", test_failures == 0 ? "all passed" : "FAILED");
    return test_failures == 0 ? 0 : 1;
}
