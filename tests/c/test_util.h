/* Helpers shared by the C tests: checks, waiting for callbacks, the test server's addresses. */
#ifndef QUIVER_TEST_UTIL_H
#define QUIVER_TEST_UTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "quiver.h"

static int test_failures;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: %s: CHECK failed: %s\n", __FILE__, __LINE__,        \
                    __func__, #cond);                                                   \
            test_failures++;                                                            \
        }                                                                               \
    } while (0)

/* Checks that a quiver call returned `expected`, printing both codes' texts otherwise. */
#define CHECK_RESULT(call, expected)                                                    \
    do {                                                                                \
        quiver_result got_ = (call);                                                    \
        if (got_ != (quiver_result)(expected)) {                                        \
            fprintf(stderr, "%s:%d: %s: %s returned %u (%s), expected %u (%s)\n",       \
                    __FILE__, __LINE__, __func__, #call, (unsigned)got_,                \
                    quiver_result_str(got_), (unsigned)(expected),                      \
                    quiver_result_str(expected));                                       \
            test_failures++;                                                            \
        }                                                                               \
    } while (0)

#define REQUIRE(cond)                                                                   \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: %s: REQUIRE failed: %s\n", __FILE__, __LINE__,      \
                    __func__, #cond);                                                   \
            exit(1);                                                                    \
        }                                                                               \
    } while (0)

static inline double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static inline void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Time limits are multiplied by QUIVER_TEST_SLOW (set under valgrind). */
static inline long slow_factor(void) {
    const char *s = getenv("QUIVER_TEST_SLOW");
    long f = s ? atol(s) : 1;
    return f > 0 ? f : 1;
}

static inline const char *env_or_die(const char *name) {
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        fprintf(stderr, "environment variable %s is not set (run tests/c/run.sh)\n", name);
        exit(2);
    }
    return v;
}

/* snprintf into a fresh heap string (free it). */
static inline char *format(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    REQUIRE(n >= 0);
    char *s = malloc((size_t)n + 1);
    REQUIRE(s != NULL);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Whether the (pointer, length) value equals the C string `expected`. */
static inline int bytes_eq(const char *value, size_t len, const char *expected) {
    return value != NULL && len == strlen(expected) && memcmp(value, expected, len) == 0;
}

/* Whether `len` bytes follow the test server's pattern: byte i is 'a' + (i % 26), from
 * offset `start`. */
static inline int is_pattern(const uint8_t *data, size_t len, size_t start) {
    for (size_t i = 0; i < len; i++) {
        if (data[i] != (uint8_t)('a' + (start + i) % 26)) {
            return 0;
        }
    }
    return 1;
}

/* Writes `len` bytes of that pattern, from offset `start`. */
static inline void fill_pattern(uint8_t *buf, size_t len, size_t start) {
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)('a' + (start + i) % 26);
    }
}

/* ---- a one-shot completion: filled by quiver_response_cb, awaited by the test ---- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
    double at_ms;
    quiver_response *response;
    quiver_error *error;
} completion;

static inline void completion_init(completion *c) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
}

/* Frees what the callback delivered, and the completion itself. */
static inline void completion_destroy(completion *c) {
    quiver_response_free(c->response);
    quiver_error_free(c->error);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
}

static inline void on_response(void *userdata, quiver_response *response, quiver_error *error) {
    completion *c = userdata;
    pthread_mutex_lock(&c->mu);
    c->calls++;
    c->at_ms = now_ms();
    if (c->calls == 1) {
        c->response = response;
        c->error = error;
    } else {
        /* A second call is a bug the tests report; do not leak what it brought. */
        quiver_response_free(response);
        quiver_error_free(error);
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Waits on `cv` (with `mu` held) for at most 20 ms: callers re-check their condition and deadline. */
static inline void cond_wait_briefly(pthread_cond_t *cv, pthread_mutex_t *mu) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 20 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cv, mu, &ts);
}

/* Waits until the callback ran (or `timeout_ms` passed); returns how often it ran. */
static inline int completion_wait(completion *c, long timeout_ms) {
    double deadline = now_ms() + (double)(timeout_ms * slow_factor());
    pthread_mutex_lock(&c->mu);
    while (c->calls == 0 && now_ms() < deadline) {
        cond_wait_briefly(&c->cv, &c->mu);
    }
    int calls = c->calls;
    pthread_mutex_unlock(&c->mu);
    return calls;
}

static inline int completion_calls(completion *c) {
    pthread_mutex_lock(&c->mu);
    int calls = c->calls;
    pthread_mutex_unlock(&c->mu);
    return calls;
}

/* Prints an error (for diagnosing failures). */
static inline void print_error(const char *what, const quiver_error *e) {
    if (e != NULL) {
        fprintf(stderr, "  %s: [%s/%s] %s\n", what, quiver_class_str(quiver_error_class(e)),
                quiver_error_kind(e), quiver_error_message(e));
    }
}

/* Checks an error's code, class and kind name. */
#define CHECK_ERROR(err, code, class, kind)                                             \
    do {                                                                                \
        const quiver_error *e_ = (err);                                                 \
        CHECK(e_ != NULL);                                                              \
        if (e_ != NULL) {                                                               \
            CHECK_RESULT(quiver_error_code(e_), code);                                  \
            CHECK(quiver_error_class(e_) == (quiver_class)(class));                     \
            CHECK(strcmp(quiver_error_kind(e_), kind) == 0);                            \
            CHECK(quiver_error_message(e_) != NULL && *quiver_error_message(e_) != 0);  \
            if (quiver_error_code(e_) != (quiver_result)(code)) {                       \
                print_error("unexpected error", e_);                                    \
            }                                                                           \
        }                                                                               \
    } while (0)

/* ---- clients ---- */

static inline const quiver_client *new_client(quiver_config *config) {
    const quiver_client *c = NULL;
    quiver_error *err = NULL;
    quiver_result r = quiver_client_new(config, &c, &err);
    if (r != QUIVER_RESULT_OK) {
        print_error("quiver_client_new", err);
    }
    REQUIRE(r == QUIVER_RESULT_OK && c != NULL && err == NULL);
    return c;
}

/* A configuration that trusts `ca_file` and, when `h3_origin` is not NULL, speaks HTTP/3 to
 * that origin. */
static inline quiver_config *config_with_ca_h3(const char *ca_file, const char *h3_origin) {
    quiver_config *config = quiver_config_new();
    REQUIRE(config != NULL);
    CHECK_RESULT(quiver_config_set_str(config, NULL, "ca_file", ca_file), QUIVER_RESULT_OK);
    if (h3_origin != NULL) {
        CHECK_RESULT(quiver_config_set_str(config, h3_origin, "protocol", "http3"),
                     QUIVER_RESULT_OK);
    }
    return config;
}

static inline quiver_config *config_with_ca(const char *ca_file) {
    return config_with_ca_h3(ca_file, NULL);
}

/* Waits (polling) until `*counter`, guarded by `mu`, reaches `value`; returns whether it did
 * within `timeout_ms` (times QUIVER_TEST_SLOW). */
static inline int wait_count(pthread_mutex_t *mu, const int *counter, int value, long timeout_ms) {
    double deadline = now_ms() + (double)(timeout_ms * slow_factor());
    pthread_mutex_lock(mu);
    while (*counter < value && now_ms() < deadline) {
        pthread_mutex_unlock(mu);
        sleep_ms(5);
        pthread_mutex_lock(mu);
    }
    int ok = *counter >= value;
    pthread_mutex_unlock(mu);
    return ok;
}

/* Sends method + url (+ optional body) with the blocking call; returns the response or NULL
 * (then *err, if given, holds the error; without `err` the call must succeed). */
static inline quiver_response *fetch(const quiver_client *c, const char *method,
                                     const char *url, const char *body, quiver_error **err) {
    quiver_request *req = quiver_request_new(method, url);
    REQUIRE(req != NULL);
    if (body != NULL) {
        CHECK_RESULT(quiver_request_set_body_copy(req, (const uint8_t *)body, strlen(body)),
                     QUIVER_RESULT_OK);
    }
    quiver_response *resp = NULL;
    quiver_error *e = NULL;
    quiver_result r = quiver_client_send_blocking(c, req, &resp, &e);
    CHECK((r == QUIVER_RESULT_OK) == (resp != NULL));
    CHECK((r == QUIVER_RESULT_OK) == (e == NULL));
    if (e != NULL) {
        CHECK(quiver_error_code(e) == r);
    }
    if (err != NULL) {
        *err = e;
    } else {
        if (e != NULL) {
            print_error(url, e);
        }
        CHECK(resp != NULL);
        quiver_error_free(e);
    }
    return resp;
}

/* A TCP port on 127.0.0.1 that nothing listens on (bound, then closed). */
static inline int closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    REQUIRE(getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
    close(fd);
    return ntohs(addr.sin_port);
}

#endif /* QUIVER_TEST_UTIL_H */
