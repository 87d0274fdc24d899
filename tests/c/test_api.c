/* The C ABI end to end, against the loopback test server (tests/c/run.sh starts it and sets
 * QUIVER_TEST_* in the environment). Exits non-zero when any check fails. */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

static const char *HTTP;          /* http://127.0.0.1:PORT  (HTTP/1.1) */
static const char *HTTPS;         /* https://localhost:PORT (HTTP/2 or HTTP/1.1 by ALPN) */
static const char *H2C;           /* http://127.0.0.1:PORT  (HTTP/2, prior knowledge), or NULL */
static const char *H3;            /* https://localhost:PORT (HTTP/3, UDP), or NULL */
static const char *CA_FILE;
static const char *WRONG_CA_FILE;

static const quiver_client *client;    /* ca_file set, protocol auto: https is HTTP/2; H3 http3 */
static const quiver_client *client_h1; /* like `client`, with a rule: the https origin is http1 */

/* ---- helpers ---- */


static int body_eq(const quiver_response *resp, const char *expected) {
    const uint8_t *data = NULL;
    size_t len = 0;
    if (quiver_response_body(resp, &data, &len) != QUIVER_RESULT_OK) {
        return 0;
    }
    return bytes_eq((const char *)data, len, expected);
}

static int header_eq(const quiver_response *resp, const char *name, const char *expected) {
    const char *value = NULL;
    size_t len = 0;
    return quiver_response_header_get(resp, name, 0, &value, &len) == QUIVER_RESULT_OK &&
           bytes_eq(value, len, expected);
}


/* ---- version, result codes, errors without a network ---- */

static void test_version(void) {
    const char *v = quiver_version();
    REQUIRE(v != NULL);
    unsigned major = 0, minor = 0, patch = 0;
    CHECK(sscanf(v, "%u.%u.%u", &major, &minor, &patch) == 3);
    CHECK(quiver_version_num() == (major << 16 | minor << 8 | patch));
}

static void test_result_codes(void) {
    CHECK(strcmp(quiver_result_str(QUIVER_RESULT_OK), "success") == 0);
    const quiver_result codes[] = {
        QUIVER_RESULT_NULL_PARAMETER, QUIVER_RESULT_INVALID_ARGUMENT, QUIVER_RESULT_NOT_FOUND,
        QUIVER_RESULT_WOULD_DEADLOCK, QUIVER_RESULT_PANIC,          QUIVER_RESULT_UNKNOWN_KIND,
        QUIVER_RESULT_CONNECT_REFUSED, QUIVER_RESULT_CANCELLED,     QUIVER_RESULT_SHUTDOWN,
        QUIVER_RESULT_INVALID_URL,     QUIVER_RESULT_INVALID_CONFIG, QUIVER_RESULT_FORKED,
        QUIVER_RESULT_TLS,             QUIVER_RESULT_INTERNAL,
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *text = quiver_result_str(codes[i]);
        CHECK(text != NULL && *text != 0 && strstr(text, "unknown quiver_result") == NULL);
    }
    CHECK(strcmp(quiver_result_str(12345), "unknown quiver_result code") == 0);
    CHECK(quiver_result_class(QUIVER_RESULT_OK) == QUIVER_CLASS_NONE);
    CHECK(quiver_result_class(QUIVER_RESULT_CONNECT_REFUSED) == QUIVER_CLASS_TRANSIENT);
    CHECK(quiver_result_class(QUIVER_RESULT_CANCELLED) == QUIVER_CLASS_TRANSIENT);
    CHECK(quiver_result_class(QUIVER_RESULT_INVALID_URL) == QUIVER_CLASS_INVALID);
    CHECK(quiver_result_class(QUIVER_RESULT_FORKED) == QUIVER_CLASS_INVALID);
    CHECK(quiver_result_class(QUIVER_RESULT_TLS) == QUIVER_CLASS_UNRECOVERABLE);
    CHECK(quiver_result_class(QUIVER_RESULT_NULL_PARAMETER) == QUIVER_CLASS_INVALID);
    CHECK(quiver_result_class(QUIVER_RESULT_PANIC) == QUIVER_CLASS_UNRECOVERABLE);
    CHECK(strcmp(quiver_class_str(QUIVER_CLASS_TRANSIENT), "transient") == 0);
    CHECK(strcmp(quiver_class_str(QUIVER_CLASS_INVALID), "invalid") == 0);
    CHECK(strcmp(quiver_class_str(QUIVER_CLASS_UNRECOVERABLE), "unrecoverable") == 0);
    CHECK(strcmp(quiver_class_str(77), "none") == 0);
    CHECK(strcmp(quiver_http_version_str(QUIVER_HTTP_VERSION_HTTP1_1), "HTTP/1.1") == 0);
    CHECK(strcmp(quiver_http_version_str(QUIVER_HTTP_VERSION_HTTP2), "HTTP/2") == 0);

    /* NULL arguments: a code, NULL or 0, never a crash; frees of NULL are no-ops. */
    CHECK(quiver_error_code(NULL) == QUIVER_RESULT_NULL_PARAMETER);
    CHECK(quiver_error_class(NULL) == QUIVER_CLASS_NONE);
    CHECK(quiver_error_kind(NULL) == NULL);
    CHECK(quiver_error_message(NULL) == NULL);
    CHECK(quiver_response_status(NULL) == 0);
    CHECK(quiver_response_version(NULL) == QUIVER_HTTP_VERSION_UNKNOWN);
    CHECK(quiver_response_header_count(NULL) == 0);
    CHECK_RESULT(quiver_response_body(NULL, NULL, NULL), QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_stream_pause(NULL), QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_cancel_token_cancel(NULL), QUIVER_RESULT_NULL_PARAMETER);
    CHECK(quiver_request_new(NULL, "http://x/") == NULL);
    CHECK(quiver_request_new("GET", "http://\xff/") == NULL); /* not UTF-8 */
    quiver_error_free(NULL);
    quiver_response_free(NULL);
    quiver_request_free(NULL);
    quiver_config_free(NULL);
    quiver_client_free(NULL);
    quiver_stream_free(NULL);
    quiver_stats_free(NULL);
    quiver_cancel_token_free(NULL);

    /* The same for channels, queues and the newer setters. */
    CHECK(quiver_result_class(QUIVER_RESULT_SYSTEM) == QUIVER_CLASS_TRANSIENT);
    CHECK(strstr(quiver_result_str(QUIVER_RESULT_SYSTEM), "operating system") != NULL);
    CHECK(quiver_result_class(QUIVER_RESULT_DATAGRAM_TOO_LARGE) == QUIVER_CLASS_INVALID);
    CHECK(quiver_result_class(QUIVER_RESULT_DATAGRAM_ERROR) == QUIVER_CLASS_TRANSIENT);
    CHECK(quiver_result_class(QUIVER_RESULT_DATAGRAMS_DISABLED) == QUIVER_CLASS_TRANSIENT);
    CHECK(quiver_result_class(QUIVER_RESULT_POOL_UNSUPPORTED_FOR_TRANSPORT) ==
          QUIVER_CLASS_INVALID);
    CHECK(strcmp(quiver_http_version_str(QUIVER_HTTP_VERSION_HTTP3), "HTTP/3") == 0);
    quiver_error *err = (quiver_error *)&err; /* must be reset to NULL */
    CHECK_RESULT(quiver_channel_send(NULL, (const uint8_t *)"x", 1, &err),
                 QUIVER_RESULT_NULL_PARAMETER);
    CHECK(err == NULL);
    CHECK_RESULT(quiver_channel_close(NULL), QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_channel_pause(NULL), QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_channel_resume(NULL), QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_channel_cancel(NULL), QUIVER_RESULT_NULL_PARAMETER);
    CHECK(quiver_channel_response(NULL) == NULL);
    CHECK(quiver_channel_max_datagram_size(NULL) == 0);
    quiver_channel_free(NULL);
    CHECK_RESULT(quiver_queue_new(NULL), QUIVER_RESULT_NULL_PARAMETER);
    CHECK(quiver_queue_fd(NULL) == -1);
    CHECK(quiver_queue_dispatch(NULL, 10) == 0);
    CHECK(quiver_queue_pending(NULL) == 0);
    quiver_queue_free(NULL);
    CHECK_RESULT(quiver_config_set_queue(NULL, NULL), QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_request_set_early_data(NULL, true), QUIVER_RESULT_NULL_PARAMETER);
    /* NULL client or on_end: the request is consumed all the same, no callback runs. */
    CHECK_RESULT(quiver_client_open_channel(NULL, quiver_request_new("CONNECT", "https://x/"),
                                            NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                 QUIVER_RESULT_NULL_PARAMETER);
}

/* A config error: set_* returns the code at once for unknown names and wrong types, and
 * quiver_client_new reports the full error (also for ranges and rule patterns). */
static void expect_config_error(quiver_config *config, const char *needle1, const char *needle2) {
    const quiver_client *c = (const quiver_client *)&c; /* must be reset to NULL */
    quiver_error *err = NULL;
    CHECK_RESULT(quiver_client_new(config, &c, &err), QUIVER_RESULT_INVALID_CONFIG);
    CHECK(c == NULL);
    CHECK_ERROR(err, QUIVER_RESULT_INVALID_CONFIG, QUIVER_CLASS_INVALID, "invalid_config");
    if (err != NULL) {
        const char *msg = quiver_error_message(err);
        CHECK(strstr(msg, needle1) != NULL);
        CHECK(needle2 == NULL || strstr(msg, needle2) != NULL);
        if (strstr(msg, needle1) == NULL) {
            fprintf(stderr, "  message: %s\n", msg);
        }
    }
    quiver_error_free(err);
    quiver_config_free(config);
}

/* Extreme values are invalid errors (kind invalid_config), never a crash. */
static void test_extreme_values(void) {
    struct {
        const char *option;
        int kind; /* 0 int, 1 duration, 2 float */
        double value;
    } bad[] = {
        {"size", 0, 9.2e18},          {"size", 0, -1},
        {"max_response_headers", 0, 1e12}, {"stream_window", 0, -5},
        {"request_timeout", 1, 1.8e19}, {"connect_timeout", 1, 1e15},
        {"window_update_threshold", 2, 1e300}, {"window_update_threshold", 2, -0.5},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        quiver_config *config = quiver_config_new();
        quiver_result set = QUIVER_RESULT_OK;
        if (bad[i].kind == 0) {
            set = quiver_config_set_int(config, NULL, bad[i].option, (int64_t)bad[i].value);
        } else if (bad[i].kind == 1) {
            set = quiver_config_set_duration_ms(config, NULL, bad[i].option,
                                                (uint64_t)bad[i].value);
        } else {
            set = quiver_config_set_float(config, NULL, bad[i].option, bad[i].value);
        }
        if (set == QUIVER_RESULT_OK) {
            expect_config_error(config, bad[i].option, NULL);
        } else {
            CHECK_RESULT(set, QUIVER_RESULT_INVALID_CONFIG);
            quiver_config_free(config);
        }
    }
    /* A per-request timeout beyond a year fails the request, not the process. */
    quiver_request *req = quiver_request_new("GET", "http://127.0.0.1:1/");
    CHECK_RESULT(quiver_request_set_timeout_ms(req, UINT64_MAX), QUIVER_RESULT_OK);
    quiver_response *resp = NULL;
    quiver_error *err = NULL;
    CHECK_RESULT(quiver_client_send_blocking(client, req, &resp, &err),
                 QUIVER_RESULT_INVALID_CONFIG);
    CHECK(resp == NULL && err != NULL);
    quiver_error_free(err);
}

static void test_config_errors(void) {
    quiver_config *config = quiver_config_new();
    CHECK_RESULT(quiver_config_set_int(config, NULL, "sizee", 4), QUIVER_RESULT_INVALID_CONFIG);
    expect_config_error(config, "sizee", NULL);

    config = quiver_config_new();
    CHECK_RESULT(quiver_config_set_str(config, NULL, "size", "four"),
                 QUIVER_RESULT_INVALID_CONFIG);
    expect_config_error(config, "size", NULL);

    config = quiver_config_new(); /* in range for the type, out of range for the option */
    CHECK_RESULT(quiver_config_set_int(config, NULL, "size", 0), QUIVER_RESULT_OK);
    expect_config_error(config, "size", NULL);

    config = quiver_config_new();
    CHECK_RESULT(quiver_config_set_str(config, "https://*.example.com", "protocol", "http7"),
                 QUIVER_RESULT_INVALID_CONFIG);
    expect_config_error(config, "protocol", "*.example.com");

    config = quiver_config_new();
    CHECK_RESULT(quiver_config_set_int(config, "ftp://example.com", "size", 2), QUIVER_RESULT_OK);
    expect_config_error(config, "ftp://example.com", NULL);

    config = quiver_config_new();
    CHECK_RESULT(quiver_config_set_duration_ms(config, NULL, "checkout_timeout", 0),
                 QUIVER_RESULT_OK);
    expect_config_error(config, "checkout_timeout", NULL);

    /* error_out may be NULL; NULL required arguments are reported. */
    config = quiver_config_new();
    CHECK_RESULT(quiver_config_set_int(config, NULL, "nope", 1), QUIVER_RESULT_INVALID_CONFIG);
    const quiver_client *c = NULL;
    CHECK_RESULT(quiver_client_new(config, &c, NULL), QUIVER_RESULT_INVALID_CONFIG);
    CHECK_RESULT(quiver_config_set_int(NULL, NULL, "size", 1), QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_config_set_int(config, NULL, NULL, 1), QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_config_set_str(config, NULL, "ca_file", NULL),
                 QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_client_new(config, NULL, NULL), QUIVER_RESULT_NULL_PARAMETER);
    quiver_config_free(config);

    /* Every setter, client-wide and per rule; one config builds several clients. */
    config = quiver_config_new();
    CHECK_RESULT(quiver_config_set_int(config, NULL, "size", 4), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_duration_ms(config, NULL, "checkout_timeout", 2000),
                 QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_float(config, NULL, "window_update_threshold", 0.25),
                 QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_bool(config, NULL, "danger_accept_invalid_certs", false),
                 QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_none(config, NULL, "request_timeout"), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_str(config, NULL, "tls_roots", "webpki"), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_str(config, "https://*.example.com", "protocol", "http2"),
                 QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_int(config, "https://api.example.com", "max_connections", 2),
                 QUIVER_RESULT_OK);
    const quiver_client *a = new_client(config);
    const quiver_client *b = new_client(config);
    quiver_config_free(config);
    quiver_client_free(a);
    quiver_client_free(b);
    /* NULL config: every option at its default. */
    const quiver_client *d = new_client(NULL);
    quiver_client_free(d);
}

/* ---- requests and responses ---- */

static void test_get_http(void) {
    char *url = format("%s/health", HTTP);
    quiver_response *resp = fetch(client, "GET", url, NULL, NULL);
    CHECK(resp != NULL);
    if (resp != NULL) {
        CHECK(quiver_response_status(resp) == 200);
        CHECK(quiver_response_version(resp) == QUIVER_HTTP_VERSION_HTTP1_1);
        CHECK(body_eq(resp, "ok"));
        CHECK(quiver_response_trailer_count(resp) == 0);
    }
    quiver_response_free(resp);
    free(url);
}

static void test_headers(void) {
    char *url = format("%s/headers", HTTP);
    quiver_request *req = quiver_request_new("GET", url);
    CHECK_RESULT(quiver_request_add_header(req, "x-one", "1"), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_request_add_header(req, "X-Dup", "a"), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_request_add_header(req, "x-dup", "b"), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_request_add_header(req, NULL, "b"), QUIVER_RESULT_NULL_PARAMETER);
    quiver_response *resp = NULL;
    CHECK_RESULT(quiver_client_send_blocking(client, req, &resp, NULL), QUIVER_RESULT_OK);
    REQUIRE(resp != NULL);

    /* The server echoes the request headers as JSON, in order. */
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_RESULT(quiver_response_body(resp, &data, &len), QUIVER_RESULT_OK);
    char *json = format("%.*s", (int)len, (const char *)data);
    CHECK(strstr(json, "[\"x-one\",\"1\"]") != NULL);
    const char *first = strstr(json, "[\"x-dup\",\"a\"]");
    const char *second = strstr(json, "[\"x-dup\",\"b\"]");
    CHECK(first != NULL && second != NULL && first < second);
    free(json);

    /* By index: every field; by name: any case, nth value. */
    size_t count = quiver_response_header_count(resp);
    CHECK(count >= 3);
    int saw_conn_id = 0;
    for (size_t i = 0; i < count; i++) {
        const char *name = NULL, *value = NULL;
        size_t name_len = 0, value_len = 0;
        CHECK_RESULT(quiver_response_header_at(resp, i, &name, &name_len, &value, &value_len),
                     QUIVER_RESULT_OK);
        CHECK(name != NULL && name_len > 0 && value != NULL);
        if (bytes_eq(name, name_len, "x-conn-id")) {
            const char *by_name = NULL;
            size_t by_name_len = 0;
            CHECK_RESULT(quiver_response_header_get(resp, "X-Conn-ID", 0, &by_name, &by_name_len),
                         QUIVER_RESULT_OK);
            CHECK(by_name == value && by_name_len == value_len);
            saw_conn_id = 1;
        }
    }
    CHECK(saw_conn_id);
    CHECK_RESULT(quiver_response_header_at(resp, count, NULL, NULL, NULL, NULL),
                 QUIVER_RESULT_NOT_FOUND);
    CHECK_RESULT(quiver_response_header_get(resp, "x-conn-id", 1, NULL, NULL),
                 QUIVER_RESULT_NOT_FOUND);
    CHECK_RESULT(quiver_response_header_get(resp, "x-nope", 0, NULL, NULL),
                 QUIVER_RESULT_NOT_FOUND);
    CHECK(header_eq(resp, "content-type", "application/json"));
    quiver_response_free(resp);
    free(url);
}

/* POST a copied body to /echo; the answer is the same body. */
static void check_echo(const quiver_client *c, const char *base, quiver_http_version version) {
    char *url = format("%s/echo", base);
    const char *text = "hello from C, through quiver";
    quiver_request *req = quiver_request_new("POST", url);
    CHECK_RESULT(quiver_request_add_header(req, "content-type", "text/plain"), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_request_set_body_copy(req, (const uint8_t *)text, strlen(text)),
                 QUIVER_RESULT_OK);
    quiver_response *resp = NULL;
    quiver_error *err = NULL;
    CHECK_RESULT(quiver_client_send_blocking(c, req, &resp, &err), QUIVER_RESULT_OK);
    print_error(url, err);
    quiver_error_free(err);
    if (resp != NULL) {
        CHECK(quiver_response_status(resp) == 200);
        CHECK(quiver_response_version(resp) == version);
        CHECK(body_eq(resp, text));
        CHECK(header_eq(resp, "x-echo-method", "POST"));
        CHECK(header_eq(resp, "content-type", "text/plain"));
    }
    quiver_response_free(resp);
    free(url);
}

/* GET /headers: the server saw our headers, over the expected version. */
static void check_request_headers(const quiver_client *c, const char *base,
                                  const char *version_text) {
    char *url = format("%s/headers?q=1", base);
    quiver_request *req = quiver_request_new("GET", url);
    CHECK_RESULT(quiver_request_add_header(req, "x-quiver-test", "one two"), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_request_add_header(req, "x-dup", "a"), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_request_add_header(req, "x-dup", "b"), QUIVER_RESULT_OK);
    quiver_response *resp = NULL;
    quiver_error *err = NULL;
    CHECK_RESULT(quiver_client_send_blocking(c, req, &resp, &err), QUIVER_RESULT_OK);
    print_error(url, err);
    quiver_error_free(err);
    if (resp != NULL) {
        const uint8_t *data = NULL;
        size_t len = 0;
        quiver_response_body(resp, &data, &len);
        char *json = format("%.*s", (int)len, (const char *)data);
        char *version = format("\"version\":\"%s\"", version_text);
        CHECK(strstr(json, version) != NULL);
        CHECK(strstr(json, "[\"x-quiver-test\",\"one two\"]") != NULL);
        const char *a = strstr(json, "[\"x-dup\",\"a\"]");
        const char *b = strstr(json, "[\"x-dup\",\"b\"]");
        CHECK(a != NULL && b != NULL && a < b);
        CHECK(strstr(json, "\"query\":\"q=1\"") != NULL);
        if (strstr(json, version) == NULL) {
            fprintf(stderr, "  %s: %s\n", url, json);
        }
        free(version);
        free(json);
    }
    quiver_response_free(resp);
    free(url);
}

/* GET a large pattern body over the protocol. */
static void check_large_body(const quiver_client *c, const char *base,
                             quiver_http_version version) {
    char *url = format("%s/bytes/300000", base);
    quiver_response *resp = fetch(c, "GET", url, NULL, NULL);
    CHECK(resp != NULL);
    if (resp != NULL) {
        const uint8_t *data = NULL;
        size_t len = 0;
        CHECK_RESULT(quiver_response_body(resp, &data, &len), QUIVER_RESULT_OK);
        CHECK(len == 300000 && is_pattern(data, len, 0));
        CHECK(quiver_response_version(resp) == version);
        CHECK(header_eq(resp, "content-length", "300000"));
    }
    quiver_response_free(resp);
    free(url);
}

static void check_trailers(const quiver_client *c, const char *base, int send_te,
                           size_t expected);

/* Every protocol core speaks: request headers, bodies both ways and trailers read back. */
static void test_protocols(void) {
    quiver_config *config = config_with_ca(CA_FILE);
    const quiver_client *h2c = NULL;
    if (H2C != NULL) {
        CHECK_RESULT(quiver_config_set_str(config, H2C, "protocol", "http2"), QUIVER_RESULT_OK);
        h2c = new_client(config);
    }
    quiver_config_free(config);
    struct {
        const char *name;
        const quiver_client *client;
        const char *base;
        quiver_http_version version;
        const char *version_text;
        int trailers_need_te;
    } protocols[] = {
        {"HTTP/1.1", client, HTTP, QUIVER_HTTP_VERSION_HTTP1_1, "HTTP/1.1", 1},
        {"HTTP/1.1 over TLS (rule)", client_h1, HTTPS, QUIVER_HTTP_VERSION_HTTP1_1, "HTTP/1.1", 1},
        {"HTTP/2 (https, auto)", client, HTTPS, QUIVER_HTTP_VERSION_HTTP2, "HTTP/2.0", 0},
        {"HTTP/2 (h2c)", h2c, H2C, QUIVER_HTTP_VERSION_HTTP2, "HTTP/2.0", 0},
        {"HTTP/3", client, H3, QUIVER_HTTP_VERSION_HTTP3, "HTTP/3.0", 0},
    };
    for (size_t i = 0; i < sizeof protocols / sizeof protocols[0]; i++) {
        if (protocols[i].base == NULL) {
            printf("  (%s: no listener)\n", protocols[i].name);
            continue;
        }
        int before = test_failures;
        check_echo(protocols[i].client, protocols[i].base, protocols[i].version);
        check_request_headers(protocols[i].client, protocols[i].base, protocols[i].version_text);
        check_large_body(protocols[i].client, protocols[i].base, protocols[i].version);
        check_trailers(protocols[i].client, protocols[i].base, protocols[i].trailers_need_te, 2);
        if (test_failures != before) {
            fprintf(stderr, "  ... over %s\n", protocols[i].name);
        }
    }
    quiver_client_free(h2c);

    /* The pools say which protocol they speak. */
    quiver_stats *stats = NULL;
    CHECK_RESULT(quiver_client_stats(client, &stats), QUIVER_RESULT_OK);
    size_t index = 0;
    if (H3 != NULL && quiver_stats_find_origin(stats, H3, &index) == QUIVER_RESULT_OK) {
        CHECK(strcmp(quiver_stats_origin_protocol(stats, index), "http3") == 0);
    } else {
        CHECK(H3 == NULL);
    }
    CHECK_RESULT(quiver_stats_find_origin(stats, HTTPS, &index), QUIVER_RESULT_OK);
    CHECK(strcmp(quiver_stats_origin_protocol(stats, index), "http2") == 0);
    quiver_stats_free(stats);

    /* 0-RTT permission per request (no resumed session here: the request simply goes after
     * the handshake). */
    if (H3 != NULL) {
        char *url = format("%s/early", H3);
        quiver_request *req = quiver_request_new("GET", url);
        CHECK_RESULT(quiver_request_set_early_data(req, false), QUIVER_RESULT_OK);
        quiver_response *resp = NULL;
        CHECK_RESULT(quiver_client_send_blocking(client, req, &resp, NULL), QUIVER_RESULT_OK);
        CHECK(resp != NULL && body_eq(resp, "{\"early\":false}"));
        quiver_response_free(resp);
        free(url);
    }
}

static void check_trailers(const quiver_client *c, const char *base, int send_te,
                           size_t expected) {
    char *url = format("%s/trailers", base);
    quiver_request *req = quiver_request_new("GET", url);
    if (send_te) {
        quiver_request_add_header(req, "te", "trailers");
    }
    quiver_response *resp = NULL;
    CHECK_RESULT(quiver_client_send_blocking(c, req, &resp, NULL), QUIVER_RESULT_OK);
    if (resp != NULL) {
        CHECK(body_eq(resp, "hello trailers"));
        CHECK(quiver_response_trailer_count(resp) == expected);
        if (expected == 2) {
            const char *value = NULL, *name = NULL;
            size_t len = 0, name_len = 0;
            CHECK_RESULT(quiver_response_trailer_get(resp, "X-Trailer-One", 0, &value, &len),
                         QUIVER_RESULT_OK);
            CHECK(bytes_eq(value, len, "1"));
            CHECK_RESULT(quiver_response_trailer_get(resp, "x-trailer-two", 0, &value, &len),
                         QUIVER_RESULT_OK);
            CHECK(bytes_eq(value, len, "2"));
            CHECK_RESULT(quiver_response_trailer_at(resp, 0, &name, &name_len, &value, &len),
                         QUIVER_RESULT_OK);
            CHECK(bytes_eq(name, name_len, "x-trailer-one") ||
                  bytes_eq(name, name_len, "x-trailer-two"));
        }
        CHECK_RESULT(quiver_response_trailer_at(resp, expected, NULL, NULL, NULL, NULL),
                     QUIVER_RESULT_NOT_FOUND);
        CHECK_RESULT(quiver_response_trailer_get(resp, "x-nope", 0, NULL, NULL),
                     QUIVER_RESULT_NOT_FOUND);
    }
    quiver_response_free(resp);
    free(url);
}

static void test_trailers(void) {
    check_trailers(client, HTTP, 1, 2);  /* HTTP/1.1 needs `te: trailers` */
    check_trailers(client, HTTP, 0, 0);
    check_trailers(client, HTTPS, 0, 2); /* HTTP/2 always sends them */
}

static void test_send_async(void) {
    char *url = format("%s/bytes/1000", HTTP);
    completion done;
    completion_init(&done);
    CHECK_RESULT(quiver_client_send(client, quiver_request_new("GET", url), on_response, &done),
                 QUIVER_RESULT_OK);
    CHECK(completion_wait(&done, 5000) == 1);
    CHECK(done.response != NULL && done.error == NULL);
    if (done.response != NULL) {
        const uint8_t *data = NULL;
        size_t len = 0;
        quiver_response_body(done.response, &data, &len);
        CHECK(len == 1000 && is_pattern(data, len, 0));
    }
    sleep_ms(50);
    CHECK(completion_calls(&done) == 1);
    completion_destroy(&done);
    free(url);
}

/* ---- a callback that calls back into the API ---- */

typedef struct {
    completion first;
    completion second;
    quiver_result nested_send;
    quiver_result nested_blocking;
    quiver_result nested_stats;
    char *url;
} reentry;

static void on_first(void *userdata, quiver_response *response, quiver_error *error) {
    reentry *r = userdata;
    /* From inside a callback: send another request, try the blocking call, take stats. */
    r->nested_send = quiver_client_send(client, quiver_request_new("GET", r->url), on_response,
                                        &r->second);
    quiver_response *resp = NULL;
    r->nested_blocking =
        quiver_client_send_blocking(client, quiver_request_new("GET", r->url), &resp, NULL);
    quiver_response_free(resp);
    quiver_stats *stats = NULL;
    r->nested_stats = quiver_client_stats(client, &stats);
    quiver_stats_free(stats);
    on_response(&r->first, response, error);
}

static void test_callback_reentry(void) {
    reentry r;
    completion_init(&r.first);
    completion_init(&r.second);
    r.url = format("%s/health", HTTP);
    CHECK_RESULT(quiver_client_send(client, quiver_request_new("GET", r.url), on_first, &r),
                 QUIVER_RESULT_OK);
    CHECK(completion_wait(&r.first, 5000) == 1);
    CHECK(completion_wait(&r.second, 5000) == 1);
    CHECK_RESULT(r.nested_send, QUIVER_RESULT_OK);
    CHECK_RESULT(r.nested_blocking, QUIVER_RESULT_WOULD_DEADLOCK);
    CHECK_RESULT(r.nested_stats, QUIVER_RESULT_OK);
    CHECK(r.first.response != NULL && quiver_response_status(r.first.response) == 200);
    CHECK(r.second.response != NULL && body_eq(r.second.response, "ok"));
    completion_destroy(&r.first);
    completion_destroy(&r.second);
    free(r.url);
}

/* ---- streaming with pause / resume ---- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int heads, data_calls, ends;
    size_t bytes;
    int pattern_ok;
    int pause_after_first; /* pause from inside the first on_data */
    int cancel_after_first;
    int paused;
    uint16_t status;
    quiver_error *error;
    size_t trailers_at_end;
    const quiver_stream *stream_in_callbacks;
} stream_state;

static void stream_state_init(stream_state *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->pattern_ok = 1;
}

static void stream_state_destroy(stream_state *s) {
    quiver_error_free(s->error);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

static void on_head(void *userdata, const quiver_stream *stream, const quiver_response *head) {
    stream_state *s = userdata;
    pthread_mutex_lock(&s->mu);
    s->heads++;
    s->status = quiver_response_status(head);
    s->stream_in_callbacks = stream;
    pthread_mutex_unlock(&s->mu);
}

static void on_data(void *userdata, const quiver_stream *stream, const uint8_t *data, size_t len) {
    stream_state *s = userdata;
    pthread_mutex_lock(&s->mu);
    if (!is_pattern(data, len, s->bytes)) {
        s->pattern_ok = 0;
    }
    s->bytes += len;
    s->data_calls++;
    if (s->data_calls == 1 && s->pause_after_first) {
        quiver_stream_pause(stream);
        s->paused = 1;
    }
    if (s->data_calls == 1 && s->cancel_after_first) {
        quiver_stream_cancel(stream);
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_end(void *userdata, const quiver_stream *stream, quiver_error *error) {
    stream_state *s = userdata;
    const quiver_response *head = quiver_stream_response(stream);
    pthread_mutex_lock(&s->mu);
    s->ends++;
    if (s->ends == 1) {
        s->error = error;
    } else {
        quiver_error_free(error);
    }
    s->trailers_at_end = head != NULL ? quiver_response_trailer_count(head) : 0;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Waits until `*field` (an int in `s`) reaches `value`; returns whether it did in time. */
static int stream_wait(stream_state *s, const int *field, int value, long timeout_ms) {
    double deadline = now_ms() + (double)(timeout_ms * slow_factor());
    pthread_mutex_lock(&s->mu);
    while (*field < value && now_ms() < deadline) {
        pthread_mutex_unlock(&s->mu);
        sleep_ms(5);
        pthread_mutex_lock(&s->mu);
    }
    int ok = *field >= value;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

static uint64_t buffered_bytes(const quiver_client *c) {
    quiver_stats *stats = NULL;
    CHECK_RESULT(quiver_client_stats(c, &stats), QUIVER_RESULT_OK);
    uint64_t n = quiver_stats_total(stats, QUIVER_STAT_BUFFERED_BYTES);
    quiver_stats_free(stats);
    return n;
}

/* Streams `size` pattern bytes from `url`, pausing in the first on_data: while paused no data
 * callback may run (and over HTTP/2 at most `max_buffered` bytes wait in quiver), then after
 * resume every byte arrives intact. */
static void check_pause_resume(const quiver_client *c, const char *url, size_t size,
                               uint64_t max_buffered) {
    stream_state s;
    stream_state_init(&s);
    s.pause_after_first = 1;
    const quiver_stream *stream = NULL;
    CHECK_RESULT(quiver_client_stream(c, quiver_request_new("GET", url), on_head, on_data, on_end,
                                      &s, &stream),
                 QUIVER_RESULT_OK);
    REQUIRE(stream != NULL);
    CHECK(stream_wait(&s, &s.paused, 1, 5000));

    sleep_ms(100); /* let the connection fill whatever window it has */
    pthread_mutex_lock(&s.mu);
    int calls_when_paused = s.data_calls;
    size_t bytes_when_paused = s.bytes;
    pthread_mutex_unlock(&s.mu);
    sleep_ms(400);
    pthread_mutex_lock(&s.mu);
    CHECK(s.data_calls == calls_when_paused);
    CHECK(s.data_calls == 1);
    CHECK(s.bytes == bytes_when_paused && s.bytes < size);
    CHECK(s.ends == 0);
    CHECK(s.heads == 1 && s.status == 200);
    CHECK(s.stream_in_callbacks == stream);
    pthread_mutex_unlock(&s.mu);
    if (max_buffered > 0) {
        uint64_t buffered = buffered_bytes(c);
        CHECK(buffered <= max_buffered);
        if (buffered > max_buffered) {
            fprintf(stderr, "  %llu bytes buffered while paused, limit %llu\n",
                    (unsigned long long)buffered, (unsigned long long)max_buffered);
        }
    }
    const quiver_response *head = quiver_stream_response(stream);
    CHECK(head != NULL && quiver_response_status(head) == 200);

    CHECK_RESULT(quiver_stream_resume(stream), QUIVER_RESULT_OK);
    CHECK(stream_wait(&s, &s.ends, 1, 30000));
    pthread_mutex_lock(&s.mu);
    CHECK(s.error == NULL);
    print_error(url, s.error);
    CHECK(s.bytes == size);
    CHECK(s.pattern_ok);
    CHECK(s.data_calls > 1);
    pthread_mutex_unlock(&s.mu);
    sleep_ms(50);
    CHECK(s.ends == 1);
    quiver_stream_free(stream);
    stream_state_destroy(&s);
}

static void test_stream_pause_resume(void) {
    size_t size = 4u << 20;
    char *url = format("%s/bytes/%zu", HTTP, size);
    check_pause_resume(client, url, size, 0);
    free(url);

    /* HTTP/2 with a 64 KiB stream window: a paused stream releases no window, so quiver holds
     * at most about one window while the server waits. */
    quiver_config *config = config_with_ca(CA_FILE);
    CHECK_RESULT(quiver_config_set_int(config, NULL, "stream_window", 65536), QUIVER_RESULT_OK);
    const quiver_client *c = new_client(config);
    quiver_config_free(config);
    size = 2u << 20;
    url = format("%s/bytes/%zu", HTTPS, size);
    check_pause_resume(c, url, size, 65536 + 16384);
    free(url);
    quiver_client_free(c);
}

static void test_stream_trailers_and_no_handle(void) {
    /* No handle asked for: the stream runs to its end; trailers are on the head at on_end. */
    char *url = format("%s/trailers", HTTPS);
    stream_state s;
    stream_state_init(&s);
    CHECK_RESULT(quiver_client_stream(client, quiver_request_new("GET", url), on_head, on_data,
                                      on_end, &s, NULL),
                 QUIVER_RESULT_OK);
    CHECK(stream_wait(&s, &s.ends, 1, 5000));
    CHECK(s.error == NULL && s.heads == 1 && s.bytes == strlen("hello trailers"));
    CHECK(s.trailers_at_end == 2);
    stream_state_destroy(&s);
    free(url);

    /* A failed stream: on_end only, with the error. */
    url = format("http://127.0.0.1:%d/", closed_port());
    stream_state_init(&s);
    CHECK_RESULT(quiver_client_stream(client, quiver_request_new("GET", url), NULL, NULL, on_end,
                                      &s, NULL),
                 QUIVER_RESULT_OK);
    CHECK(stream_wait(&s, &s.ends, 1, 5000));
    CHECK(s.heads == 0 && s.data_calls == 0);
    CHECK_ERROR(s.error, QUIVER_RESULT_CONNECT_REFUSED, QUIVER_CLASS_TRANSIENT, "connect_refused");
    stream_state_destroy(&s);
    free(url);

    /* on_end is required. */
    CHECK_RESULT(quiver_client_stream(client, quiver_request_new("GET", HTTP), NULL, NULL, NULL,
                                      NULL, NULL),
                 QUIVER_RESULT_NULL_PARAMETER);
}

/* ---- request bodies: body source (with backpressure), borrowed bytes ---- */

typedef struct {
    pthread_mutex_t mu;
    size_t total, sent;
    int reads, releases;
    int fail_after; /* fail the read after this many reads (0: never) */
} source_state;

static ptrdiff_t source_read(void *userdata, uint8_t *buf, size_t capacity) {
    source_state *s = userdata;
    pthread_mutex_lock(&s->mu);
    s->reads++;
    if (s->fail_after > 0 && s->reads > s->fail_after) {
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    size_t n = s->total - s->sent;
    if (n > capacity) {
        n = capacity;
    }
    if (n > 10000) {
        n = 10000;
    }
    fill_pattern(buf, n, s->sent);
    s->sent += n;
    pthread_mutex_unlock(&s->mu);
    return (ptrdiff_t)n;
}

static void source_release(void *userdata) {
    source_state *s = userdata;
    pthread_mutex_lock(&s->mu);
    s->releases++;
    pthread_mutex_unlock(&s->mu);
}

static int releases_of(source_state *s) {
    pthread_mutex_lock(&s->mu);
    int n = s->releases;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Waits (a little) for the release callback, which may come after the response. */
static void check_released_once(source_state *s) {
    double deadline = now_ms() + 2000.0 * (double)slow_factor();
    while (releases_of(s) == 0 && now_ms() < deadline) {
        sleep_ms(5);
    }
    sleep_ms(20);
    CHECK(releases_of(s) == 1);
}

static void check_source_upload(const quiver_client *c, const char *base, size_t total) {
    char *url = format("%s/echo", base);
    source_state s = {.total = total};
    pthread_mutex_init(&s.mu, NULL);
    quiver_request *req = quiver_request_new("PUT", url);
    CHECK_RESULT(quiver_request_set_body_source(req, source_read, source_release, &s),
                 QUIVER_RESULT_OK);
    quiver_response *resp = NULL;
    quiver_error *err = NULL;
    CHECK_RESULT(quiver_client_send_blocking(c, req, &resp, &err), QUIVER_RESULT_OK);
    print_error(url, err);
    quiver_error_free(err);
    if (resp != NULL) {
        const uint8_t *data = NULL;
        size_t len = 0;
        quiver_response_body(resp, &data, &len);
        CHECK(len == total && is_pattern(data, len, 0));
        CHECK(header_eq(resp, "x-echo-method", "PUT"));
    }
    quiver_response_free(resp);
    check_released_once(&s);
    CHECK(s.reads >= (int)(total / 10000));
    pthread_mutex_destroy(&s.mu);
    free(url);
}

static void test_body_source(void) {
    check_source_upload(client, HTTP, 1u << 20);
    check_source_upload(client, HTTPS, 1u << 20);

    /* A source that fails: the request fails with body_stream; release still runs once. */
    char *url = format("%s/sink", HTTP);
    source_state s = {.total = 1u << 20, .fail_after = 3};
    pthread_mutex_init(&s.mu, NULL);
    quiver_request *req = quiver_request_new("POST", url);
    quiver_request_set_body_source(req, source_read, source_release, &s);
    quiver_response *resp = NULL;
    quiver_error *err = NULL;
    CHECK_RESULT(quiver_client_send_blocking(client, req, &resp, &err), QUIVER_RESULT_BODY_STREAM);
    CHECK_ERROR(err, QUIVER_RESULT_BODY_STREAM, QUIVER_CLASS_TRANSIENT, "body_stream");
    quiver_error_free(err);
    quiver_response_free(resp);
    check_released_once(&s);
    pthread_mutex_destroy(&s.mu);
    free(url);

    /* Backpressure: a server that reads slowly (HTTP/2, 1 MiB server window) makes quiver ask
     * the source for data only as it is sent: after 300 ms at most what the server read (about
     * 1 MiB) plus one window has been asked for, not the whole 8 MiB. Then cancel the upload:
     * the callback says so, and the source is released once. */
    url = format("%s/slow-sink?chunk=16384&delay_ms=5", HTTPS);
    source_state slow = {.total = 8u << 20};
    pthread_mutex_init(&slow.mu, NULL);
    const quiver_cancel_token *token = quiver_cancel_token_new();
    req = quiver_request_new("POST", url);
    quiver_request_set_body_source(req, source_read, source_release, &slow);
    quiver_request_set_cancel_token(req, token);
    completion done;
    completion_init(&done);
    CHECK_RESULT(quiver_client_send(client, req, on_response, &done), QUIVER_RESULT_OK);
    double deadline = now_ms() + 5000.0 * (double)slow_factor();
    for (int started = 0; !started && now_ms() < deadline; sleep_ms(5)) { /* the upload began */
        pthread_mutex_lock(&slow.mu);
        started = slow.sent > 0;
        pthread_mutex_unlock(&slow.mu);
    }
    sleep_ms(300);
    pthread_mutex_lock(&slow.mu);
    size_t sent_early = slow.sent;
    pthread_mutex_unlock(&slow.mu);
    CHECK(sent_early > 0 && sent_early < (3u << 20));
    if (sent_early >= (3u << 20)) {
        fprintf(stderr, "  the source was read %zu bytes ahead\n", sent_early);
    }
    quiver_cancel_token_cancel(token);
    quiver_cancel_token_free(token);
    CHECK(completion_wait(&done, 2000) == 1);
    CHECK_ERROR(done.error, QUIVER_RESULT_CANCELLED, QUIVER_CLASS_TRANSIENT, "cancelled");
    completion_destroy(&done);
    check_released_once(&slow);
    pthread_mutex_destroy(&slow.mu);
    free(url);
}

static uint8_t lent[200000];

static void test_body_borrowed(void) {
    fill_pattern(lent, sizeof lent, 0);
    char *url = format("%s/echo", HTTPS);
    source_state s = {0};
    pthread_mutex_init(&s.mu, NULL);
    quiver_request *req = quiver_request_new("POST", url);
    CHECK_RESULT(quiver_request_set_body_borrowed(req, lent, sizeof lent, source_release, &s),
                 QUIVER_RESULT_OK);
    completion done;
    completion_init(&done);
    CHECK_RESULT(quiver_client_send(client, req, on_response, &done), QUIVER_RESULT_OK);
    CHECK(completion_wait(&done, 10000) == 1);
    if (done.response != NULL) {
        const uint8_t *data = NULL;
        size_t len = 0;
        quiver_response_body(done.response, &data, &len);
        CHECK(len == sizeof lent && memcmp(data, lent, len) == 0);
    }
    completion_destroy(&done);
    check_released_once(&s);

    /* Replaced before sending, or freed unsent: released at once, on this thread. */
    source_state t = {0};
    pthread_mutex_init(&t.mu, NULL);
    req = quiver_request_new("POST", url);
    quiver_request_set_body_borrowed(req, lent, 10, source_release, &t);
    quiver_request_set_body_copy(req, lent, 10);
    CHECK(releases_of(&t) == 1);
    quiver_request_set_body_borrowed(req, lent, 10, source_release, &t);
    quiver_request_free(req);
    CHECK(releases_of(&t) == 2);
    /* A failed call lends nothing. */
    CHECK_RESULT(quiver_request_set_body_borrowed(NULL, lent, 10, source_release, &t),
                 QUIVER_RESULT_NULL_PARAMETER);
    CHECK(releases_of(&t) == 2);
    pthread_mutex_destroy(&t.mu);
    pthread_mutex_destroy(&s.mu);
    free(url);
}

/* ---- cancellation ---- */

static void test_cancel(void) {
    char *url = format("%s/slow/5000", HTTP);
    const quiver_cancel_token *token = quiver_cancel_token_new();
    REQUIRE(token != NULL);
    completion a, b;
    completion_init(&a);
    completion_init(&b);
    /* Two requests share one token. */
    quiver_request *req = quiver_request_new("GET", url);
    quiver_request_set_cancel_token(req, token);
    CHECK_RESULT(quiver_client_send(client, req, on_response, &a), QUIVER_RESULT_OK);
    req = quiver_request_new("GET", url);
    quiver_request_set_cancel_token(req, token);
    CHECK_RESULT(quiver_client_send(client, req, on_response, &b), QUIVER_RESULT_OK);
    sleep_ms(200);
    CHECK(completion_calls(&a) == 0 && completion_calls(&b) == 0);
    CHECK(!quiver_cancel_token_is_cancelled(token));
    double t0 = now_ms();
    CHECK_RESULT(quiver_cancel_token_cancel(token), QUIVER_RESULT_OK);
    CHECK(quiver_cancel_token_is_cancelled(token));
    CHECK(completion_wait(&a, 2000) == 1);
    CHECK(completion_wait(&b, 2000) == 1);
    CHECK(a.at_ms - t0 < 1000.0 * (double)slow_factor());
    CHECK(a.response == NULL && b.response == NULL);
    CHECK_ERROR(a.error, QUIVER_RESULT_CANCELLED, QUIVER_CLASS_TRANSIENT, "cancelled");
    CHECK_ERROR(b.error, QUIVER_RESULT_CANCELLED, QUIVER_CLASS_TRANSIENT, "cancelled");
    sleep_ms(300);
    CHECK(completion_calls(&a) == 1 && completion_calls(&b) == 1);
    completion_destroy(&a);
    completion_destroy(&b);

    /* A request sent with a cancelled token fails at once; the token may be freed first. */
    completion c;
    completion_init(&c);
    req = quiver_request_new("GET", url);
    quiver_request_set_cancel_token(req, token);
    quiver_cancel_token_free(token);
    CHECK_RESULT(quiver_client_send(client, req, on_response, &c), QUIVER_RESULT_OK);
    CHECK(completion_wait(&c, 2000) == 1);
    CHECK_ERROR(c.error, QUIVER_RESULT_CANCELLED, QUIVER_CLASS_TRANSIENT, "cancelled");
    completion_destroy(&c);

    /* A stream cancelled from another thread before its head. */
    stream_state s;
    stream_state_init(&s);
    const quiver_stream *stream = NULL;
    CHECK_RESULT(quiver_client_stream(client, quiver_request_new("GET", url), on_head, on_data,
                                      on_end, &s, &stream),
                 QUIVER_RESULT_OK);
    sleep_ms(200);
    t0 = now_ms();
    CHECK_RESULT(quiver_stream_cancel(stream), QUIVER_RESULT_OK);
    CHECK(stream_wait(&s, &s.ends, 1, 2000));
    CHECK(now_ms() - t0 < 1000.0 * (double)slow_factor());
    CHECK(s.heads == 0 && s.data_calls == 0);
    CHECK_ERROR(s.error, QUIVER_RESULT_CANCELLED, QUIVER_CLASS_TRANSIENT, "cancelled");
    quiver_stream_free(stream);
    stream_state_destroy(&s);
    free(url);

    /* A stream cancelled from its own on_data: no data callback follows. */
    url = format("%s/bytes/1000000?chunk_size=1000&delay_ms=20", HTTP);
    stream_state_init(&s);
    s.cancel_after_first = 1;
    CHECK_RESULT(quiver_client_stream(client, quiver_request_new("GET", url), on_head, on_data,
                                      on_end, &s, &stream),
                 QUIVER_RESULT_OK);
    CHECK(stream_wait(&s, &s.ends, 1, 5000));
    sleep_ms(100);
    CHECK(s.data_calls == 1 && s.ends == 1);
    CHECK_ERROR(s.error, QUIVER_RESULT_CANCELLED, QUIVER_CLASS_TRANSIENT, "cancelled");
    quiver_stream_free(stream);
    stream_state_destroy(&s);
    free(url);

    /* Freeing an unfinished stream's handle cancels it; on_end still runs once. */
    url = format("%s/slow/5000", HTTP);
    stream_state_init(&s);
    CHECK_RESULT(quiver_client_stream(client, quiver_request_new("GET", url), on_head, on_data,
                                      on_end, &s, &stream),
                 QUIVER_RESULT_OK);
    quiver_stream_free(stream);
    CHECK(stream_wait(&s, &s.ends, 1, 2000));
    CHECK_ERROR(s.error, QUIVER_RESULT_CANCELLED, QUIVER_CLASS_TRANSIENT, "cancelled");
    stream_state_destroy(&s);
    free(url);
}

/* ---- freeing a client with requests in flight ---- */

typedef struct {
    const quiver_client *client;
    completion done;
} free_in_callback;

static void on_free_client(void *userdata, quiver_response *response, quiver_error *error) {
    free_in_callback *f = userdata;
    quiver_client_free(f->client); /* on a quiver thread: does not wait */
    on_response(&f->done, response, error);
}

static void test_free_with_requests_in_flight(void) {
    quiver_config *config = config_with_ca(CA_FILE);
    const quiver_client *c = new_client(config);
    char *url = format("%s/slow/5000", HTTP);
    char *url2 = format("%s/slow/5000", HTTPS);
    enum { N = 4 };
    completion done[N];
    for (int i = 0; i < N; i++) {
        completion_init(&done[i]);
        CHECK_RESULT(quiver_client_send(c, quiver_request_new("GET", i % 2 ? url : url2),
                                        on_response, &done[i]),
                     QUIVER_RESULT_OK);
    }
    stream_state s;
    stream_state_init(&s);
    CHECK_RESULT(quiver_client_stream(c, quiver_request_new("GET", url), on_head, on_data, on_end,
                                      &s, NULL),
                 QUIVER_RESULT_OK);
    sleep_ms(200);
    double t0 = now_ms();
    quiver_client_free(c); /* waits for every callback */
    CHECK(now_ms() - t0 < 2000.0 * (double)slow_factor());
    for (int i = 0; i < N; i++) {
        CHECK(completion_calls(&done[i]) == 1);
        CHECK_ERROR(done[i].error, QUIVER_RESULT_SHUTDOWN, QUIVER_CLASS_TRANSIENT, "shutdown");
    }
    CHECK(s.ends == 1);
    CHECK_ERROR(s.error, QUIVER_RESULT_SHUTDOWN, QUIVER_CLASS_TRANSIENT, "shutdown");
    sleep_ms(200);
    for (int i = 0; i < N; i++) {
        CHECK(completion_calls(&done[i]) == 1);
        completion_destroy(&done[i]);
    }
    CHECK(s.ends == 1);
    stream_state_destroy(&s);

    /* Freed from inside a callback: the other request still gets exactly one callback. */
    free_in_callback f;
    f.client = new_client(config);
    completion_init(&f.done);
    completion other;
    completion_init(&other);
    char *quick = format("%s/slow/100", HTTP);
    CHECK_RESULT(quiver_client_send(f.client, quiver_request_new("GET", url), on_response, &other),
                 QUIVER_RESULT_OK);
    CHECK_RESULT(
        quiver_client_send(f.client, quiver_request_new("GET", quick), on_free_client, &f),
        QUIVER_RESULT_OK);
    CHECK(completion_wait(&f.done, 5000) == 1);
    CHECK(f.done.response != NULL);
    CHECK(completion_wait(&other, 2000) == 1);
    CHECK_ERROR(other.error, QUIVER_RESULT_SHUTDOWN, QUIVER_CLASS_TRANSIENT, "shutdown");
    sleep_ms(100);
    CHECK(completion_calls(&other) == 1);
    completion_destroy(&other);
    completion_destroy(&f.done);
    quiver_config_free(config);
    free(quick);
    free(url);
    free(url2);
}

/* ---- exactly once, when cancellation and freeing race completion ---- */

static void test_exactly_once_races(void) {
    enum { N = 40 };
    char *url = format("%s/slow/30", HTTP);
    completion done[N];
    const quiver_cancel_token *tokens[N];
    quiver_config *config = config_with_ca(CA_FILE);
    CHECK_RESULT(quiver_config_set_int(config, NULL, "size", N), QUIVER_RESULT_OK);
    const quiver_client *c = new_client(config);
    quiver_config_free(config);
    for (int i = 0; i < N; i++) {
        completion_init(&done[i]);
        tokens[i] = quiver_cancel_token_new();
        quiver_request *req = quiver_request_new("GET", url);
        quiver_request_set_cancel_token(req, tokens[i]);
        CHECK_RESULT(quiver_client_send(c, req, on_response, &done[i]), QUIVER_RESULT_OK);
    }
    /* Cancel them one by one over about the time they take: some cancels win the race, some
     * come after the response. */
    for (int i = 0; i < N; i++) {
        sleep_ms(2);
        quiver_cancel_token_cancel(tokens[i]);
        quiver_cancel_token_free(tokens[i]);
    }
    int ok = 0, cancelled = 0;
    for (int i = 0; i < N; i++) {
        CHECK(completion_wait(&done[i], 5000) == 1);
        if (done[i].response != NULL) {
            ok++;
        } else if (quiver_error_code(done[i].error) == QUIVER_RESULT_CANCELLED) {
            cancelled++;
        } else {
            print_error("race", done[i].error);
        }
    }
    CHECK(ok + cancelled == N);

    /* Freeing the client while requests complete: each callback still runs once. */
    completion more[N];
    for (int i = 0; i < N; i++) {
        completion_init(&more[i]);
        CHECK_RESULT(quiver_client_send(c, quiver_request_new("GET", url), on_response, &more[i]),
                     QUIVER_RESULT_OK);
    }
    sleep_ms(20);
    quiver_client_free(c);
    for (int i = 0; i < N; i++) {
        CHECK(completion_calls(&more[i]) == 1); /* free waited for them */
        CHECK(more[i].response != NULL ||
              quiver_error_code(more[i].error) == QUIVER_RESULT_SHUTDOWN);
    }
    sleep_ms(100);
    for (int i = 0; i < N; i++) {
        CHECK(completion_calls(&done[i]) == 1 && completion_calls(&more[i]) == 1);
        completion_destroy(&done[i]);
        completion_destroy(&more[i]);
    }
    free(url);
}

/* ---- 1,000 requests in flight at once ---- */

enum { MANY = 1000 };
static completion many[MANY];

static void test_concurrent_1000(void) {
    quiver_config *config = config_with_ca_h3(CA_FILE, H3);
    CHECK_RESULT(quiver_config_set_int(config, NULL, "size", 50), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_duration_ms(config, NULL, "checkout_timeout", 120000),
                 QUIVER_RESULT_OK);
    const quiver_client *c = new_client(config);
    quiver_config_free(config);
    const char *bases[3] = {HTTP, HTTPS, H3};
    size_t nbases = H3 != NULL ? 3 : 2;
    for (int i = 0; i < MANY; i++) {
        completion_init(&many[i]);
        size_t n = 1 + ((size_t)i * 37) % 5000;
        char *url = format("%s/bytes/%zu", bases[(size_t)i % nbases], n);
        CHECK_RESULT(quiver_client_send(c, quiver_request_new("GET", url), on_response, &many[i]),
                     QUIVER_RESULT_OK);
        free(url);
    }
    int ok = 0;
    for (int i = 0; i < MANY; i++) {
        CHECK(completion_wait(&many[i], 60000) == 1);
        size_t n = 1 + ((size_t)i * 37) % 5000;
        const uint8_t *data = NULL;
        size_t len = 0;
        if (many[i].response != NULL &&
            quiver_response_body(many[i].response, &data, &len) == QUIVER_RESULT_OK &&
            quiver_response_status(many[i].response) == 200 && len == n &&
            is_pattern(data, len, 0)) {
            ok++;
        } else {
            print_error("request", many[i].error);
        }
    }
    CHECK(ok == MANY);
    if (ok != MANY) {
        fprintf(stderr, "  %d of %d requests answered correctly\n", ok, MANY);
    }
    sleep_ms(100);
    int once = 0;
    for (int i = 0; i < MANY; i++) {
        once += completion_calls(&many[i]) == 1;
        completion_destroy(&many[i]);
    }
    CHECK(once == MANY);
    quiver_client_free(c);
}

/* ---- a paused stream stalls the server ---- */

/* One counter of the test server (GET /stats over HTTP/1.1); `*body_len` (may be NULL)
 * receives the length of that answer, which the server counts in `bytes_sent` too. */
static uint64_t server_counter(const char *name, size_t *body_len) {
    char *url = format("%s/stats", HTTP);
    quiver_response *resp = fetch(client, "GET", url, NULL, NULL);
    REQUIRE(resp != NULL);
    const uint8_t *data = NULL;
    size_t len = 0;
    quiver_response_body(resp, &data, &len);
    char *json = format("%.*s", (int)len, (const char *)data);
    char *key = format("\"%s\":", name);
    const char *at = strstr(json, key);
    CHECK(at != NULL);
    uint64_t value = at != NULL ? strtoull(at + strlen(key), NULL, 10) : 0;
    if (body_len != NULL) {
        *body_len = len;
    }
    free(key);
    free(json);
    quiver_response_free(resp);
    free(url);
    return value;
}

static void test_pause_stalls_server(void) {
    /* HTTP/2 with a 64 KiB stream window: once paused, quiver returns no credit, so the
     * server's writes stop after one window; its `bytes_sent` does not move. */
    quiver_config *config = config_with_ca(CA_FILE);
    CHECK_RESULT(quiver_config_set_int(config, NULL, "stream_window", 65536), QUIVER_RESULT_OK);
    const quiver_client *c = new_client(config);
    quiver_config_free(config);
    size_t size = 16u << 20;
    char *url = format("%s/bytes/%zu", HTTPS, size);
    stream_state s;
    stream_state_init(&s);
    s.pause_after_first = 1;
    const quiver_stream *stream = NULL;
    CHECK_RESULT(quiver_client_stream(c, quiver_request_new("GET", url), on_head, on_data, on_end,
                                      &s, &stream),
                 QUIVER_RESULT_OK);
    CHECK(stream_wait(&s, &s.paused, 1, 5000));
    sleep_ms(200 * slow_factor()); /* the server fills the window, then waits */

    size_t stats_len = 0;
    uint64_t before = server_counter("bytes_sent", &stats_len);
    sleep_ms(700);
    uint64_t after = server_counter("bytes_sent", NULL);
    /* Only the first /stats answer itself was sent in between. */
    CHECK(after == before + stats_len);
    if (after != before + stats_len) {
        fprintf(stderr, "  bytes_sent moved by %llu while paused (the /stats answer: %zu)\n",
                (unsigned long long)(after - before), stats_len);
    }
    pthread_mutex_lock(&s.mu);
    CHECK(s.data_calls == 1 && s.bytes < size && s.ends == 0);
    pthread_mutex_unlock(&s.mu);

    CHECK_RESULT(quiver_stream_resume(stream), QUIVER_RESULT_OK);
    CHECK(stream_wait(&s, &s.ends, 1, 60000));
    pthread_mutex_lock(&s.mu);
    CHECK(s.error == NULL && s.bytes == size && s.pattern_ok);
    pthread_mutex_unlock(&s.mu);
    print_error(url, s.error);
    /* Resumed, the server sent the rest. */
    uint64_t resumed = server_counter("bytes_sent", NULL);
    CHECK(resumed - after >= size / 2);
    quiver_stream_free(stream);
    stream_state_destroy(&s);
    quiver_client_free(c);
    free(url);
}

/* ---- a 64 MiB upload from a body source, echoed back intact ---- */

static uint8_t pattern_table[65536 + 26]; /* byte i is 'a' + i % 26 */

typedef struct {
    pthread_mutex_t mu;
    size_t total, sent;
    int releases;
    /* the echo, checked as it streams in */
    size_t received;
    int intact, ends;
    quiver_error *error;
} big_upload;

static ptrdiff_t big_read(void *userdata, uint8_t *buf, size_t capacity) {
    big_upload *u = userdata;
    pthread_mutex_lock(&u->mu);
    size_t n = u->total - u->sent;
    n = n < capacity ? n : capacity;
    n = n < 65536 ? n : 65536;
    memcpy(buf, pattern_table + u->sent % 26, n);
    u->sent += n;
    pthread_mutex_unlock(&u->mu);
    return (ptrdiff_t)n;
}

static void big_release(void *userdata) {
    big_upload *u = userdata;
    pthread_mutex_lock(&u->mu);
    u->releases++;
    pthread_mutex_unlock(&u->mu);
}

static void big_on_data(void *userdata, const quiver_stream *stream, const uint8_t *data,
                        size_t len) {
    (void)stream;
    big_upload *u = userdata;
    pthread_mutex_lock(&u->mu);
    for (size_t done = 0; done < len;) {
        size_t n = len - done < 65536 ? len - done : 65536;
        if (memcmp(data + done, pattern_table + (u->received + done) % 26, n) != 0) {
            u->intact = 0;
        }
        done += n;
    }
    u->received += len;
    pthread_mutex_unlock(&u->mu);
}

static void big_on_end(void *userdata, const quiver_stream *stream, quiver_error *error) {
    (void)stream;
    big_upload *u = userdata;
    pthread_mutex_lock(&u->mu);
    u->ends++;
    if (u->ends == 1) {
        u->error = error;
    } else {
        quiver_error_free(error);
    }
    pthread_mutex_unlock(&u->mu);
}

static void test_upload_64mib(void) {
    fill_pattern(pattern_table, sizeof pattern_table, 0);
    big_upload u = {.total = 64u << 20, .intact = 1};
    pthread_mutex_init(&u.mu, NULL);
    char *url = format("%s/echo", HTTP);
    quiver_request *req = quiver_request_new("POST", url);
    CHECK_RESULT(quiver_request_set_body_source(req, big_read, big_release, &u), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_client_stream(client, req, NULL, big_on_data, big_on_end, &u, NULL),
                 QUIVER_RESULT_OK);
    CHECK(wait_count(&u.mu, &u.ends, 1, 120000));
    CHECK(wait_count(&u.mu, &u.releases, 1, 2000));
    pthread_mutex_lock(&u.mu);
    CHECK(u.error == NULL);
    print_error(url, u.error);
    CHECK(u.sent == u.total && u.received == u.total && u.intact);
    if (u.received != u.total) {
        fprintf(stderr, "  echoed %zu of %zu bytes\n", u.received, u.total);
    }
    pthread_mutex_unlock(&u.mu);
    sleep_ms(20);
    CHECK(u.ends == 1 && u.releases == 1);
    quiver_error_free(u.error);
    pthread_mutex_destroy(&u.mu);
    free(url);
}

/* ---- errors by class and kind ---- */

static void expect_error(const quiver_client *c, const char *method, const char *url,
                         quiver_result code, quiver_class class, const char *kind) {
    quiver_error *err = NULL;
    quiver_response *resp = fetch(c, method, url, NULL, &err);
    CHECK(resp == NULL);
    CHECK_ERROR(err, code, class, kind);
    quiver_response_free(resp);
    quiver_error_free(err);
}

static void test_errors(void) {
    char *refused = format("http://127.0.0.1:%d/health", closed_port());
    expect_error(client, "GET", refused, QUIVER_RESULT_CONNECT_REFUSED, QUIVER_CLASS_TRANSIENT,
                 "connect_refused");
    expect_error(client, "GET", "http//nope", QUIVER_RESULT_INVALID_URL, QUIVER_CLASS_INVALID,
                 "invalid_url");
    expect_error(client, "GET", "ftp://example.com/", QUIVER_RESULT_INVALID_SCHEME,
                 QUIVER_CLASS_INVALID, "invalid_scheme");
    expect_error(client, "GE T", HTTP, QUIVER_RESULT_INVALID_METHOD, QUIVER_CLASS_INVALID,
                 "invalid_method");

    /* The same errors through the callback, on a quiver thread. */
    completion done;
    completion_init(&done);
    CHECK_RESULT(quiver_client_send(client, quiver_request_new("GET", "http//nope"), on_response,
                                    &done),
                 QUIVER_RESULT_OK);
    CHECK(completion_wait(&done, 2000) == 1);
    CHECK_ERROR(done.error, QUIVER_RESULT_INVALID_URL, QUIVER_CLASS_INVALID, "invalid_url");
    completion_destroy(&done);

    char *health = format("%s/health", HTTP);
    quiver_request *req = quiver_request_new("GET", health);
    quiver_request_add_header(req, "bad name", "v");
    quiver_error *err = NULL;
    quiver_response *resp = NULL;
    CHECK_RESULT(quiver_client_send_blocking(client, req, &resp, &err), QUIVER_RESULT_INVALID_HEADER);
    CHECK_ERROR(err, QUIVER_RESULT_INVALID_HEADER, QUIVER_CLASS_INVALID, "invalid_header");
    quiver_error_free(err);
    /* CR / LF in a value (header injection) and an empty name: refused before anything is
     * sent, through either call. */
    const char *bad_values[] = {"a\r\nx-injected: 1", "a\nb", "a\rb"};
    for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        req = quiver_request_new("GET", health);
        CHECK_RESULT(quiver_request_add_header(req, "x-bad", bad_values[i]), QUIVER_RESULT_OK);
        err = NULL;
        CHECK_RESULT(quiver_client_send_blocking(client, req, &resp, &err),
                     QUIVER_RESULT_INVALID_HEADER);
        CHECK_ERROR(err, QUIVER_RESULT_INVALID_HEADER, QUIVER_CLASS_INVALID, "invalid_header");
        quiver_error_free(err);
    }
    req = quiver_request_new("GET", health);
    quiver_request_add_header(req, "", "v");
    completion bad;
    completion_init(&bad);
    CHECK_RESULT(quiver_client_send(client, req, on_response, &bad), QUIVER_RESULT_OK);
    CHECK(completion_wait(&bad, 2000) == 1);
    CHECK_ERROR(bad.error, QUIVER_RESULT_INVALID_HEADER, QUIVER_CLASS_INVALID, "invalid_header");
    completion_destroy(&bad);
    expect_error(client, "GET", "https://", QUIVER_RESULT_INVALID_URL, QUIVER_CLASS_INVALID,
                 "invalid_url");
    expect_error(client, "GET", "http://127.0.0.1:99999/", QUIVER_RESULT_INVALID_URL,
                 QUIVER_CLASS_INVALID, "invalid_url");

    /* A server certificate the configured CA did not sign. */
    quiver_config *config = config_with_ca(WRONG_CA_FILE);
    const quiver_client *wrong = new_client(config);
    quiver_config_free(config);
    char *https = format("%s/health", HTTPS);
    expect_error(wrong, "GET", https, QUIVER_RESULT_TLS, QUIVER_CLASS_UNRECOVERABLE, "tls");
    quiver_client_free(wrong);

    /* A timeout. */
    char *slow = format("%s/slow/3000", HTTP);
    req = quiver_request_new("GET", slow);
    CHECK_RESULT(quiver_request_set_timeout_ms(req, 200), QUIVER_RESULT_OK);
    err = NULL;
    CHECK_RESULT(quiver_client_send_blocking(client, req, &resp, &err),
                 QUIVER_RESULT_REQUEST_TIMEOUT);
    CHECK_ERROR(err, QUIVER_RESULT_REQUEST_TIMEOUT, QUIVER_CLASS_TRANSIENT, "request_timeout");
    quiver_error_free(err);

    /* NULL arguments: the request is consumed all the same (valgrind checks nothing leaks). */
    CHECK_RESULT(quiver_client_send(NULL, quiver_request_new("GET", health), on_response, NULL),
                 QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_client_send(client, quiver_request_new("GET", health), NULL, NULL),
                 QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_client_send(client, NULL, on_response, NULL), QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_client_send_blocking(client, quiver_request_new("GET", health), NULL, NULL),
                 QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_client_stats(NULL, NULL), QUIVER_RESULT_NULL_PARAMETER);

    free(slow);
    free(https);
    free(health);
    free(refused);
}

/* ---- stats ---- */

static void test_stats(void) {
    /* A fresh client: 3 requests to the HTTP/1.1 origin (one of them fails), 1 over HTTP/2. */
    quiver_config *config = config_with_ca(CA_FILE);
    const quiver_client *c = new_client(config);
    quiver_config_free(config);
    char *health = format("%s/health", HTTP);
    char *https = format("%s/health", HTTPS);
    char *slow = format("%s/slow/2000", HTTP);
    for (int i = 0; i < 2; i++) {
        quiver_response_free(fetch(c, "GET", health, NULL, NULL));
    }
    quiver_request *req = quiver_request_new("GET", slow);
    quiver_request_set_timeout_ms(req, 100);
    quiver_error *err = NULL;
    quiver_response *resp = NULL;
    CHECK_RESULT(quiver_client_send_blocking(c, req, &resp, &err), QUIVER_RESULT_REQUEST_TIMEOUT);
    quiver_error_free(err);
    quiver_response_free(fetch(c, "GET", https, NULL, NULL));

    quiver_stats *stats = NULL;
    CHECK_RESULT(quiver_client_stats(c, &stats), QUIVER_RESULT_OK);
    REQUIRE(stats != NULL);
    size_t count = quiver_stats_origin_count(stats);
    CHECK(count == 2);
    size_t index = 99;
    CHECK_RESULT(quiver_stats_find_origin(stats, HTTP, &index), QUIVER_RESULT_OK);
    if (index < count) {
        CHECK(strcmp(quiver_stats_origin(stats, index), HTTP) == 0);
        CHECK(strcmp(quiver_stats_origin_protocol(stats, index), "http1") == 0);
        CHECK(quiver_stats_origin_get(stats, index, QUIVER_STAT_REQUESTS) == 3);
        CHECK(quiver_stats_origin_get(stats, index, QUIVER_STAT_ERRORS) == 1);
        CHECK(quiver_stats_origin_get(stats, index, QUIVER_STAT_CONNECTIONS_OPENED) >= 1);
        CHECK(quiver_stats_origin_get(stats, index, QUIVER_STAT_QUEUED) == 0);
        CHECK(quiver_stats_origin_get(stats, index, 1000) == 0);
    }
    CHECK_RESULT(quiver_stats_find_origin(stats, HTTPS, &index), QUIVER_RESULT_OK);
    if (index < count) {
        CHECK(strcmp(quiver_stats_origin_protocol(stats, index), "http2") == 0);
        CHECK(quiver_stats_origin_get(stats, index, QUIVER_STAT_REQUESTS) == 1);
        CHECK(quiver_stats_origin_get(stats, index, QUIVER_STAT_CONNECTIONS) == 1);
        const size_t *streams = NULL;
        size_t len = 0;
        CHECK_RESULT(quiver_stats_origin_connection_streams(stats, index, &streams, &len),
                     QUIVER_RESULT_OK);
        CHECK(len == 1 && streams != NULL && streams[0] == 0);
    }
    CHECK(quiver_stats_total(stats, QUIVER_STAT_REQUESTS) == 4);
    CHECK(quiver_stats_total(stats, QUIVER_STAT_ERRORS) == 1);
    CHECK(quiver_stats_origin(stats, count) == NULL);
    CHECK(quiver_stats_origin_protocol(stats, count) == NULL);
    CHECK_RESULT(quiver_stats_find_origin(stats, "http://nowhere:1", NULL), QUIVER_RESULT_NOT_FOUND);
    CHECK_RESULT(quiver_stats_origin_connection_streams(stats, count, NULL, NULL),
                 QUIVER_RESULT_NOT_FOUND);
    quiver_stats_free(stats);
    quiver_client_free(c);
    free(health);
    free(https);
    free(slow);
}

/* ---- fork ---- */

static void test_fork(void) {
    if (getenv("QUIVER_TEST_VALGRIND") != NULL) {
        /* The child inherits the parent's runtime without its threads (core leaks it on
         * purpose), which valgrind's leak check in the child would report. Tested without. */
        printf("  (skipped under valgrind)\n");
        return;
    }
    CHECK(!quiver_client_is_forked(client));
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        /* The child: the parent's client refuses with `forked`; a new client works. */
        CHECK(quiver_client_is_forked(client));
        /* Closing the parent's client is a no-op here (its pools belong to the parent). */
        CHECK_RESULT(quiver_client_close(client), QUIVER_RESULT_OK);
        CHECK_RESULT(quiver_client_close_all_tunnels(client), QUIVER_RESULT_OK);
        char *url = format("%s/health", HTTP);
        expect_error(client, "GET", url, QUIVER_RESULT_FORKED, QUIVER_CLASS_INVALID, "forked");
        completion done;
        completion_init(&done);
        CHECK_RESULT(quiver_client_send(client, quiver_request_new("GET", url), on_response,
                                        &done),
                     QUIVER_RESULT_OK);
        CHECK(completion_wait(&done, 5000) == 1);
        CHECK_ERROR(done.error, QUIVER_RESULT_FORKED, QUIVER_CLASS_INVALID, "forked");
        completion_destroy(&done);
        const quiver_client *fresh = new_client(NULL);
        CHECK(!quiver_client_is_forked(fresh));
        quiver_response *resp = fetch(fresh, "GET", url, NULL, NULL);
        CHECK(resp != NULL && body_eq(resp, "ok"));
        quiver_response_free(resp);
        quiver_client_free(fresh);
        free(url);
        fflush(stderr);
        _exit(test_failures == 0 ? 0 : 1);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void) {
    HTTP = env_or_die("QUIVER_TEST_HTTP");
    HTTPS = env_or_die("QUIVER_TEST_HTTPS");
    H2C = getenv("QUIVER_TEST_H2C");
    H3 = getenv("QUIVER_TEST_H3");
    CA_FILE = env_or_die("QUIVER_TEST_CA_FILE");
    WRONG_CA_FILE = env_or_die("QUIVER_TEST_WRONG_CA_FILE");

    quiver_config *config = config_with_ca_h3(CA_FILE, H3);
    client = new_client(config);
    CHECK_RESULT(quiver_config_set_str(config, HTTPS, "protocol", "http1"), QUIVER_RESULT_OK);
    client_h1 = new_client(config);
    quiver_config_free(config);

    struct {
        const char *name;
        void (*run)(void);
    } tests[] = {
        {"version", test_version},
        {"result_codes", test_result_codes},
        {"config_errors", test_config_errors},
        {"extreme_values", test_extreme_values},
        {"get_http", test_get_http},
        {"headers", test_headers},
        {"protocols", test_protocols},
        {"trailers", test_trailers},
        {"send_async", test_send_async},
        {"callback_reentry", test_callback_reentry},
        {"stream_pause_resume", test_stream_pause_resume},
        {"pause_stalls_server", test_pause_stalls_server},
        {"stream_trailers_and_no_handle", test_stream_trailers_and_no_handle},
        {"body_source", test_body_source},
        {"body_borrowed", test_body_borrowed},
        {"upload_64mib", test_upload_64mib},
        {"concurrent_1000", test_concurrent_1000},
        {"cancel", test_cancel},
        {"free_with_requests_in_flight", test_free_with_requests_in_flight},
        {"exactly_once_races", test_exactly_once_races},
        {"errors", test_errors},
        {"stats", test_stats},
        {"fork", test_fork},
    };
    const char *only = getenv("QUIVER_TEST_ONLY");
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (only != NULL && strstr(only, tests[i].name) == NULL) {
            continue;
        }
        int before = test_failures;
        double t0 = now_ms();
        tests[i].run();
        printf("%-32s %s (%.0f ms)\n", tests[i].name, test_failures == before ? "ok" : "FAILED",
               now_ms() - t0);
        fflush(stdout);
    }

    quiver_client_free(client_h1);
    quiver_client_free(client);
    printf("test_api: %s\n", test_failures == 0 ? "all passed" : "FAILED");
    return test_failures == 0 ? 0 : 1;
}
