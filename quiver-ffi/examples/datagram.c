/* datagram: open an HTTP/3 datagram channel (RFC 9297, extended CONNECT "connect-udp"), send
 * ten datagrams, print what comes back, then close our side and wait for the peer to end its
 * side. Written for an echo endpoint such as the quiver test server's /datagram-echo.
 *
 *   cc -std=c11 -pthread datagram.c -o datagram $(pkg-config --cflags --libs quiver)
 *   ./datagram https://localhost:4433/datagram-echo [CA_FILE]
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "quiver.h"

enum { COUNT = 10 };

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open, echoes, ended;
    quiver_error *error;
} session;

static void on_open(void *userdata, const quiver_channel *channel, const quiver_response *head) {
    session *s = userdata;
    printf("open: %u, datagrams up to %zu bytes\n", (unsigned)quiver_response_status(head),
           quiver_channel_max_datagram_size(channel));
    pthread_mutex_lock(&s->mu);
    s->open = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_datagram(void *userdata, const quiver_channel *channel, const uint8_t *data,
                        size_t len) {
    (void)channel;
    session *s = userdata;
    printf("datagram: %.*s\n", (int)len, (const char *)data);
    pthread_mutex_lock(&s->mu);
    s->echoes++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_end(void *userdata, const quiver_channel *channel, quiver_error *error) {
    (void)channel;
    session *s = userdata;
    pthread_mutex_lock(&s->mu);
    s->ended = 1;
    s->error = error;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Waits until `*flag` reaches `value` or `ms` pass; returns whether it did. */
static int wait_for(session *s, const int *flag, int value, long ms) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (*flag < value && !s->ended &&
           pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0) {
    }
    int reached = *flag >= value;
    pthread_mutex_unlock(&s->mu);
    return reached;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s https://HOST:PORT/PATH [CA_FILE]\n", argv[0]);
        return 2;
    }
    /* Datagram channels need HTTP/3: a rule for the URL's origin (scheme://host:port). */
    char origin[256];
    const char *host = strstr(argv[1], "://");
    const char *path = host != NULL ? strchr(host + 3, '/') : NULL;
    size_t origin_len = path != NULL ? (size_t)(path - argv[1]) : strlen(argv[1]);
    if (host == NULL || origin_len >= sizeof origin) {
        fprintf(stderr, "not an absolute URL: %s\n", argv[1]);
        return 2;
    }
    memcpy(origin, argv[1], origin_len);
    origin[origin_len] = '\0';

    quiver_config *config = quiver_config_new();
    quiver_config_set_str(config, origin, "protocol", "http3");
    if (argc == 3) {
        quiver_config_set_str(config, NULL, "ca_file", argv[2]);
    }
    const quiver_client *client = NULL;
    quiver_error *error = NULL;
    if (quiver_client_new(config, &client, &error) != QUIVER_RESULT_OK) {
        fprintf(stderr, "bad configuration: %s\n", quiver_error_message(error));
        quiver_error_free(error);
        quiver_config_free(config);
        return 1;
    }
    quiver_config_free(config);

    session s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    const quiver_channel *channel = NULL;
    quiver_client_open_channel(client, quiver_request_new("CONNECT", argv[1]), NULL /* connect-udp */,
                               on_open, on_datagram, NULL, on_end, &s, &channel);
    if (wait_for(&s, &s.open, 1, 10000)) {
        for (int i = 0; i < COUNT; i++) {
            char text[32];
            int n = snprintf(text, sizeof text, "hello %d", i);
            quiver_result r = quiver_channel_send(channel, (const uint8_t *)text, (size_t)n, &error);
            if (r != QUIVER_RESULT_OK) {
                fprintf(stderr, "send: %s\n", quiver_error_message(error));
                quiver_error_free(error);
            }
        }
        /* Datagrams are unreliable: wait for the echoes a while, not forever. */
        wait_for(&s, &s.echoes, COUNT, 2000);
        quiver_channel_close(channel); /* the peer ends its side in turn: then on_end */
    }
    wait_for(&s, &s.ended, 1, 10000);

    int status = 0;
    pthread_mutex_lock(&s.mu);
    if (!s.ended) {
        fprintf(stderr, "the channel did not end\n");
        quiver_channel_cancel(channel);
        status = 1;
    } else if (s.error != NULL) {
        fprintf(stderr, "channel failed: %s: %s\n", quiver_error_kind(s.error),
                quiver_error_message(s.error));
        status = 1;
    } else {
        const quiver_response *head = quiver_channel_response(channel);
        for (size_t i = 0; i < quiver_response_trailer_count(head); i++) {
            const char *name, *value;
            size_t name_len, value_len;
            quiver_response_trailer_at(head, i, &name, &name_len, &value, &value_len);
            printf("trailer %.*s: %.*s\n", (int)name_len, name, (int)value_len, value);
        }
        printf("%d of %d datagrams came back\n", s.echoes, COUNT);
    }
    quiver_error_free(s.error);
    s.error = NULL;
    pthread_mutex_unlock(&s.mu);
    quiver_channel_free(channel);
    quiver_client_free(client); /* waits for on_end if it has not run yet */
    return status;
}
