/* Proxies (pool options proxy, proxy_authorization, proxy_protocol, proxy_from_env) and UDP
 * tunnels (quiver_client_open_udp_tunnel, MASQUE CONNECT-UDP over HTTP/3 and HTTP/2) against
 * the test server's forward proxy and UDP echo target; quiver_client_close_all_tunnels,
 * quiver_client_close, the proxy stats, and tunnels on a completion queue. tests/c/run.sh starts
 * the server and sets QUIVER_TEST_* in the environment. Exits non-zero when any check fails. */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_util.h"

static const char *HTTP;      /* http://127.0.0.1:PORT (origin, HTTP/1.1) */
static const char *HTTPS;     /* https://localhost:PORT (origin, HTTP/2 by ALPN) */
static const char *CA_FILE;
static const char *PROXY;     /* http://127.0.0.1:PORT (HTTP/1.1 forward proxy) */
static const char *PROXY_TLS; /* https://localhost:PORT (HTTP/1.1 and HTTP/2 over TLS) */
static const char *PROXY_H3;  /* https://localhost:PORT (MASQUE over HTTP/3), or NULL */
static int UDP_ECHO_PORT;     /* the UDP echo target, on 127.0.0.1 */

static const quiver_client *direct; /* no proxy: reads the server's /stats */

#define GOOD_AUTH "Basic cXVpdmVyOnNlY3JldA==" /* quiver:secret */

/* `url` with quiver:secret credentials after the scheme (free it). */
static char *with_credentials(const char *url) {
    const char *rest = strstr(url, "://");
    REQUIRE(rest != NULL);
    return format("%.*s://quiver:secret@%s", (int)(rest - url), url, rest + 3);
}

/* A configuration trusting the test CA, without the proxy environment variables. */
static quiver_config *base_config(void) {
    quiver_config *config = config_with_ca(CA_FILE);
    CHECK_RESULT(quiver_config_set_bool(config, NULL, "proxy_from_env", false), QUIVER_RESULT_OK);
    return config;
}

/* A client going through `proxy` (NULL: none) with `proxy_protocol` (NULL: default). */
static const quiver_client *proxied_client(const char *proxy, const char *proxy_protocol) {
    quiver_config *config = base_config();
    if (proxy != NULL) {
        CHECK_RESULT(quiver_config_set_str(config, NULL, "proxy", proxy), QUIVER_RESULT_OK);
    }
    if (proxy_protocol != NULL) {
        CHECK_RESULT(quiver_config_set_str(config, NULL, "proxy_protocol", proxy_protocol),
                     QUIVER_RESULT_OK);
    }
    const quiver_client *c = new_client(config);
    quiver_config_free(config);
    return c;
}

/* GET `url` (blocking); the response, or NULL with `*error_out` set. */
static quiver_response *get(const quiver_client *c, const char *url, quiver_error **error_out) {
    quiver_response *resp = NULL;
    quiver_error *err = NULL;
    quiver_result r = quiver_client_send_blocking(c, quiver_request_new("GET", url), &resp, &err);
    CHECK((r == QUIVER_RESULT_OK) == (resp != NULL));
    if (error_out != NULL) {
        *error_out = err;
    } else {
        if (err != NULL) {
            print_error(url, err);
        }
        quiver_error_free(err);
    }
    return resp;
}

/* The body of a response as a fresh C string (free it). */
static char *body_text(const quiver_response *resp) {
    const uint8_t *data = NULL;
    size_t len = 0;
    quiver_response_body(resp, &data, &len);
    return format("%.*s", (int)len, (const char *)data);
}

/* One counter of the test server's /stats. */
static uint64_t server_counter(const char *name) {
    char *url = format("%s/stats", HTTP);
    quiver_response *resp = get(direct, url, NULL);
    REQUIRE(resp != NULL);
    char *json = body_text(resp);
    char *key = format("\"%s\":", name);
    const char *at = strstr(json, key);
    CHECK(at != NULL);
    uint64_t value = at != NULL ? strtoull(at + strlen(key), NULL, 10) : 0;
    free(key);
    free(json);
    quiver_response_free(resp);
    free(url);
    return value;
}

/* GET /headers of `base` through `c`: checks 200 and that the origin saw no
 * proxy-authorization; returns the HTTP version of the response. */
static quiver_http_version get_headers(const quiver_client *c, const char *base) {
    char *url = format("%s/headers", base);
    quiver_response *resp = get(c, url, NULL);
    quiver_http_version version = QUIVER_HTTP_VERSION_HTTP1_1;
    CHECK(resp != NULL);
    if (resp != NULL) {
        CHECK(quiver_response_status(resp) == 200);
        char *json = body_text(resp);
        CHECK(strstr(json, "\"headers\"") != NULL);
        CHECK(strstr(json, "proxy-authorization") == NULL);
        CHECK(strstr(json, "cXVpdmVyOnNlY3JldA") == NULL);
        free(json);
        version = quiver_response_version(resp);
        quiver_response_free(resp);
    }
    free(url);
    return version;
}


/* ---- TCP through the proxies ---- */

/* An https target through the HTTP/1.1 proxy (CONNECT), credentials in the proxy URL. */
static void test_https_via_http_proxy(void) {
    char *proxy = with_credentials(PROXY);
    const quiver_client *c = proxied_client(proxy, NULL);
    uint64_t tunnels = server_counter("proxy_tunnels");
    uint64_t auth = server_counter("proxy_auth_seen");
    /* TLS to the origin inside the tunnel, ALPN h2 as without a proxy. */
    CHECK(get_headers(c, HTTPS) == QUIVER_HTTP_VERSION_HTTP2);
    CHECK(get_headers(c, HTTPS) == QUIVER_HTTP_VERSION_HTTP2); /* the pooled connection */
    CHECK(server_counter("proxy_tunnels") == tunnels + 1);
    CHECK(server_counter("proxy_auth_seen") >= auth + 1);
    /* Tunnels over HTTP/1.1 are not pooled proxy connections. */
    quiver_stats *stats = NULL;
    CHECK_RESULT(quiver_client_stats(c, &stats), QUIVER_RESULT_OK);
    CHECK(quiver_stats_proxy_count(stats) == 0);
    CHECK(quiver_stats_proxy(stats, 0) == NULL);
    size_t index = 0;
    char *origin = format("%s", HTTPS);
    CHECK_RESULT(quiver_stats_find_origin(stats, origin, &index), QUIVER_RESULT_OK);
    CHECK(quiver_stats_origin_get(stats, index, QUIVER_STAT_REQUESTS) == 2);
    free(origin);
    quiver_stats_free(stats);
    quiver_client_free(c);
    free(proxy);
}

/* An https target through proxy_tls with proxy_protocol http2: CONNECT streams on a pooled
 * HTTP/2 connection to the proxy; the proxy stats show it. */
static void test_https_via_proxy_tls_http2(void) {
    char *proxy = with_credentials(PROXY_TLS);
    const quiver_client *c = proxied_client(proxy, "http2");
    uint64_t tunnels = server_counter("proxy_tunnels");
    uint64_t connections = server_counter("proxy_connections");
    CHECK(get_headers(c, HTTPS) == QUIVER_HTTP_VERSION_HTTP2);
    CHECK(server_counter("proxy_tunnels") > tunnels);
    CHECK(server_counter("proxy_connections") == connections + 1);
    /* A second origin (the same server by IP; the CA's certificate names both) shares the
     * pooled proxy connection. */
    char *port = strrchr(HTTPS, ':');
    char *by_ip = format("https://127.0.0.1%s", port);
    get_headers(c, by_ip);
    CHECK(server_counter("proxy_tunnels") >= tunnels + 2);
    CHECK(server_counter("proxy_connections") == connections + 1);

    quiver_stats *stats = NULL;
    CHECK_RESULT(quiver_client_stats(c, &stats), QUIVER_RESULT_OK);
    CHECK(quiver_stats_proxy_count(stats) == 1);
    CHECK(quiver_stats_proxy(stats, 0) != NULL &&
          strcmp(quiver_stats_proxy(stats, 0), PROXY_TLS) == 0);
    CHECK(quiver_stats_proxy_protocol(stats, 0) != NULL &&
          strcmp(quiver_stats_proxy_protocol(stats, 0), "http2") == 0);
    CHECK(quiver_stats_proxy_get(stats, 0, QUIVER_STAT_CONNECTIONS) == 1);
    CHECK(quiver_stats_proxy_get(stats, 0, QUIVER_STAT_CONNECTIONS_OPENED) == 1);
    CHECK(quiver_stats_proxy_get(stats, 0, 999) == 0);
    CHECK(quiver_stats_proxy_get(stats, 1, QUIVER_STAT_CONNECTIONS) == 0);
    const size_t *counts = NULL;
    size_t len = 0;
    CHECK_RESULT(quiver_stats_proxy_connection_streams(stats, 0, &counts, &len), QUIVER_RESULT_OK);
    CHECK(len == 1 && counts != NULL);
    CHECK_RESULT(quiver_stats_proxy_connection_streams(stats, 1, &counts, &len),
                 QUIVER_RESULT_NOT_FOUND);
    /* Proxy connections are not origins, nor in the totals. */
    CHECK(quiver_stats_origin_count(stats) == 2);
    CHECK(quiver_stats_total(stats, QUIVER_STAT_CONNECTIONS) == 2);
    quiver_stats_free(stats);
    CHECK(quiver_stats_proxy_count(NULL) == 0 && quiver_stats_proxy(NULL, 0) == NULL);

    /* close_all_tunnels tears the pooled proxy connection down; the client goes on. */
    CHECK_RESULT(quiver_client_close_all_tunnels(c), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_client_stats(c, &stats), QUIVER_RESULT_OK);
    CHECK(quiver_stats_proxy_count(stats) == 0);
    quiver_stats_free(stats);
    free(by_ip);
    by_ip = format("%s/bytes/1000", HTTPS);
    /* The origin connection inside the old tunnel died with it: a fresh one is dialled (a
     * request caught on the dying one may fail; a retry then works). */
    sleep_ms(100);
    quiver_response *resp = get(c, by_ip, NULL);
    if (resp == NULL) {
        resp = get(c, by_ip, NULL);
    }
    CHECK(resp != NULL && quiver_response_status(resp) == 200);
    quiver_response_free(resp);
    CHECK(server_counter("proxy_connections") == connections + 2);
    free(by_ip);
    quiver_client_free(c);
    free(proxy);
}

/* An http target through the HTTP/1.1 proxy: absolute form, forwarded. */
static void test_http_via_proxy(void) {
    char *proxy = with_credentials(PROXY);
    const quiver_client *c = proxied_client(proxy, NULL);
    uint64_t forwarded = server_counter("proxy_forwarded");
    uint64_t tunnels = server_counter("proxy_tunnels");
    CHECK(get_headers(c, HTTP) == QUIVER_HTTP_VERSION_HTTP1_1);
    CHECK(get_headers(c, HTTP) == QUIVER_HTTP_VERSION_HTTP1_1);
    CHECK(server_counter("proxy_forwarded") == forwarded + 2);
    CHECK(server_counter("proxy_tunnels") == tunnels);
    quiver_client_free(c);
    free(proxy);
}

/* proxy_authorization: the option's value goes to the proxy (and overrides the URL's
 * credentials); a wrong one gets 407: proxy_connect_failed. */
static void test_proxy_authorization(void) {
    quiver_config *config = base_config();
    CHECK_RESULT(quiver_config_set_str(config, NULL, "proxy", PROXY), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_str(config, NULL, "proxy_authorization", GOOD_AUTH),
                 QUIVER_RESULT_OK);
    const quiver_client *c = new_client(config);
    quiver_config_free(config);
    uint64_t auth = server_counter("proxy_auth_seen");
    get_headers(c, HTTPS);
    get_headers(c, HTTP);
    CHECK(server_counter("proxy_auth_seen") == auth + 2);
    quiver_client_free(c);

    char *proxy = with_credentials(PROXY);
    config = base_config();
    CHECK_RESULT(quiver_config_set_str(config, NULL, "proxy", proxy), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_str(config, NULL, "proxy_authorization",
                                       "Basic d3Jvbmc6d3Jvbmc="),
                 QUIVER_RESULT_OK);
    c = new_client(config);
    quiver_config_free(config);
    char *url = format("%s/health", HTTPS);
    quiver_error *err = NULL;
    CHECK(get(c, url, &err) == NULL);
    CHECK_ERROR(err, QUIVER_RESULT_PROXY_CONNECT_FAILED, QUIVER_CLASS_TRANSIENT,
                "proxy_connect_failed");
    CHECK(err != NULL && strstr(quiver_error_message(err), "407") != NULL);
    quiver_error_free(err);
    free(url);
    quiver_client_free(c);
    free(proxy);
}

/* A CONNECT the proxy refuses (nothing listens on the target: 502) is proxy_connect_failed,
 * transient; so is a target the proxy does not serve (403). */
static void test_refused_connect(void) {
    const quiver_client *c = proxied_client(PROXY, NULL);
    char *url = format("https://127.0.0.1:%d/", closed_port());
    quiver_response *resp = NULL;
    quiver_error *err = NULL;
    quiver_result r = quiver_client_send_blocking(c, quiver_request_new("GET", url), &resp, &err);
    CHECK_RESULT(r, QUIVER_RESULT_PROXY_CONNECT_FAILED);
    CHECK(quiver_result_class(r) == QUIVER_CLASS_TRANSIENT);
    CHECK(strcmp(quiver_class_str(quiver_result_class(r)), "transient") == 0);
    CHECK(resp == NULL);
    CHECK_ERROR(err, QUIVER_RESULT_PROXY_CONNECT_FAILED, QUIVER_CLASS_TRANSIENT,
                "proxy_connect_failed");
    CHECK(err != NULL && strstr(quiver_error_message(err), "502") != NULL);
    quiver_error_free(err);
    free(url);

    /* The same through the callback API. */
    url = format("https://127.0.0.1:%d/", closed_port());
    completion done;
    completion_init(&done);
    CHECK_RESULT(quiver_client_send(c, quiver_request_new("GET", url), on_response, &done),
                 QUIVER_RESULT_OK);
    CHECK(completion_wait(&done, 10000) == 1);
    CHECK_ERROR(done.error, QUIVER_RESULT_PROXY_CONNECT_FAILED, QUIVER_CLASS_TRANSIENT,
                "proxy_connect_failed");
    completion_destroy(&done);
    free(url);

    /* Not loopback: 403 from the proxy, never resolved. */
    err = NULL;
    CHECK(get(c, "https://example.invalid/", &err) == NULL);
    CHECK_ERROR(err, QUIVER_RESULT_PROXY_CONNECT_FAILED, QUIVER_CLASS_TRANSIENT,
                "proxy_connect_failed");
    quiver_error_free(err);
    quiver_client_free(c);
}

/* The options by name: bad values are invalid_config; "none" goes direct. */
static void test_proxy_options(void) {
    struct {
        const char *option, *value;
    } bad[] = {
        {"proxy", "socks4://127.0.0.1:1080"},
        {"proxy", "not a url"},
        {"proxy_protocol", "http4"},
        {"proxy_protocol", "http3"}, /* MASQUE carries HTTP/3 origins only */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        quiver_config *config = base_config();
        quiver_result set = quiver_config_set_str(config, NULL, bad[i].option, bad[i].value);
        CHECK(set == QUIVER_RESULT_OK || set == QUIVER_RESULT_INVALID_CONFIG);
        const quiver_client *c = NULL;
        quiver_error *err = NULL;
        CHECK_RESULT(quiver_client_new(config, &c, &err), QUIVER_RESULT_INVALID_CONFIG);
        CHECK(c == NULL);
        CHECK_ERROR(err, QUIVER_RESULT_INVALID_CONFIG, QUIVER_CLASS_INVALID, "invalid_config");
        CHECK(err != NULL && strstr(quiver_error_message(err), "proxy") != NULL);
        quiver_error_free(err);
        quiver_config_free(config);
    }
    /* Types are checked when set. */
    quiver_config *config = base_config();
    CHECK_RESULT(quiver_config_set_int(config, NULL, "proxy", 1), QUIVER_RESULT_INVALID_CONFIG);
    CHECK_RESULT(quiver_config_set_str(config, NULL, "proxy_from_env", "yes"),
                 QUIVER_RESULT_INVALID_CONFIG);
    quiver_config_free(config);

    /* Per origin: the https origin through the proxy, "none" for the http one. */
    config = base_config();
    CHECK_RESULT(quiver_config_set_str(config, HTTPS, "proxy", PROXY), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_config_set_str(config, HTTP, "proxy", "none"), QUIVER_RESULT_OK);
    const quiver_client *c = new_client(config);
    quiver_config_free(config);
    uint64_t tunnels = server_counter("proxy_tunnels");
    uint64_t forwarded = server_counter("proxy_forwarded");
    get_headers(c, HTTPS);
    get_headers(c, HTTP);
    CHECK(server_counter("proxy_tunnels") == tunnels + 1);
    CHECK(server_counter("proxy_forwarded") == forwarded);
    quiver_client_free(c);
}

/* proxy_from_env: https_proxy (set by main before any client) applies unless turned off. */
static void test_proxy_from_env(void) {
    quiver_config *config = config_with_ca(CA_FILE);
    const quiver_client *from_env = new_client(config); /* proxy_from_env defaults to true */
    CHECK_RESULT(quiver_config_set_bool(config, NULL, "proxy_from_env", false), QUIVER_RESULT_OK);
    const quiver_client *off = new_client(config);
    quiver_config_free(config);
    uint64_t tunnels = server_counter("proxy_tunnels");
    get_headers(off, HTTPS);
    CHECK(server_counter("proxy_tunnels") == tunnels);
    get_headers(from_env, HTTPS);
    CHECK(server_counter("proxy_tunnels") == tunnels + 1);
    quiver_client_free(from_env);
    quiver_client_free(off);
}

/* ---- UDP tunnels ---- */

enum { PAYLOADS = 20 };

typedef struct {
    pthread_mutex_t mu;
    int opens, ends, datagrams;
    int intact;          /* every payload is one we sent, unchanged */
    int seen[PAYLOADS];  /* how often each came back */
    uint16_t status;
    const quiver_udp_tunnel *in_callbacks;
    quiver_error *error;
    int pause_on_open;
    /* queue test: the thread every callback ran on must be this one */
    int check_thread;
    pthread_t thread;
    int wrong_thread;
    int send_on_open;     /* send every payload from on_open */
    int close_after;      /* close from on_datagram once this many came back */
    quiver_result callback_send;
} tun_state;

static void tun_init(tun_state *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->intact = 1;
    s->callback_send = QUIVER_RESULT_OK;
}

static void tun_destroy(tun_state *s) {
    quiver_error_free(s->error);
    pthread_mutex_destroy(&s->mu);
}

/* Payload i: "udp NN " then a pattern, 16 to ~900 bytes. */
static size_t make_payload(uint8_t *buf, int i) {
    size_t len = 16 + ((size_t)i * 47) % 880;
    snprintf((char *)buf, 8, "udp %02d ", i);
    fill_pattern(buf + 7, len - 7, 7 + (size_t)i);
    return len;
}

static int payload_index(const uint8_t *data, size_t len) {
    if (len < 16 || memcmp(data, "udp ", 4) != 0 || data[4] < '0' || data[4] > '9' ||
        data[5] < '0' || data[5] > '9') {
        return -1;
    }
    int i = (data[4] - '0') * 10 + (data[5] - '0');
    if (i >= PAYLOADS) {
        return -1;
    }
    uint8_t expected[1024];
    size_t n = make_payload(expected, i);
    return n == len && memcmp(expected, data, len) == 0 ? i : -1;
}

static void check_thread(tun_state *s) {
    if (s->check_thread && !pthread_equal(pthread_self(), s->thread)) {
        s->wrong_thread++;
    }
}

static void send_payload(const quiver_udp_tunnel *t, int i, quiver_result *result) {
    uint8_t buf[1024];
    size_t len = make_payload(buf, i);
    quiver_result r = quiver_udp_tunnel_send(t, buf, len, NULL);
    if (result != NULL && r != QUIVER_RESULT_OK) {
        *result = r;
    }
}

static void tun_on_open(void *userdata, const quiver_udp_tunnel *t, const quiver_response *head) {
    tun_state *s = userdata;
    pthread_mutex_lock(&s->mu);
    check_thread(s);
    s->opens++;
    s->status = quiver_response_status(head);
    s->in_callbacks = t;
    if (s->pause_on_open) {
        quiver_udp_tunnel_pause(t);
    }
    if (s->send_on_open) {
        for (int i = 0; i < PAYLOADS; i++) {
            send_payload(t, i, &s->callback_send);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

static void tun_on_datagram(void *userdata, const quiver_udp_tunnel *t, const uint8_t *data,
                            size_t len) {
    tun_state *s = userdata;
    pthread_mutex_lock(&s->mu);
    check_thread(s);
    s->datagrams++;
    int i = payload_index(data, len);
    if (i < 0) {
        s->intact = 0;
    } else {
        s->seen[i]++;
    }
    if (s->close_after > 0 && s->datagrams == s->close_after) {
        quiver_udp_tunnel_close(t);
    }
    pthread_mutex_unlock(&s->mu);
}

static void tun_on_end(void *userdata, const quiver_udp_tunnel *t, quiver_error *error) {
    (void)t;
    tun_state *s = userdata;
    pthread_mutex_lock(&s->mu);
    check_thread(s);
    s->ends++;
    if (s->ends == 1) {
        s->error = error;
    } else {
        quiver_error_free(error);
    }
    pthread_mutex_unlock(&s->mu);
}

static int tcount(tun_state *s, const int *field) {
    pthread_mutex_lock(&s->mu);
    int v = *field;
    pthread_mutex_unlock(&s->mu);
    return v;
}

/* Opens a tunnel to the UDP echo target through `proxy` (credentials added). */
static const quiver_udp_tunnel *open_tunnel(const quiver_client *c, const char *proxy,
                                            const char *protocol, tun_state *s) {
    char *url = with_credentials(proxy);
    const quiver_udp_tunnel *t = NULL;
    CHECK_RESULT(quiver_client_open_udp_tunnel(c, quiver_request_new("CONNECT", url), "127.0.0.1",
                                               (uint16_t)UDP_ECHO_PORT, protocol, tun_on_open,
                                               tun_on_datagram, tun_on_end, s, &t),
                 QUIVER_RESULT_OK);
    REQUIRE(t != NULL);
    free(url);
    return t;
}

/* Expects on_end once with this error, never opened (unless cancelled / shut down). */
static void tun_expect_end(tun_state *s, quiver_result code, quiver_class class, const char *kind) {
    CHECK(wait_count(&s->mu, &s->ends, 1, 10000));
    pthread_mutex_lock(&s->mu);
    CHECK(s->opens == 0 || code == QUIVER_RESULT_CANCELLED || code == QUIVER_RESULT_SHUTDOWN);
    CHECK_ERROR(s->error, code, class, kind);
    pthread_mutex_unlock(&s->mu);
    sleep_ms(50);
    CHECK(tcount(s, &s->ends) == 1);
}

/* How many of the payloads came back at least once. */
static int received(tun_state *s) {
    pthread_mutex_lock(&s->mu);
    int n = 0;
    for (int i = 0; i < PAYLOADS; i++) {
        n += s->seen[i] > 0;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Sends the payloads not echoed yet, in rounds, until all came back (UDP may lose some). */
static void echo_all(const quiver_udp_tunnel *t, tun_state *s) {
    for (int round = 0; round < 20 && received(s) < PAYLOADS; round++) {
        for (int i = 0; i < PAYLOADS; i++) {
            pthread_mutex_lock(&s->mu);
            int seen = s->seen[i];
            pthread_mutex_unlock(&s->mu);
            if (!seen) {
                quiver_result r = QUIVER_RESULT_OK;
                send_payload(t, i, &r);
                CHECK_RESULT(r, QUIVER_RESULT_OK);
            }
        }
        double until = now_ms() + 500.0 * (double)slow_factor();
        while (received(s) < PAYLOADS && now_ms() < until) {
            sleep_ms(5);
        }
    }
}

/* 20 payloads of different sizes echoed intact through a tunnel over `protocol`. */
static void tunnel_echo(const char *proxy, const char *protocol, quiver_http_version version) {
    const quiver_client *c = proxied_client(NULL, NULL);
    uint64_t tunnels = server_counter("proxy_tunnels");
    uint64_t echoed = server_counter("udp_echoed");
    uint64_t auth = server_counter("proxy_auth_seen");
    tun_state s;
    tun_init(&s);
    const quiver_udp_tunnel *t = open_tunnel(c, proxy, protocol, &s);
    char *target = format("127.0.0.1:%d", UDP_ECHO_PORT);
    CHECK(strcmp(quiver_udp_tunnel_target(t), target) == 0);
    free(target);
    REQUIRE(wait_count(&s.mu, &s.opens, 1, 10000));
    CHECK(s.status == 200 && s.in_callbacks == t);
    const quiver_response *head = quiver_udp_tunnel_response(t);
    CHECK(head != NULL && quiver_response_status(head) == 200);
    CHECK(quiver_response_version(head) == version);
    const char *value = NULL;
    size_t value_len = 0;
    CHECK_RESULT(quiver_response_header_get(head, "capsule-protocol", 0, &value, &value_len),
                 QUIVER_RESULT_OK);
    CHECK(bytes_eq(value, value_len, "?1"));
    CHECK(quiver_udp_tunnel_max_payload(t) >= 900);
    CHECK(server_counter("proxy_tunnels") == tunnels + 1);
    CHECK(server_counter("proxy_auth_seen") == auth + 1);

    echo_all(t, &s);
    pthread_mutex_lock(&s.mu);
    int n = 0;
    for (int i = 0; i < PAYLOADS; i++) {
        n += s.seen[i] > 0;
    }
    CHECK(n == PAYLOADS);
    CHECK(s.intact);
    pthread_mutex_unlock(&s.mu);
    CHECK(server_counter("udp_echoed") >= echoed + PAYLOADS);

    /* The pooled proxy connection in the stats. */
    quiver_stats *stats = NULL;
    CHECK_RESULT(quiver_client_stats(c, &stats), QUIVER_RESULT_OK);
    CHECK(quiver_stats_proxy_count(stats) == 1);
    CHECK(quiver_stats_proxy(stats, 0) != NULL &&
          strcmp(quiver_stats_proxy(stats, 0), proxy) == 0);
    CHECK(quiver_stats_proxy_protocol(stats, 0) != NULL &&
          strcmp(quiver_stats_proxy_protocol(stats, 0), protocol) == 0);
    CHECK(quiver_stats_proxy_get(stats, 0, QUIVER_STAT_CONNECTIONS) == 1);
    CHECK(quiver_stats_proxy_get(stats, 0, QUIVER_STAT_ACTIVE) == 1);
    CHECK(quiver_stats_origin_count(stats) == 0);
    quiver_stats_free(stats);

    /* Too large for UDP: invalid, and the tunnel goes on. */
    enum { HUGE = 70000 };
    uint8_t *big = calloc(1, HUGE);
    REQUIRE(big != NULL);
    quiver_error *err = NULL;
    CHECK_RESULT(quiver_udp_tunnel_send(t, big, HUGE, &err), QUIVER_RESULT_DATAGRAM_TOO_LARGE);
    CHECK_ERROR(err, QUIVER_RESULT_DATAGRAM_TOO_LARGE, QUIVER_CLASS_INVALID, "datagram_too_large");
    quiver_error_free(err);
    free(big);
    CHECK_RESULT(quiver_udp_tunnel_send(t, NULL, 10, NULL), QUIVER_RESULT_NULL_PARAMETER);

    /* Close our side: sends fail, the proxy ends its side, on_end(NULL) once. */
    CHECK_RESULT(quiver_udp_tunnel_close(t), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_udp_tunnel_close(t), QUIVER_RESULT_OK);
    err = NULL;
    CHECK_RESULT(quiver_udp_tunnel_send(t, (const uint8_t *)"late", 4, &err),
                 QUIVER_RESULT_DATAGRAM_ERROR);
    CHECK_ERROR(err, QUIVER_RESULT_DATAGRAM_ERROR, QUIVER_CLASS_TRANSIENT, "datagram_error");
    quiver_error_free(err);
    CHECK(quiver_udp_tunnel_max_payload(t) == 0);
    CHECK(wait_count(&s.mu, &s.ends, 1, 10000));
    pthread_mutex_lock(&s.mu);
    CHECK(s.error == NULL);
    print_error("tunnel", s.error);
    pthread_mutex_unlock(&s.mu);
    sleep_ms(50);
    CHECK(tcount(&s, &s.ends) == 1);
    quiver_udp_tunnel_free(t);
    tun_destroy(&s);
    quiver_client_free(c);
}

static void test_tunnel_http3(void) {
    tunnel_echo(PROXY_H3, "http3", QUIVER_HTTP_VERSION_HTTP3);
}

static void test_tunnel_http2(void) {
    tunnel_echo(PROXY_TLS, "http2", QUIVER_HTTP_VERSION_HTTP2);
}

/* Paused from on_open: nothing is delivered until resumed. */
static void test_tunnel_pause_resume(void) {
    const quiver_client *c = proxied_client(NULL, NULL);
    const char *proxies[] = {PROXY_H3, PROXY_TLS};
    const char *protocols[] = {"http3", "http2"};
    for (int k = 0; k < 2; k++) {
        if (proxies[k] == NULL) {
            continue;
        }
        tun_state s;
        tun_init(&s);
        s.pause_on_open = 1;
        const quiver_udp_tunnel *t = open_tunnel(c, proxies[k], protocols[k], &s);
        REQUIRE(wait_count(&s.mu, &s.opens, 1, 10000));
        for (int i = 0; i < 5; i++) {
            send_payload(t, i, NULL);
        }
        sleep_ms(300);
        CHECK(tcount(&s, &s.datagrams) == 0);
        CHECK_RESULT(quiver_udp_tunnel_resume(t), QUIVER_RESULT_OK);
        CHECK(wait_count(&s.mu, &s.datagrams, 3, 3000)); /* UDP: most of them */
        CHECK(s.intact);
        /* Cancel: on_end(cancelled) once; sends fail. */
        CHECK_RESULT(quiver_udp_tunnel_cancel(t), QUIVER_RESULT_OK);
        tun_expect_end(&s, QUIVER_RESULT_CANCELLED, QUIVER_CLASS_TRANSIENT, "cancelled");
        quiver_error *err = NULL;
        CHECK_RESULT(quiver_udp_tunnel_send(t, (const uint8_t *)"x", 1, &err),
                     QUIVER_RESULT_DATAGRAM_ERROR);
        quiver_error_free(err);
        quiver_udp_tunnel_free(t);
        tun_destroy(&s);
    }
    quiver_client_free(c);
}

/* HTTP/1.1 is not pooled for tunnels; refusals; argument errors. */
static void test_tunnel_errors(void) {
    const quiver_client *c = proxied_client(NULL, NULL);
    tun_state s;
    tun_init(&s);
    const quiver_udp_tunnel *t = open_tunnel(c, PROXY, "http1", &s);
    /* Not open yet, or never: sends fail. */
    quiver_error *err = NULL;
    CHECK_RESULT(quiver_udp_tunnel_send(t, (const uint8_t *)"early", 5, &err),
                 QUIVER_RESULT_DATAGRAM_ERROR);
    quiver_error_free(err);
    tun_expect_end(&s, QUIVER_RESULT_POOL_UNSUPPORTED_FOR_TRANSPORT, QUIVER_CLASS_INVALID,
                   "pool_unsupported_for_transport");
    CHECK(quiver_udp_tunnel_response(t) == NULL);
    CHECK(quiver_udp_tunnel_max_payload(t) == 0);
    quiver_udp_tunnel_free(t);
    tun_destroy(&s);

    /* Wrong credentials: 407; a target that is not loopback: 403. */
    const char *proxy = PROXY_H3 != NULL ? PROXY_H3 : PROXY_TLS;
    const char *protocol = PROXY_H3 != NULL ? "http3" : "http2";
    quiver_request *req = quiver_request_new("CONNECT", proxy);
    quiver_request_add_header(req, "proxy-authorization", "Basic d3Jvbmc6d3Jvbmc=");
    tun_init(&s);
    CHECK_RESULT(quiver_client_open_udp_tunnel(c, req, "127.0.0.1", (uint16_t)UDP_ECHO_PORT,
                                               protocol, tun_on_open, tun_on_datagram,
                                               tun_on_end, &s, NULL),
                 QUIVER_RESULT_OK);
    tun_expect_end(&s, QUIVER_RESULT_PROXY_CONNECT_FAILED, QUIVER_CLASS_TRANSIENT,
                   "proxy_connect_failed");
    tun_destroy(&s);
    tun_init(&s);
    CHECK_RESULT(quiver_client_open_udp_tunnel(c, quiver_request_new("CONNECT", proxy),
                                               "192.0.2.1", 53, protocol, tun_on_open,
                                               tun_on_datagram, tun_on_end, &s, NULL),
                 QUIVER_RESULT_OK);
    tun_expect_end(&s, QUIVER_RESULT_PROXY_CONNECT_FAILED, QUIVER_CLASS_TRANSIENT,
                   "proxy_connect_failed");
    tun_destroy(&s);

    /* Not a CONNECT; a body. */
    tun_init(&s);
    CHECK_RESULT(quiver_client_open_udp_tunnel(c, quiver_request_new("GET", proxy), "127.0.0.1",
                                               (uint16_t)UDP_ECHO_PORT, protocol, NULL, NULL,
                                               tun_on_end, &s, NULL),
                 QUIVER_RESULT_OK);
    tun_expect_end(&s, QUIVER_RESULT_INVALID_METHOD, QUIVER_CLASS_INVALID, "invalid_method");
    tun_destroy(&s);
    tun_init(&s);
    req = quiver_request_new("CONNECT", proxy);
    quiver_request_set_body_copy(req, (const uint8_t *)"x", 1);
    CHECK_RESULT(quiver_client_open_udp_tunnel(c, req, "127.0.0.1", (uint16_t)UDP_ECHO_PORT,
                                               protocol, NULL, NULL, tun_on_end, &s, NULL),
                 QUIVER_RESULT_OK);
    tun_expect_end(&s, QUIVER_RESULT_INVALID_BODY, QUIVER_CLASS_INVALID, "invalid_body");
    tun_destroy(&s);

    /* Refused at once, no callback: unknown protocol, NULL on_end, NULL target. The request
     * is consumed all the same. */
    const quiver_udp_tunnel *none = (const quiver_udp_tunnel *)&s;
    CHECK_RESULT(quiver_client_open_udp_tunnel(c, quiver_request_new("CONNECT", proxy),
                                               "127.0.0.1", 1, "http4", NULL, NULL, tun_on_end,
                                               NULL, &none),
                 QUIVER_RESULT_INVALID_ARGUMENT);
    CHECK(none == NULL);
    CHECK_RESULT(quiver_client_open_udp_tunnel(c, quiver_request_new("CONNECT", proxy),
                                               "127.0.0.1", 1, NULL, NULL, NULL, NULL, NULL,
                                               NULL),
                 QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_client_open_udp_tunnel(c, quiver_request_new("CONNECT", proxy), NULL, 1,
                                               NULL, NULL, NULL, tun_on_end, NULL, NULL),
                 QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_client_open_udp_tunnel(NULL, quiver_request_new("CONNECT", proxy),
                                               "127.0.0.1", 1, NULL, NULL, NULL, tun_on_end,
                                               NULL, NULL),
                 QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_udp_tunnel_send(NULL, NULL, 0, NULL), QUIVER_RESULT_NULL_PARAMETER);
    CHECK(quiver_udp_tunnel_target(NULL) == NULL && quiver_udp_tunnel_response(NULL) == NULL);
    CHECK(quiver_udp_tunnel_max_payload(NULL) == 0);
    CHECK_RESULT(quiver_udp_tunnel_close(NULL), QUIVER_RESULT_NULL_PARAMETER);
    quiver_udp_tunnel_free(NULL);
    CHECK_RESULT(quiver_client_close_all_tunnels(NULL), QUIVER_RESULT_NULL_PARAMETER);
    CHECK_RESULT(quiver_client_close(NULL), QUIVER_RESULT_NULL_PARAMETER);
    CHECK(!quiver_client_is_forked(c) && !quiver_client_is_forked(NULL));
    quiver_client_free(c);
}

/* close_all_tunnels with tunnels open (one of them paused): each on_end once, shutdown; the
 * client opens new tunnels afterwards. */
static void test_close_all_tunnels(void) {
    const quiver_client *c = proxied_client(NULL, NULL);
    enum { N = 3 };
    const char *proxies[N] = {PROXY_H3, PROXY_TLS, PROXY_H3};
    const char *protocols[N] = {"http3", "http2", "http3"};
    tun_state s[N];
    const quiver_udp_tunnel *t[N] = {NULL, NULL, NULL};
    for (int i = 0; i < N; i++) {
        tun_init(&s[i]);
        if (proxies[i] != NULL) {
            s[i].pause_on_open = i == 2;
            t[i] = open_tunnel(c, proxies[i], protocols[i], &s[i]);
        }
    }
    for (int i = 0; i < N; i++) {
        if (t[i] != NULL) {
            REQUIRE(wait_count(&s[i].mu, &s[i].opens, 1, 10000));
            send_payload(t[i], i, NULL);
        }
    }
    sleep_ms(100);
    quiver_stats *stats = NULL;
    CHECK_RESULT(quiver_client_stats(c, &stats), QUIVER_RESULT_OK);
    CHECK(quiver_stats_proxy_count(stats) == (PROXY_H3 != NULL ? 2 : 1));
    quiver_stats_free(stats);

    CHECK_RESULT(quiver_client_close_all_tunnels(c), QUIVER_RESULT_OK);
    for (int i = 0; i < N; i++) {
        if (t[i] != NULL) {
            tun_expect_end(&s[i], QUIVER_RESULT_SHUTDOWN, QUIVER_CLASS_TRANSIENT, "shutdown");
            quiver_error *err = NULL;
            CHECK_RESULT(quiver_udp_tunnel_send(t[i], (const uint8_t *)"x", 1, &err),
                         QUIVER_RESULT_DATAGRAM_ERROR);
            quiver_error_free(err);
            quiver_udp_tunnel_free(t[i]);
        }
        tun_destroy(&s[i]);
    }
    CHECK_RESULT(quiver_client_stats(c, &stats), QUIVER_RESULT_OK);
    CHECK(quiver_stats_proxy_count(stats) == 0);
    quiver_stats_free(stats);

    /* Usable afterwards: a new tunnel dials the proxy again. */
    tun_state again;
    tun_init(&again);
    const quiver_udp_tunnel *fresh = open_tunnel(c, proxies[0] != NULL ? proxies[0] : PROXY_TLS,
                                                 proxies[0] != NULL ? "http3" : "http2", &again);
    CHECK(wait_count(&again.mu, &again.opens, 1, 10000));
    echo_all(fresh, &again);
    CHECK(received(&again) == PAYLOADS);
    quiver_udp_tunnel_close(fresh);
    CHECK(wait_count(&again.mu, &again.ends, 1, 10000));
    CHECK(again.error == NULL);
    quiver_udp_tunnel_free(fresh);
    tun_destroy(&again);
    quiver_client_free(c);
}

/* quiver_client_close: what is in flight ends with shutdown, later calls complete with it. */
static void test_client_close(void) {
    const quiver_client *c = proxied_client(NULL, NULL);
    tun_state s;
    tun_init(&s);
    const quiver_udp_tunnel *t = open_tunnel(c, PROXY_H3 != NULL ? PROXY_H3 : PROXY_TLS,
                                             PROXY_H3 != NULL ? "http3" : "http2", &s);
    REQUIRE(wait_count(&s.mu, &s.opens, 1, 10000));
    char *slow = format("%s/slow/5000", HTTPS);
    completion inflight;
    completion_init(&inflight);
    CHECK_RESULT(quiver_client_send(c, quiver_request_new("GET", slow), on_response, &inflight),
                 QUIVER_RESULT_OK);
    sleep_ms(100);
    double t0 = now_ms();
    CHECK_RESULT(quiver_client_close(c), QUIVER_RESULT_OK);
    CHECK_RESULT(quiver_client_close(c), QUIVER_RESULT_OK); /* idempotent */
    CHECK(completion_wait(&inflight, 3000) == 1);
    CHECK(now_ms() - t0 < 3000.0 * (double)slow_factor());
    CHECK_ERROR(inflight.error, QUIVER_RESULT_SHUTDOWN, QUIVER_CLASS_TRANSIENT, "shutdown");
    tun_expect_end(&s, QUIVER_RESULT_SHUTDOWN, QUIVER_CLASS_TRANSIENT, "shutdown");
    quiver_udp_tunnel_free(t);
    tun_destroy(&s);
    completion_destroy(&inflight);

    /* Later calls: accepted, completed with shutdown. */
    char *url = format("%s/health", HTTP);
    completion later;
    completion_init(&later);
    CHECK_RESULT(quiver_client_send(c, quiver_request_new("GET", url), on_response, &later),
                 QUIVER_RESULT_OK);
    CHECK(completion_wait(&later, 3000) == 1);
    CHECK_ERROR(later.error, QUIVER_RESULT_SHUTDOWN, QUIVER_CLASS_TRANSIENT, "shutdown");
    completion_destroy(&later);
    quiver_response *resp = NULL;
    quiver_error *err = NULL;
    CHECK_RESULT(quiver_client_send_blocking(c, quiver_request_new("GET", url), &resp, &err),
                 QUIVER_RESULT_SHUTDOWN);
    CHECK(resp == NULL);
    CHECK_ERROR(err, QUIVER_RESULT_SHUTDOWN, QUIVER_CLASS_TRANSIENT, "shutdown");
    quiver_error_free(err);
    tun_init(&s);
    t = open_tunnel(c, PROXY_TLS, "http2", &s);
    tun_expect_end(&s, QUIVER_RESULT_SHUTDOWN, QUIVER_CLASS_TRANSIENT, "shutdown");
    quiver_udp_tunnel_free(t);
    tun_destroy(&s);
    quiver_stats *stats = NULL;
    CHECK_RESULT(quiver_client_stats(c, &stats), QUIVER_RESULT_OK);
    CHECK(quiver_stats_origin_count(stats) == 0 && quiver_stats_proxy_count(stats) == 0);
    quiver_stats_free(stats);
    free(url);
    free(slow);
    quiver_client_free(c);
}

/* A tunnel on a completion queue: every callback on the dispatching thread; sends from
 * on_open, close from on_datagram. */
static void test_tunnel_on_queue(void) {
    const quiver_queue *queue = NULL;
    CHECK_RESULT(quiver_queue_new(&queue), QUIVER_RESULT_OK);
    quiver_config *config = base_config();
    CHECK_RESULT(quiver_config_set_queue(config, queue), QUIVER_RESULT_OK);
    const quiver_client *c = new_client(config);
    quiver_config_free(config);
    tun_state s;
    tun_init(&s);
    s.check_thread = 1;
    s.thread = pthread_self();
    s.send_on_open = 1;
    s.close_after = PAYLOADS / 2; /* UDP: half of them is plenty */
    const quiver_udp_tunnel *t = open_tunnel(c, PROXY_H3 != NULL ? PROXY_H3 : PROXY_TLS,
                                             PROXY_H3 != NULL ? "http3" : "http2", &s);
    struct pollfd pfd = {.fd = quiver_queue_fd(queue), .events = POLLIN};
    double until = now_ms() + 10000.0 * (double)slow_factor();
    while (tcount(&s, &s.ends) == 0 && now_ms() < until) {
        if (poll(&pfd, 1, 50) > 0) {
            quiver_queue_dispatch(queue, 16);
        }
    }
    pthread_mutex_lock(&s.mu);
    CHECK(s.ends == 1 && s.opens == 1);
    CHECK(s.datagrams >= PAYLOADS / 2 && s.intact);
    CHECK(s.wrong_thread == 0);
    CHECK_RESULT(s.callback_send, QUIVER_RESULT_OK);
    CHECK(s.error == NULL);
    print_error("queued tunnel", s.error);
    pthread_mutex_unlock(&s.mu);
    quiver_udp_tunnel_free(t);
    quiver_client_free(c);
    while (quiver_queue_pending(queue) > 0) {
        quiver_queue_dispatch(queue, 64);
    }
    quiver_queue_free(queue);
    tun_destroy(&s);
}

int main(void) {
    HTTP = env_or_die("QUIVER_TEST_HTTP");
    HTTPS = env_or_die("QUIVER_TEST_HTTPS");
    CA_FILE = env_or_die("QUIVER_TEST_CA_FILE");
    PROXY = env_or_die("QUIVER_TEST_PROXY");
    PROXY_TLS = env_or_die("QUIVER_TEST_PROXY_TLS");
    PROXY_H3 = getenv("QUIVER_TEST_PROXY_H3");
    UDP_ECHO_PORT = atoi(env_or_die("QUIVER_TEST_UDP_ECHO_PORT"));
    REQUIRE(UDP_ECHO_PORT > 0);
    /* For test_proxy_from_env; set before any client exists (clients read it when built). */
    REQUIRE(setenv("https_proxy", PROXY, 1) == 0);
    REQUIRE(setenv("no_proxy", "", 1) == 0);

    quiver_config *config = base_config();
    direct = new_client(config);
    quiver_config_free(config);

    struct {
        const char *name;
        void (*run)(void);
        int needs_h3;
    } tests[] = {
        {"https_via_http_proxy", test_https_via_http_proxy, 0},
        {"https_via_proxy_tls_http2", test_https_via_proxy_tls_http2, 0},
        {"http_via_proxy", test_http_via_proxy, 0},
        {"proxy_authorization", test_proxy_authorization, 0},
        {"refused_connect", test_refused_connect, 0},
        {"proxy_options", test_proxy_options, 0},
        {"proxy_from_env", test_proxy_from_env, 0},
        {"tunnel_http3", test_tunnel_http3, 1},
        {"tunnel_http2", test_tunnel_http2, 0},
        {"tunnel_pause_resume", test_tunnel_pause_resume, 0},
        {"tunnel_errors", test_tunnel_errors, 0},
        {"close_all_tunnels", test_close_all_tunnels, 0},
        {"client_close", test_client_close, 0},
        {"tunnel_on_queue", test_tunnel_on_queue, 0},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (tests[i].needs_h3 && PROXY_H3 == NULL) {
            printf("proxy %-28s skipped (no proxy_h3 listener)\n", tests[i].name);
            continue;
        }
        int before = test_failures;
        double t0 = now_ms();
        tests[i].run();
        printf("proxy %-28s %s (%.0f ms)\n", tests[i].name,
               test_failures == before ? "ok" : "FAILED", now_ms() - t0);
        fflush(stdout);
    }
    quiver_client_free(direct);
    printf("test_proxy: %s\n", test_failures == 0 ? "all passed" : "FAILED");
    return test_failures == 0 ? 0 : 1;
}
