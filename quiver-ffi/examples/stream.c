/* stream: download a URL chunk by chunk as a slow consumer would: whenever more than 1 MiB is
 * waiting to be "processed", the callback pauses the stream (the server is then held back by
 * flow control, not buffered in memory) and the main thread resumes it once it has caught up.
 *
 *   cc -std=c11 -pthread stream.c -o stream $(pkg-config --cflags --libs quiver)
 *   ./stream https://example.com/big-file [CA_FILE]
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "quiver.h"

#define BACKLOG_LIMIT (1u << 20)

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t received, backlog; /* backlog: received, not yet processed */
    int paused, pauses, ended;
    quiver_error *error;
} download;

static void on_head(void *userdata, const quiver_stream *stream, const quiver_response *head) {
    (void)userdata;
    (void)stream;
    printf("%s %u\n", quiver_http_version_str(quiver_response_version(head)),
           (unsigned)quiver_response_status(head));
}

/* Runs on a quiver thread; `data` is only valid during the call. */
static void on_data(void *userdata, const quiver_stream *stream, const uint8_t *data, size_t len) {
    (void)data;
    download *d = userdata;
    pthread_mutex_lock(&d->mu);
    d->received += len;
    d->backlog += len;
    if (d->backlog > BACKLOG_LIMIT && !d->paused) {
        quiver_stream_pause(stream); /* no on_data follows until resumed */
        d->paused = 1;
        d->pauses++;
        pthread_cond_signal(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
}

/* Exactly once, last. */
static void on_end(void *userdata, const quiver_stream *stream, quiver_error *error) {
    (void)stream;
    download *d = userdata;
    pthread_mutex_lock(&d->mu);
    d->ended = 1;
    d->error = error; /* ours to free */
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s URL [CA_FILE]\n", argv[0]);
        return 2;
    }
    quiver_config *config = quiver_config_new();
    if (argc == 3) {
        quiver_config_set_str(config, NULL, "ca_file", argv[2]);
    }
    const quiver_client *client = NULL;
    if (quiver_client_new(config, &client, NULL) != QUIVER_RESULT_OK) {
        fprintf(stderr, "bad configuration\n");
        quiver_config_free(config);
        return 1;
    }
    quiver_config_free(config);

    download d = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    const quiver_stream *stream = NULL;
    if (quiver_client_stream(client, quiver_request_new("GET", argv[1]), on_head, on_data, on_end,
                             &d, &stream) != QUIVER_RESULT_OK) {
        quiver_client_free(client);
        return 1;
    }

    pthread_mutex_lock(&d.mu);
    while (!d.ended) {
        if (d.paused) {
            /* "Process" the backlog (here: take a little time over it), then resume. */
            pthread_mutex_unlock(&d.mu);
            struct timespec work = {0, 20 * 1000000L};
            nanosleep(&work, NULL);
            pthread_mutex_lock(&d.mu);
            d.backlog = 0;
            d.paused = 0;
            quiver_stream_resume(stream);
        } else {
            pthread_cond_wait(&d.cv, &d.mu);
        }
    }
    pthread_mutex_unlock(&d.mu);

    int status = 0;
    if (d.error != NULL) {
        fprintf(stderr, "failed after %zu bytes: %s: %s\n", d.received, quiver_error_kind(d.error),
                quiver_error_message(d.error));
        quiver_error_free(d.error);
        status = 1;
    } else {
        printf("%zu bytes, paused %d times\n", d.received, d.pauses);
    }
    quiver_stream_free(stream);
    quiver_client_free(client);
    return status;
}
