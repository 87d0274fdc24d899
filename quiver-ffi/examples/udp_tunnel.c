/* udp_tunnel: open a UDP tunnel through a MASQUE proxy (CONNECT-UDP, RFC 9298) to a UDP
 * target, send five payloads, print what comes back, then close our side and wait for the
 * proxy to end the tunnel. Written for a UDP echo target such as the quiver test server's
 * udp_echo, behind its proxy_h3 (HTTP/3) or proxy_tls (--http2) listener.
 *
 *   cc -std=c11 -pthread udp_tunnel.c -o udp_tunnel $(pkg-config --cflags --libs quiver)
 *   ./udp_tunnel [--http2] [--ca CA_FILE] https://[user:pass@]proxy:443 TARGET_HOST TARGET_PORT
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quiver.h"

enum { COUNT = 5 };

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open, echoes, ended;
    quiver_error *error;
} session;

static void on_open(void *userdata, const quiver_udp_tunnel *tunnel, const quiver_response *head) {
    session *s = userdata;
    printf("open: %u to %s, payloads up to %zu bytes\n", (unsigned)quiver_response_status(head),
           quiver_udp_tunnel_target(tunnel), quiver_udp_tunnel_max_payload(tunnel));
    pthread_mutex_lock(&s->mu);
    s->open = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_datagram(void *userdata, const quiver_udp_tunnel *tunnel, const uint8_t *data,
                        size_t len) {
    (void)tunnel;
    session *s = userdata;
    printf("echo: %.*s\n", (int)len, (const char *)data);
    pthread_mutex_lock(&s->mu);
    s->echoes++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Runs exactly once, last: error NULL when the proxy ended the tunnel cleanly. */
static void on_end(void *userdata, const quiver_udp_tunnel *tunnel, quiver_error *error) {
    (void)tunnel;
    session *s = userdata;
    pthread_mutex_lock(&s->mu);
    s->ended = 1;
    s->error = error;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Waits until `*flag` reaches `value` (or the tunnel ended, or `ms` passed); returns whether
 * it did. */
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
    const char *protocol = "http3", *ca_file = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--http2") == 0) {
            protocol = "http2";
        } else if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc) {
            ca_file = argv[++i];
        } else {
            break;
        }
    }
    if (argc - i != 3 || atoi(argv[i + 2]) <= 0 || atoi(argv[i + 2]) > 65535) {
        fprintf(stderr, "usage: %s [--http2] [--ca CA_FILE] PROXY_URL TARGET_HOST TARGET_PORT\n",
                argv[0]);
        return 2;
    }
    const char *proxy = argv[i], *host = argv[i + 1];
    uint16_t port = (uint16_t)atoi(argv[i + 2]);

    /* Trust settings for the proxy come from the client's configuration. */
    quiver_config *config = quiver_config_new();
    if (ca_file != NULL) {
        quiver_config_set_str(config, NULL, "ca_file", ca_file);
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

    /* The request names the proxy; credentials in its URL go to the proxy only. Its headers,
     * timeout and cancel token apply to the opening. */
    quiver_request *request = quiver_request_new("CONNECT", proxy);
    quiver_request_set_timeout_ms(request, 10000);
    session s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    const quiver_udp_tunnel *tunnel = NULL;
    quiver_result r = quiver_client_open_udp_tunnel(client, request, host, port, protocol, on_open,
                                                    on_datagram, on_end, &s, &tunnel);
    if (r != QUIVER_RESULT_OK) {
        fprintf(stderr, "cannot open: %s\n", quiver_result_str(r));
        quiver_client_free(client);
        return 1;
    }
    if (wait_for(&s, &s.open, 1, 10000)) {
        for (int k = 0; k < COUNT; k++) {
            char text[32];
            int n = snprintf(text, sizeof text, "hello %d", k);
            if (quiver_udp_tunnel_send(tunnel, (const uint8_t *)text, (size_t)n, &error) !=
                QUIVER_RESULT_OK) {
                fprintf(stderr, "send: %s\n", quiver_error_message(error));
                quiver_error_free(error);
                error = NULL;
            }
        }
        /* UDP is unreliable: wait for the echoes a while, not forever. */
        wait_for(&s, &s.echoes, COUNT, 2000);
        quiver_udp_tunnel_close(tunnel); /* the proxy ends the tunnel in turn: then on_end */
    }
    wait_for(&s, &s.ended, 1, 10000);

    int status = 0;
    pthread_mutex_lock(&s.mu);
    if (!s.ended) {
        fprintf(stderr, "the tunnel did not end\n");
        quiver_udp_tunnel_cancel(tunnel);
        status = 1;
    } else if (s.error != NULL) {
        fprintf(stderr, "tunnel failed: %s (%s): %s\n", quiver_error_kind(s.error),
                quiver_class_str(quiver_error_class(s.error)), quiver_error_message(s.error));
        status = 1;
    } else {
        printf("%d of %d payloads came back\n", s.echoes, COUNT);
        printf("closed\n");
    }
    quiver_error_free(s.error);
    s.error = NULL;
    pthread_mutex_unlock(&s.mu);
    quiver_udp_tunnel_free(tunnel);
    quiver_client_free(client); /* waits for on_end if it has not run yet */
    return status;
}
