/* Getting connected (pool options resolve, happy_eyeballs_delay, dns_cache_ttl, unix_socket,
 * SOCKS5 proxies and alt_svc) against the test server: Happy Eyeballs past a black-holed first
 * address, the dial's own error for a caller waiting on it, Unix domain sockets for HTTP/1.1 and
 * h2c, SOCKS5 with and without authentication, automatic HTTP/3 from `alt-svc` and the fallback
 * to TCP when UDP is black-holed, HTTPS DNS records (`https_rr`), and the client-wide cap
 * `max_total_connections`. tests/c/run.sh starts the server and sets QUIVER_TEST_* in
 * the environment. Exits non-zero when any check fails. */
#define _POSIX_C_SOURCE 200809L

#include "test_util.h"

static int HTTP_PORT;
static int BLACKHOLE_PORT; /* 127.0.0.1 serves, 127.0.0.2 drops SYNs */
static int SOCKS5_PORT;
static int SOCKS5_AUTH_PORT; /* quiver:secret */
static const char *UNIX_HTTP;
static const char *UNIX_H2C;
static int HTTPS_ALT_PORT;         /* alt-svc: h3 on the test server's HTTP/3 port */
static int HTTPS_ALT_BLOCKED_PORT; /* alt-svc: h3 on a UDP port that drops everything */
static const char *CA_FILE;
static int HTTPS_PORT;
static int DNS_PORT; /* HTTPS records for quiver.test */

/* GET `url` with a client built from `config` (freed); the response or NULL with `*err`. */
static quiver_response *get_with(quiver_config *config, const char *url, quiver_error **err) {
    const quiver_client *c = new_client(config);
    quiver_config_free(config);
    quiver_response *resp = NULL;
    *err = NULL;
    quiver_result r = quiver_client_send_blocking(c, quiver_request_new("GET", url), &resp, err);
    CHECK((r == QUIVER_RESULT_OK) == (resp != NULL));
    quiver_client_free(c);
    return resp;
}

/* Whether a response's body is `expected`. */
static int body_is(const quiver_response *resp, const char *expected) {
    const uint8_t *data = NULL;
    size_t len = 0;
    quiver_response_body(resp, &data, &len);
    return bytes_eq((const char *)data, len, expected);
}

/* A configuration without the proxy environment variables. */
static quiver_config *plain_config(void) {
    quiver_config *config = quiver_config_new();
    REQUIRE(config != NULL);
    CHECK_RESULT(quiver_config_set_bool(config, NULL, "proxy_from_env", false), QUIVER_RESULT_OK);
    return config;
}

static void expect_ok(quiver_config *config, const char *url, quiver_http_version version) {
    quiver_error *err = NULL;
    quiver_response *resp = get_with(config, url, &err);
    if (resp == NULL) {
        print_error(url, err);
    }
    CHECK(resp != NULL);
    if (resp != NULL) {
        CHECK(body_is(resp, "ok"));
        CHECK(quiver_response_version(resp) == version);
        quiver_response_free(resp);
    }
    quiver_error_free(err);
}

static void expect_error(quiver_config *config, const char *url, quiver_result code) {
    quiver_error *err = NULL;
    quiver_response *resp = get_with(config, url, &err);
    CHECK(resp == NULL && err != NULL);
    if (err != NULL) {
        CHECK_RESULT(quiver_error_code(err), code);
        CHECK(strstr(quiver_error_message(err), "nope") == NULL);
    }
    quiver_response_free(resp);
    quiver_error_free(err);
}

static void test_happy_eyeballs(void) {
    quiver_config *config = plain_config();
    char *resolve = format("eyeballs.test:%d:127.0.0.2,127.0.0.1", BLACKHOLE_PORT);
    CHECK_RESULT(quiver_config_set_str(config, NULL, "resolve", resolve), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_duration_ms(config, NULL, "connect_timeout", 10000),
                 QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_duration_ms(config, NULL, "happy_eyeballs_delay", 250),
                 QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_none(config, NULL, "dns_cache_ttl"), QUIVER_RESULT_OK);
    char *url = format("http://eyeballs.test:%d/health", BLACKHOLE_PORT);
    double started = now_ms();
    expect_ok(config, url, QUIVER_HTTP_VERSION_HTTP1_1);
    double took = now_ms() - started;
    CHECK(took >= 240 && took < 4000 * slow_factor());
    free(url);
    free(resolve);
}

static void test_dial_error_reaches_its_caller(void) {
    quiver_config *config = plain_config();
    char *resolve = format("hole.test:%d:127.0.0.2", BLACKHOLE_PORT);
    CHECK_RESULT(quiver_config_set_str(config, NULL, "resolve", resolve), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_duration_ms(config, NULL, "connect_timeout", 600),
                 QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_duration_ms(config, NULL, "checkout_timeout", 100),
                 QUIVER_RESULT_OK);
    char *url = format("http://hole.test:%d/", BLACKHOLE_PORT);
    expect_error(config, url, QUIVER_RESULT_CONNECT_TIMEOUT);
    free(url);
    free(resolve);

    /* A malformed override is refused when the client is built. */
    config = plain_config();
    CHECK_RESULT(quiver_config_set_str(config, NULL, "resolve", "api.test:80:nope"),
                 QUIVER_RESULT_OK);
    const quiver_client *c = NULL;
    quiver_error *err = NULL;
    CHECK_RESULT(quiver_client_new(config, &c, &err), QUIVER_RESULT_INVALID_CONFIG);
    CHECK(c == NULL && err != NULL && strstr(quiver_error_message(err), "resolve") != NULL);
    quiver_error_free(err);
    quiver_config_free(config);
}

static void test_unix_sockets(void) {
    quiver_config *config = plain_config();
    CHECK_RESULT(quiver_config_set_str(config, NULL, "unix_socket", UNIX_HTTP), QUIVER_RESULT_OK);
    expect_ok(config, "http://localhost/health", QUIVER_HTTP_VERSION_HTTP1_1);

    config = plain_config();
    CHECK_RESULT(quiver_config_set_str(config, "http://h2c.local", "unix_socket", UNIX_H2C),
                 QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_str(config, "http://h2c.local", "protocol", "http2"),
                 QUIVER_RESULT_OK);
    expect_ok(config, "http://h2c.local/health", QUIVER_HTTP_VERSION_HTTP2);

    config = plain_config();
    CHECK_RESULT(quiver_config_set_str(config, NULL, "unix_socket", "/nonexistent/quiver.sock"),
                 QUIVER_RESULT_OK);
    expect_error(config, "http://localhost/", QUIVER_RESULT_CONNECT_FAILED);
}

static void test_socks5(void) {
    char *url = format("http://localhost:%d/health", HTTP_PORT);
    char *proxies[] = {
        format("socks5://127.0.0.1:%d", SOCKS5_PORT),
        format("socks5h://127.0.0.1:%d", SOCKS5_PORT),
        format("socks5h://quiver:secret@127.0.0.1:%d", SOCKS5_AUTH_PORT),
    };
    for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++) {
        quiver_config *config = plain_config();
        CHECK_RESULT(quiver_config_set_str(config, NULL, "proxy", proxies[i]), QUIVER_RESULT_OK);
        expect_ok(config, url, QUIVER_HTTP_VERSION_HTTP1_1);
        free(proxies[i]);
    }
    quiver_config *config = plain_config();
    char *wrong = format("socks5://quiver:nope@127.0.0.1:%d", SOCKS5_AUTH_PORT);
    CHECK_RESULT(quiver_config_set_str(config, NULL, "proxy", wrong), QUIVER_RESULT_OK);
    expect_error(config, url, QUIVER_RESULT_PROXY_CONNECT_FAILED);
    free(wrong);
    free(url);
}

/* GET `url` on `c`: its HTTP version, or UNKNOWN after a failure (reported). */
static quiver_http_version version_of(const quiver_client *c, const char *url) {
    quiver_response *resp = NULL;
    quiver_error *err = NULL;
    quiver_result r = quiver_client_send_blocking(c, quiver_request_new("GET", url), &resp, &err);
    quiver_http_version v = QUIVER_HTTP_VERSION_UNKNOWN;
    if (r != QUIVER_RESULT_OK) {
        print_error(url, err);
    } else {
        CHECK(body_is(resp, "ok"));
        v = quiver_response_version(resp);
    }
    CHECK_RESULT(r, QUIVER_RESULT_OK);
    quiver_response_free(resp);
    quiver_error_free(err);
    return v;
}

/* A stat of `https://localhost:port` on `c`, and its alt_svc / protocol (copied) if asked. */
static uint64_t origin_stat(const quiver_client *c, int port, quiver_stat stat, char **alt_svc,
                            char **protocol) {
    quiver_stats *stats = NULL;
    CHECK_RESULT(quiver_client_stats(c, &stats), QUIVER_RESULT_OK);
    char *origin = format("https://localhost:%d", port);
    size_t index = 0;
    CHECK_RESULT(quiver_stats_find_origin(stats, origin, &index), QUIVER_RESULT_OK);
    uint64_t value = quiver_stats_origin_get(stats, index, (uint32_t)stat);
    if (alt_svc != NULL) {
        const char *v = quiver_stats_origin_alt_svc(stats, index);
        *alt_svc = v == NULL ? NULL : strdup(v);
    }
    if (protocol != NULL) {
        *protocol = strdup(quiver_stats_origin_protocol(stats, index));
    }
    free(origin);
    quiver_stats_free(stats);
    return value;
}

static quiver_config *tls_config(void) {
    quiver_config *config = plain_config();
    CHECK_RESULT(quiver_config_set_str(config, NULL, "ca_file", CA_FILE), QUIVER_RESULT_OK);
    return config;
}

static void test_alt_svc(void) {
    /* A long head start: QUIC wins the race even on a slow machine (or under valgrind). */
    quiver_config *config = tls_config();
    CHECK_RESULT(quiver_config_set_duration_ms(config, NULL, "happy_eyeballs_delay", 3000),
                 QUIVER_RESULT_OK);
    const quiver_client *c = new_client(config);
    quiver_config_free(config);
    char *url = format("https://localhost:%d/", HTTPS_ALT_PORT);
    CHECK(version_of(c, url) == QUIVER_HTTP_VERSION_HTTP2);
    for (int i = 0; i < 3; i++) {
        CHECK(version_of(c, url) == QUIVER_HTTP_VERSION_HTTP3);
    }
    char *alt_svc = NULL, *protocol = NULL;
    CHECK(origin_stat(c, HTTPS_ALT_PORT, QUIVER_STAT_FALLBACKS, &alt_svc, &protocol) == 0);
    CHECK(alt_svc != NULL && strncmp(alt_svc, "h3=\":", 5) == 0);
    CHECK(protocol != NULL && strcmp(protocol, "http3") == 0);
    free(alt_svc);
    free(protocol);
    quiver_client_free(c);

    /* alt_svc off: TCP only. */
    config = tls_config();
    CHECK_RESULT(quiver_config_set_bool(config, NULL, "alt_svc", false), QUIVER_RESULT_OK);
    c = new_client(config);
    quiver_config_free(config);
    CHECK(version_of(c, url) == QUIVER_HTTP_VERSION_HTTP2);
    CHECK(version_of(c, url) == QUIVER_HTTP_VERSION_HTTP2);
    quiver_client_free(c);
    free(url);

    /* UDP black-holed: TCP carries every request; the QUIC attempt ends up marked broken. */
    config = tls_config();
    CHECK_RESULT(quiver_config_set_duration_ms(config, NULL, "connect_timeout", 2000),
                 QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_duration_ms(config, NULL, "happy_eyeballs_delay", 100),
                 QUIVER_RESULT_OK);
    c = new_client(config);
    quiver_config_free(config);
    url = format("https://localhost:%d/", HTTPS_ALT_BLOCKED_PORT);
    CHECK(version_of(c, url) == QUIVER_HTTP_VERSION_HTTP2);
    double started = now_ms();
    CHECK(version_of(c, url) == QUIVER_HTTP_VERSION_HTTP2);
    CHECK(now_ms() - started < 1500 * slow_factor());
    CHECK(origin_stat(c, HTTPS_ALT_BLOCKED_PORT, QUIVER_STAT_FALLBACKS, NULL, NULL) == 1);
    double deadline = now_ms() + 20000;
    while (origin_stat(c, HTTPS_ALT_BLOCKED_PORT, QUIVER_STAT_ALT_SVC_BROKEN, NULL, NULL) == 0 &&
           now_ms() < deadline) {
        sleep_ms(50);
    }
    CHECK(origin_stat(c, HTTPS_ALT_BLOCKED_PORT, QUIVER_STAT_ALT_SVC_BROKEN, NULL, NULL) == 1);
    CHECK(version_of(c, url) == QUIVER_HTTP_VERSION_HTTP2);
    CHECK(origin_stat(c, HTTPS_ALT_BLOCKED_PORT, QUIVER_STAT_FALLBACKS, NULL, NULL) == 1);
    CHECK(origin_stat(c, HTTPS_ALT_BLOCKED_PORT, QUIVER_STAT_ERRORS, NULL, NULL) == 0);
    quiver_client_free(c);
    free(url);
}

/* With a cap of 1 over two origins: an idle connection to one is closed to make room for the
 * other; with the one connection busy, the other origin gets `checkout_timeout`. */
static void test_total_connection_cap(void) {
    quiver_config *config = plain_config();
    char *resolve = format("o1.test:%d:127.0.0.1 o2.test:%d:127.0.0.1", HTTP_PORT, HTTP_PORT);
    CHECK_RESULT(quiver_config_set_str(config, NULL, "resolve", resolve), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_int(config, NULL, "max_total_connections", 1), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_duration_ms(config, NULL, "checkout_timeout", 300),
                 QUIVER_RESULT_OK);
    const quiver_client *c = new_client(config);
    quiver_config_free(config);
    char *one = format("http://o1.test:%d/health", HTTP_PORT);
    char *two = format("http://o2.test:%d/health", HTTP_PORT);
    for (int i = 0; i < 2; i++) {
        CHECK(version_of(c, one) == QUIVER_HTTP_VERSION_HTTP1_1);
        CHECK(version_of(c, two) == QUIVER_HTTP_VERSION_HTTP1_1);
    }
    quiver_stats *stats = NULL;
    CHECK_RESULT(quiver_client_stats(c, &stats), QUIVER_RESULT_OK);
    CHECK(quiver_stats_total(stats, QUIVER_STAT_CONNECTIONS_OPENED) == 4);
    CHECK(quiver_stats_total(stats, QUIVER_STAT_CONNECTIONS) <= 1);
    quiver_stats_free(stats);

    completion slow;
    completion_init(&slow);
    char *slow_url = format("http://o1.test:%d/slow/1500", HTTP_PORT);
    CHECK_RESULT(quiver_client_send(c, quiver_request_new("GET", slow_url), on_response, &slow),
                 QUIVER_RESULT_OK);
    sleep_ms(200);
    quiver_response *resp = NULL;
    quiver_error *err = NULL;
    CHECK_RESULT(quiver_client_send_blocking(c, quiver_request_new("GET", two), &resp, &err),
                 QUIVER_RESULT_CHECKOUT_TIMEOUT);
    CHECK(err != NULL && strstr(quiver_error_message(err), "max_total_connections") != NULL);
    quiver_error_free(err);
    CHECK(completion_wait(&slow, 10000) == 1 && slow.response != NULL);
    completion_destroy(&slow);
    quiver_client_free(c);
    free(slow_url);
    free(one);
    free(two);
    free(resolve);

    /* Client-wide only: a rule cannot set it. */
    config = plain_config();
    CHECK_RESULT(quiver_config_set_int(config, "http://o1.test", "max_total_connections", 2),
                 QUIVER_RESULT_OK);
    const quiver_client *bad = NULL;
    err = NULL;
    CHECK_RESULT(quiver_client_new(config, &bad, &err), QUIVER_RESULT_INVALID_CONFIG);
    CHECK(bad == NULL);
    quiver_error_free(err);
    quiver_config_free(config);
}

/* An HTTPS DNS record (the test server's `dns` listener, for `quiver.test`) puts the first
 * request on HTTP/3; without `https_rr` it goes over TCP. */
static void test_https_records(void) {
    char *resolve = format("quiver.test:%d:127.0.0.1", HTTPS_PORT);
    char *nameserver = format("127.0.0.1:%d", DNS_PORT);
    char *url = format("https://quiver.test:%d/", HTTPS_PORT);
    for (int on = 1; on >= 0; on--) {
        quiver_config *config = tls_config();
        CHECK_RESULT(quiver_config_set_str(config, NULL, "resolve", resolve), QUIVER_RESULT_OK);
        CHECK_RESULT(quiver_config_set_duration_ms(config, NULL, "happy_eyeballs_delay", 3000),
                     QUIVER_RESULT_OK);
        CHECK_RESULT(quiver_config_set_bool(config, NULL, "https_rr", on), QUIVER_RESULT_OK);
        CHECK_RESULT(quiver_config_set_str(config, NULL, "https_rr_nameserver", nameserver),
                     QUIVER_RESULT_OK);
        const quiver_client *c = new_client(config);
        quiver_config_free(config);
        quiver_http_version want = on ? QUIVER_HTTP_VERSION_HTTP3 : QUIVER_HTTP_VERSION_HTTP2;
        CHECK(version_of(c, url) == want);
        CHECK(version_of(c, url) == want);
        quiver_client_free(c);
    }
    quiver_config *config = plain_config();
    CHECK_RESULT(quiver_config_set_str(config, NULL, "https_rr_nameserver", "localhost"),
                 QUIVER_RESULT_OK);
    const quiver_client *bad = NULL;
    quiver_error *err = NULL;
    CHECK_RESULT(quiver_client_new(config, &bad, &err), QUIVER_RESULT_INVALID_CONFIG);
    quiver_error_free(err);
    quiver_config_free(config);
    free(url);
    free(nameserver);
    free(resolve);
}

int main(void) {
    HTTP_PORT = atoi(env_or_die("QUIVER_TEST_HTTP_PORT"));
    BLACKHOLE_PORT = atoi(env_or_die("QUIVER_TEST_BLACKHOLE_PORT"));
    SOCKS5_PORT = atoi(env_or_die("QUIVER_TEST_SOCKS5_PORT"));
    SOCKS5_AUTH_PORT = atoi(env_or_die("QUIVER_TEST_SOCKS5_AUTH_PORT"));
    UNIX_HTTP = env_or_die("QUIVER_TEST_UNIX_HTTP");
    UNIX_H2C = env_or_die("QUIVER_TEST_UNIX_H2C");
    HTTPS_ALT_PORT = atoi(env_or_die("QUIVER_TEST_HTTPS_ALT_PORT"));
    HTTPS_ALT_BLOCKED_PORT = atoi(env_or_die("QUIVER_TEST_HTTPS_ALT_BLOCKED_PORT"));
    CA_FILE = env_or_die("QUIVER_TEST_CA_FILE");
    HTTPS_PORT = atoi(env_or_die("QUIVER_TEST_HTTPS_PORT"));
    DNS_PORT = atoi(env_or_die("QUIVER_TEST_DNS_PORT"));
    REQUIRE(HTTP_PORT > 0 && BLACKHOLE_PORT > 0 && SOCKS5_PORT > 0 && SOCKS5_AUTH_PORT > 0);
    struct {
        const char *name;
        void (*run)(void);
    } tests[] = {
        {"happy_eyeballs", test_happy_eyeballs},
        {"dial_error_reaches_its_caller", test_dial_error_reaches_its_caller},
        {"unix_sockets", test_unix_sockets},
        {"socks5", test_socks5},
        {"alt_svc", test_alt_svc},
        {"total_connection_cap", test_total_connection_cap},
        {"https_records", test_https_records},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        int before = test_failures;
        double t0 = now_ms();
        tests[i].run();
        printf("dialing %-30s %s (%.0f ms)\n", tests[i].name,
               test_failures == before ? "ok" : "FAILED", now_ms() - t0);
        fflush(stdout);
    }
    printf("test_dialing: %s\n", test_failures == 0 ? "all passed" : "FAILED");
    return test_failures == 0 ? 0 : 1;
}
