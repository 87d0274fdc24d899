/* epoll: fetch several URLs at once from a single-threaded epoll loop. The client is built
 * with a completion queue, so none of its callbacks runs on quiver's threads: they wait in the
 * queue, whose file descriptor turns readable, and run here in quiver_queue_dispatch. No locks
 * needed. The same works with poll(2), select(2) or libuv (uv_poll_t on the descriptor).
 *
 *   cc -std=c11 epoll.c -o epoll $(pkg-config --cflags --libs quiver)
 *   ./epoll [--ca CA_FILE] URL...
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "quiver.h"

typedef struct {
    const char *url;
    int done;
    int *remaining;
} fetch;

/* Runs in quiver_queue_dispatch, on the loop's thread. */
static void on_response(void *userdata, quiver_response *response, quiver_error *error) {
    fetch *f = userdata;
    if (response != NULL) {
        size_t len = 0;
        quiver_response_body(response, NULL, &len);
        printf("%s: %s %u, %zu bytes\n", f->url,
               quiver_http_version_str(quiver_response_version(response)),
               (unsigned)quiver_response_status(response), len);
    } else {
        printf("%s: %s: %s\n", f->url, quiver_error_kind(error), quiver_error_message(error));
    }
    quiver_response_free(response);
    quiver_error_free(error);
    f->done = 1;
    (*f->remaining)--;
}

int main(int argc, char **argv) {
    const char *ca_file = NULL;
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "--ca") == 0) {
        ca_file = argv[2];
        first = 3;
    }
    if (first >= argc) {
        fprintf(stderr, "usage: %s [--ca CA_FILE] URL...\n", argv[0]);
        return 2;
    }

    const quiver_queue *queue = NULL;
    if (quiver_queue_new(&queue) != QUIVER_RESULT_OK) {
        perror("quiver_queue_new");
        return 1;
    }
    quiver_config *config = quiver_config_new();
    quiver_config_set_queue(config, queue);
    if (ca_file != NULL) {
        quiver_config_set_str(config, NULL, "ca_file", ca_file);
    }
    const quiver_client *client = NULL;
    if (quiver_client_new(config, &client, NULL) != QUIVER_RESULT_OK) {
        fprintf(stderr, "bad configuration\n");
        return 1;
    }
    quiver_config_free(config);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN}; /* level-triggered */
    ev.data.fd = quiver_queue_fd(queue);
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ev.data.fd, &ev) != 0) {
        perror("epoll");
        return 1;
    }

    int count = argc - first, remaining = count;
    fetch *fetches = calloc((size_t)count, sizeof *fetches);
    for (int i = 0; i < count; i++) {
        fetches[i] = (fetch){.url = argv[first + i], .remaining = &remaining};
        quiver_client_send(client, quiver_request_new("GET", fetches[i].url), on_response,
                           &fetches[i]);
    }

    while (remaining > 0) {
        struct epoll_event events[8];
        int n = epoll_wait(ep, events, 8, -1);
        for (int k = 0; k < n; k++) {
            if (events[k].data.fd == quiver_queue_fd(queue)) {
                quiver_queue_dispatch(queue, 64); /* runs callbacks, here */
            }
            /* ... the program's other descriptors ... */
        }
    }

    /* Shutdown: free the client (whatever it still had in flight ends up in the queue), run
     * what is left, then free the queue. */
    quiver_client_free(client);
    while (quiver_queue_pending(queue) > 0) {
        quiver_queue_dispatch(queue, 64);
    }
    quiver_queue_free(queue);
    close(ep);
    free(fetches);
    return 0;
}
