/* HTTP/3 datagram channels (quiver_channel_*) against the test server's /datagram-echo
 * (tests/c/run.sh starts it and sets QUIVER_TEST_* in the environment). Exits non-zero when
 * any check fails. */
#define _POSIX_C_SOURCE 200809L

#include "test_util.h"

static const char *H3;    /* https://localhost:PORT (HTTP/3, datagrams on) */
static const char *H3_NO_DATAGRAMS; /* the same on a server without datagrams, or NULL */
static const char *H3_NO_DATAGRAMS_CA_FILE; /* that server's CA */
static const char *HTTPS; /* https://localhost:PORT (HTTP/2) */
static const char *CA_FILE;

enum { SENT = 100, PAYLOAD = 200 };

typedef struct {
    pthread_mutex_t mu;
    int opens, ends, datagrams, data_calls;
    int intact;         /* every datagram is one we sent, unchanged */
    size_t max_len;     /* the size of the one max-size datagram sent */
    int empty, max_size; /* echoes of the empty and of the max-size datagram */
    int seen[SENT];     /* how often each one came back */
    char data[64];      /* the stream's data ("echo ready") */
    size_t data_len;
    const quiver_channel *in_callbacks;
    uint16_t status;
    quiver_error *error;
    int pause_on_open;  /* pause from inside on_open */
    int cancel_on_datagram;
    int ping_pong;      /* answer each datagram with the next one, up to SENT */
    quiver_result pong_result;
} chan_state;

static void chan_init(chan_state *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->intact = 1;
    s->pong_result = QUIVER_RESULT_OK;
}

static void chan_destroy(chan_state *s) {
    quiver_error_free(s->error);
    pthread_mutex_destroy(&s->mu);
}

/* Datagram i: "dgram NNN " then PAYLOAD - 10 pattern bytes. */
static void make_datagram(uint8_t *buf, int i) {
    snprintf((char *)buf, 11, "dgram %03d ", i);
    fill_pattern(buf + 10, PAYLOAD - 10, 10 + (size_t)i);
}

static int datagram_index(const uint8_t *data, size_t len) {
    if (len != PAYLOAD || memcmp(data, "dgram ", 6) != 0) {
        return -1;
    }
    int i = 0;
    for (size_t k = 6; k < 9; k++) {
        if (data[k] < '0' || data[k] > '9') {
            return -1;
        }
        i = i * 10 + (data[k] - '0');
    }
    if (i >= SENT) {
        return -1;
    }
    uint8_t expected[PAYLOAD];
    make_datagram(expected, i);
    return memcmp(expected, data, PAYLOAD) == 0 ? i : -1;
}

static void send_datagram(const quiver_channel *channel, int i, quiver_result *result) {
    uint8_t buf[PAYLOAD];
    make_datagram(buf, i);
    *result = quiver_channel_send(channel, buf, sizeof buf, NULL);
}

static void on_open(void *userdata, const quiver_channel *channel, const quiver_response *head) {
    chan_state *s = userdata;
    pthread_mutex_lock(&s->mu);
    s->opens++;
    s->status = quiver_response_status(head);
    s->in_callbacks = channel;
    if (s->pause_on_open) {
        quiver_channel_pause(channel);
    }
    if (s->ping_pong) {
        send_datagram(channel, 0, &s->pong_result);
    }
    pthread_mutex_unlock(&s->mu);
}

static void on_datagram(void *userdata, const quiver_channel *channel, const uint8_t *data,
                        size_t len) {
    chan_state *s = userdata;
    pthread_mutex_lock(&s->mu);
    s->datagrams++;
    int i = datagram_index(data, len);
    if (len == 0) {
        s->empty++;
    } else if (i < 0 && s->max_len > 0 && len == s->max_len) {
        s->max_size++;
    } else if (i < 0) {
        s->intact = 0;
    } else {
        s->seen[i]++;
        if (s->ping_pong && i + 1 < SENT) {
            send_datagram(channel, i + 1, &s->pong_result);
        }
    }
    if (s->cancel_on_datagram) {
        quiver_channel_cancel(channel);
    }
    pthread_mutex_unlock(&s->mu);
}

static void on_data(void *userdata, const quiver_channel *channel, const uint8_t *data,
                    size_t len) {
    (void)channel;
    chan_state *s = userdata;
    pthread_mutex_lock(&s->mu);
    s->data_calls++;
    size_t n = len < sizeof s->data - 1 - s->data_len ? len : sizeof s->data - 1 - s->data_len;
    memcpy(s->data + s->data_len, data, n);
    s->data_len += n;
    pthread_mutex_unlock(&s->mu);
}

static void on_end(void *userdata, const quiver_channel *channel, quiver_error *error) {
    (void)channel;
    chan_state *s = userdata;
    pthread_mutex_lock(&s->mu);
    s->ends++;
    if (s->ends == 1) {
        s->error = error;
    } else {
        quiver_error_free(error);
    }
    pthread_mutex_unlock(&s->mu);
}

static int counter(chan_state *s, const int *field) {
    pthread_mutex_lock(&s->mu);
    int v = *field;
    pthread_mutex_unlock(&s->mu);
    return v;
}

static const quiver_channel *open_echo(const quiver_client *c, const char *base, chan_state *s) {
    char *url = format("%s/datagram-echo", base);
    const quiver_channel *channel = NULL;
    CHECK_RESULT(quiver_client_open_channel(c, quiver_request_new("CONNECT", url), NULL, on_open,
                                            on_datagram, on_data, on_end, s, &channel),
                 QUIVER_RESULT_OK);
    REQUIRE(channel != NULL);
    free(url);
    return channel;
}

/* Expects the channel to end (on_end once) with this error. */
static void expect_end(chan_state *s, quiver_result code, quiver_class class, const char *kind) {
    CHECK(wait_count(&s->mu, &s->ends, 1, 10000));
    pthread_mutex_lock(&s->mu);
    CHECK(s->opens == 0 || code == QUIVER_RESULT_CANCELLED || code == QUIVER_RESULT_SHUTDOWN);
    CHECK_ERROR(s->error, code, class, kind);
    pthread_mutex_unlock(&s->mu);
    sleep_ms(50);
    CHECK(counter(s, &s->ends) == 1);
}

/* ---- echo: 100 datagrams out, the echoes back intact; too large; after close ---- */

static void test_echo(const quiver_client *c) {
    chan_state s;
    chan_init(&s);
    const quiver_channel *channel = open_echo(c, H3, &s);
    /* Not open yet: a handshake is needed first. */
    quiver_error *err = NULL;
    CHECK_RESULT(quiver_channel_send(channel, (const uint8_t *)"early", 5, &err),
                 QUIVER_RESULT_DATAGRAM_ERROR);
    CHECK_ERROR(err, QUIVER_RESULT_DATAGRAM_ERROR, QUIVER_CLASS_TRANSIENT, "datagram_error");
    quiver_error_free(err);
    CHECK(quiver_channel_max_datagram_size(channel) == 0);

    REQUIRE(wait_count(&s.mu, &s.opens, 1, 10000));
    const quiver_response *head = quiver_channel_response(channel);
    CHECK(head != NULL && quiver_response_status(head) == 200);
    CHECK(quiver_response_version(head) == QUIVER_HTTP_VERSION_HTTP3);
    const char *value = NULL;
    size_t value_len = 0;
    CHECK_RESULT(quiver_response_header_get(head, "capsule-protocol", 0, &value, &value_len),
                 QUIVER_RESULT_OK);
    CHECK(bytes_eq(value, value_len, "?1"));
    CHECK(s.status == 200 && s.in_callbacks == channel);
    size_t max = quiver_channel_max_datagram_size(channel);
    CHECK(max >= PAYLOAD && max < 65536);

    for (int i = 0; i < SENT; i++) {
        uint8_t buf[PAYLOAD];
        make_datagram(buf, i);
        CHECK_RESULT(quiver_channel_send(channel, buf, sizeof buf, NULL), QUIVER_RESULT_OK);
        if (i % 10 == 9) {
            sleep_ms(2); /* datagrams are unreliable: do not overrun anything */
        }
    }
    /* An empty datagram is a datagram (the echo is not counted as one of ours). */
    CHECK_RESULT(quiver_channel_send(channel, NULL, 0, NULL), QUIVER_RESULT_OK);
    wait_count(&s.mu, &s.datagrams, SENT + 1, 3000);

    /* Too large for any path: invalid, and the channel goes on. (The limit itself may grow
     * meanwhile, as path MTU discovery goes on.) */
    enum { HUGE = 70000 };
    uint8_t *big = calloc(1, HUGE);
    REQUIRE(big != NULL);
    err = NULL;
    CHECK_RESULT(quiver_channel_send(channel, big, HUGE, &err), QUIVER_RESULT_DATAGRAM_TOO_LARGE);
    CHECK_ERROR(err, QUIVER_RESULT_DATAGRAM_TOO_LARGE, QUIVER_CLASS_INVALID, "datagram_too_large");
    quiver_error_free(err);
    max = quiver_channel_max_datagram_size(channel);
    pthread_mutex_lock(&s.mu);
    s.max_len = max;
    pthread_mutex_unlock(&s.mu);
    CHECK_RESULT(quiver_channel_send(channel, big, max, NULL), QUIVER_RESULT_OK);
    free(big);
    CHECK_RESULT(quiver_channel_send(channel, NULL, 10, NULL), QUIVER_RESULT_NULL_PARAMETER);

    /* Close our side: sends fail, the server ends its side with trailers, on_end(NULL). */
    CHECK_RESULT(quiver_channel_close(channel), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_channel_close(channel), QUIVER_RESULT_OK);
    err = NULL;
    CHECK_RESULT(quiver_channel_send(channel, (const uint8_t *)"late", 4, &err),
                 QUIVER_RESULT_DATAGRAM_ERROR);
    CHECK_ERROR(err, QUIVER_RESULT_DATAGRAM_ERROR, QUIVER_CLASS_TRANSIENT, "datagram_error");
    quiver_error_free(err);
    CHECK(quiver_channel_max_datagram_size(channel) == 0);
    CHECK(wait_count(&s.mu, &s.ends, 1, 10000));

    pthread_mutex_lock(&s.mu);
    CHECK(s.error == NULL);
    print_error("echo channel", s.error);
    int received = 0, twice = 0;
    for (int i = 0; i < SENT; i++) {
        received += s.seen[i] > 0;
        twice += s.seen[i] > 1;
    }
    /* Unreliable, but on loopback nearly all come back; every one intact, none twice. */
    CHECK(received >= SENT / 2);
    CHECK(s.intact && twice == 0);
    CHECK(s.empty <= 1 && s.max_size <= 1);
    CHECK(s.datagrams == received + s.empty + s.max_size);
    if (received < SENT) {
        printf("  %d of %d datagrams came back\n", received, SENT);
    }
    CHECK(bytes_eq(s.data, s.data_len, "echo ready"));
    pthread_mutex_unlock(&s.mu);

    /* The server's trailers count what it echoed. */
    CHECK(quiver_response_trailer_count(head) == 1);
    value = NULL;
    CHECK_RESULT(quiver_response_trailer_get(head, "x-datagrams-echoed", 0, &value, &value_len),
                 QUIVER_RESULT_OK);
    if (value != NULL) {
        char *text = format("%.*s", (int)value_len, value);
        CHECK(atoi(text) >= received);
        free(text);
    }
    /* Ended: sends still fail the same way, nothing more is delivered. */
    err = NULL;
    CHECK_RESULT(quiver_channel_send(channel, (const uint8_t *)"x", 1, &err),
                 QUIVER_RESULT_DATAGRAM_ERROR);
    quiver_error_free(err);
    sleep_ms(50);
    CHECK(counter(&s, &s.ends) == 1);
    quiver_channel_free(channel);
    chan_destroy(&s);
}

/* ---- sends from inside the callbacks (re-entrancy); no handle, a cancel token ---- */

static void test_ping_pong(const quiver_client *c) {
    chan_state s;
    chan_init(&s);
    s.ping_pong = 1;
    char *url = format("%s/datagram-echo", H3);
    const quiver_cancel_token *token = quiver_cancel_token_new();
    quiver_request *req = quiver_request_new("CONNECT", url);
    quiver_request_set_cancel_token(req, token);
    CHECK_RESULT(quiver_client_open_channel(c, req, "connect-udp", on_open, on_datagram, NULL,
                                            on_end, &s, NULL),
                 QUIVER_RESULT_OK);
    /* A lost datagram ends the rally; it only has to go some way. */
    wait_count(&s.mu, &s.datagrams, SENT, 10000);
    pthread_mutex_lock(&s.mu);
    CHECK(s.opens == 1 && s.datagrams >= 10 && s.intact);
    CHECK_RESULT(s.pong_result, QUIVER_RESULT_OK);
    CHECK(s.ends == 0);
    pthread_mutex_unlock(&s.mu);
    quiver_cancel_token_cancel(token);
    quiver_cancel_token_free(token);
    expect_end(&s, QUIVER_RESULT_CANCELLED, QUIVER_CLASS_TRANSIENT, "cancelled");
    chan_destroy(&s);
    free(url);
}

/* ---- pause: nothing delivered until resumed ---- */

static void test_pause_resume(const quiver_client *c) {
    chan_state s;
    chan_init(&s);
    s.pause_on_open = 1;
    const quiver_channel *channel = open_echo(c, H3, &s);
    REQUIRE(wait_count(&s.mu, &s.opens, 1, 10000));
    for (int i = 0; i < 10; i++) {
        uint8_t buf[PAYLOAD];
        make_datagram(buf, i);
        CHECK_RESULT(quiver_channel_send(channel, buf, sizeof buf, NULL), QUIVER_RESULT_OK);
    }
    sleep_ms(300);
    CHECK(counter(&s, &s.datagrams) == 0 && counter(&s, &s.data_calls) == 0);
    CHECK_RESULT(quiver_channel_resume(channel), QUIVER_RESULT_OK);
    CHECK(wait_count(&s.mu, &s.datagrams, 10, 3000));
    CHECK(counter(&s, &s.data_calls) >= 1);
    /* Cancelled from its own callback: on_end(cancelled), no callback after it. */
    pthread_mutex_lock(&s.mu);
    s.cancel_on_datagram = 1;
    pthread_mutex_unlock(&s.mu);
    uint8_t buf[PAYLOAD];
    make_datagram(buf, 42);
    for (int i = 0; i < 20 && counter(&s, &s.ends) == 0; i++) {
        quiver_channel_send(channel, buf, sizeof buf, NULL); /* until one comes back */
        sleep_ms(20);
    }
    CHECK(wait_count(&s.mu, &s.ends, 1, 3000));
    int datagrams = counter(&s, &s.datagrams);
    sleep_ms(100);
    CHECK(counter(&s, &s.datagrams) == datagrams);
    CHECK_ERROR(s.error, QUIVER_RESULT_CANCELLED, QUIVER_CLASS_TRANSIENT, "cancelled");
    quiver_channel_free(channel);
    chan_destroy(&s);
}

/* ---- errors: wrong transport, no datagrams, wrong method, cancel, free ---- */

static void test_errors(const quiver_client *c) {
    /* An origin that is not on HTTP/3. */
    chan_state s;
    chan_init(&s);
    const quiver_channel *channel = open_echo(c, HTTPS, &s);
    expect_end(&s, QUIVER_RESULT_POOL_UNSUPPORTED_FOR_TRANSPORT, QUIVER_CLASS_INVALID,
               "pool_unsupported_for_transport");
    CHECK(quiver_channel_response(channel) == NULL);
    quiver_channel_free(channel);
    chan_destroy(&s);

    /* A server that did not enable HTTP/3 datagrams. */
    if (H3_NO_DATAGRAMS != NULL) {
        chan_init(&s);
        channel = open_echo(c, H3_NO_DATAGRAMS, &s);
        expect_end(&s, QUIVER_RESULT_DATAGRAMS_DISABLED, QUIVER_CLASS_TRANSIENT,
                   "datagrams_disabled");
        quiver_channel_free(channel);
        chan_destroy(&s);
    } else {
        printf("  (no server without datagrams: datagrams_disabled not checked)\n");
    }

    /* Not a CONNECT; a body; a bad URL; an unknown protocol. */
    char *url = format("%s/datagram-echo", H3);
    struct {
        quiver_request *request;
        const char *protocol;
        quiver_result code;
        const char *kind;
    } bad[] = {
        {quiver_request_new("GET", url), NULL, QUIVER_RESULT_INVALID_METHOD, "invalid_method"},
        {quiver_request_new("CONNECT", url), NULL, QUIVER_RESULT_INVALID_BODY, "invalid_body"},
        {quiver_request_new("CONNECT", "https//nope"), NULL, QUIVER_RESULT_INVALID_URL,
         "invalid_url"},
        {quiver_request_new("CONNECT", url), "connect-tcp", QUIVER_RESULT_INVALID_HEADER,
         "invalid_header"},
    };
    quiver_request_set_body_copy(bad[1].request, (const uint8_t *)"x", 1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        chan_init(&s);
        CHECK_RESULT(quiver_client_open_channel(c, bad[i].request, bad[i].protocol, on_open,
                                                on_datagram, on_data, on_end, &s, NULL),
                     QUIVER_RESULT_OK);
        expect_end(&s, bad[i].code, QUIVER_CLASS_INVALID, bad[i].kind);
        chan_destroy(&s);
    }
    /* on_end is required; the request is consumed all the same. */
    CHECK_RESULT(quiver_client_open_channel(c, quiver_request_new("CONNECT", url), NULL, NULL,
                                            NULL, NULL, NULL, NULL, NULL),
                 QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_client_open_channel(c, quiver_request_new("CONNECT", url), "\xff", NULL,
                                            NULL, NULL, on_end, NULL, NULL),
                 QUIVER_RESULT_INVALID_ARGUMENT);

    /* Cancelled by a token before it opened; cancelled once open. */
    chan_init(&s);
    const quiver_cancel_token *token = quiver_cancel_token_new();
    quiver_cancel_token_cancel(token);
    quiver_request *req = quiver_request_new("CONNECT", url);
    quiver_request_set_cancel_token(req, token);
    quiver_cancel_token_free(token);
    CHECK_RESULT(quiver_client_open_channel(c, req, NULL, on_open, on_datagram, on_data, on_end,
                                            &s, NULL),
                 QUIVER_RESULT_OK);
    expect_end(&s, QUIVER_RESULT_CANCELLED, QUIVER_CLASS_TRANSIENT, "cancelled");
    chan_destroy(&s);

    chan_init(&s);
    channel = open_echo(c, H3, &s);
    REQUIRE(wait_count(&s.mu, &s.opens, 1, 10000));
    CHECK_RESULT(quiver_channel_cancel(channel), QUIVER_RESULT_OK);
    expect_end(&s, QUIVER_RESULT_CANCELLED, QUIVER_CLASS_TRANSIENT, "cancelled");
    quiver_error *err = NULL;
    CHECK_RESULT(quiver_channel_send(channel, (const uint8_t *)"x", 1, &err),
                 QUIVER_RESULT_DATAGRAM_ERROR);
    quiver_error_free(err);
    quiver_channel_free(channel);
    chan_destroy(&s);

    /* Freeing the handle of an open channel cancels it; on_end still runs once. */
    chan_init(&s);
    channel = open_echo(c, H3, &s);
    REQUIRE(wait_count(&s.mu, &s.opens, 1, 10000));
    quiver_channel_free(channel);
    expect_end(&s, QUIVER_RESULT_CANCELLED, QUIVER_CLASS_TRANSIENT, "cancelled");
    chan_destroy(&s);
    free(url);
}

/* ---- freeing the client ends its channels, each on_end once ---- */

static void test_free_client(void) {
    quiver_config *config = config_with_ca_h3(CA_FILE, H3);
    const quiver_client *c = new_client(config);
    quiver_config_free(config);
    enum { N = 3 };
    chan_state s[N];
    const quiver_channel *channels[N];
    for (int i = 0; i < N; i++) {
        chan_init(&s[i]);
        channels[i] = open_echo(c, H3, &s[i]);
    }
    for (int i = 0; i < N; i++) {
        CHECK(wait_count(&s[i].mu, &s[i].opens, 1, 10000));
    }
    chan_state opening;
    chan_init(&opening);
    const quiver_channel *not_yet = open_echo(c, H3, &opening); /* still opening, maybe */
    quiver_client_free(c); /* waits for every on_end */
    for (int i = 0; i < N; i++) {
        CHECK(counter(&s[i], &s[i].ends) == 1);
        CHECK_ERROR(s[i].error, QUIVER_RESULT_SHUTDOWN, QUIVER_CLASS_TRANSIENT, "shutdown");
        quiver_channel_free(channels[i]);
        chan_destroy(&s[i]);
    }
    CHECK(counter(&opening, &opening.ends) == 1);
    CHECK(opening.error != NULL);
    quiver_channel_free(not_yet);
    chan_destroy(&opening);
}

int main(void) {
    H3 = getenv("QUIVER_TEST_H3");
    H3_NO_DATAGRAMS = getenv("QUIVER_TEST_H3_NO_DATAGRAMS");
    H3_NO_DATAGRAMS_CA_FILE = getenv("QUIVER_TEST_H3_NO_DATAGRAMS_CA_FILE");
    HTTPS = env_or_die("QUIVER_TEST_HTTPS");
    CA_FILE = env_or_die("QUIVER_TEST_CA_FILE");
    if (H3 == NULL) {
        printf("test_channel: skipped (no HTTP/3 listener)\n");
        return 0;
    }

    quiver_config *config = config_with_ca_h3(CA_FILE, H3);
    if (H3_NO_DATAGRAMS != NULL && H3_NO_DATAGRAMS_CA_FILE != NULL) {
        CHECK_RESULT(quiver_config_set_str(config, H3_NO_DATAGRAMS, "protocol", "http3"),
                     QUIVER_RESULT_OK);
        CHECK_RESULT(quiver_config_set_str(config, H3_NO_DATAGRAMS, "ca_file",
                                           H3_NO_DATAGRAMS_CA_FILE),
                     QUIVER_RESULT_OK);
    } else {
        H3_NO_DATAGRAMS = NULL;
    }
    const quiver_client *c = new_client(config);
    quiver_config_free(config);

    struct {
        const char *name;
        void (*run)(const quiver_client *);
    } tests[] = {
        {"echo", test_echo},
        {"ping_pong", test_ping_pong},
        {"pause_resume", test_pause_resume},
        {"errors", test_errors},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        int before = test_failures;
        double t0 = now_ms();
        tests[i].run(c);
        printf("channel %-24s %s (%.0f ms)\n", tests[i].name,
               test_failures == before ? "ok" : "FAILED", now_ms() - t0);
        fflush(stdout);
    }
    quiver_client_free(c);
    int before = test_failures;
    double t0 = now_ms();
    test_free_client();
    printf("channel %-24s %s (%.0f ms)\n", "free_client", test_failures == before ? "ok" : "FAILED",
           now_ms() - t0);

    printf("test_channel: %s\n", test_failures == 0 ? "all passed" : "FAILED");
    return test_failures == 0 ? 0 : 1;
}
