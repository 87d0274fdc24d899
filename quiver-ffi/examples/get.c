/* get: fetch a URL with libquiver's blocking call and print the status line, the headers and
 * the body.
 *
 *   cc -std=c11 get.c -o get $(pkg-config --cflags --libs quiver)
 *   ./get https://example.com/            (or: ./get URL CA_FILE to trust a private CA)
 */
#include <stdio.h>

#include "quiver.h"

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s URL [CA_FILE]\n", argv[0]);
        return 2;
    }

    /* Pool options go on a config, client-wide (pattern NULL) or per origin. */
    quiver_config *config = quiver_config_new();
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
    quiver_config_free(config); /* the client keeps what it needs */

    /* The request is consumed by the call, whatever happens. */
    quiver_request *request = quiver_request_new("GET", argv[1]);
    quiver_request_add_header(request, "accept", "*/*");
    quiver_response *response = NULL;
    quiver_result result = quiver_client_send_blocking(client, request, &response, &error);
    if (result != QUIVER_RESULT_OK) {
        /* The class says what to do about it: retry (transient), fix the input (invalid) or
         * give up (unrecoverable). */
        fprintf(stderr, "GET %s: %s error %s: %s\n", argv[1],
                quiver_class_str(quiver_error_class(error)), quiver_error_kind(error),
                quiver_error_message(error));
        quiver_error_free(error);
        quiver_client_free(client);
        return 1;
    }

    printf("%s %u\n", quiver_http_version_str(quiver_response_version(response)),
           (unsigned)quiver_response_status(response));
    for (size_t i = 0; i < quiver_response_header_count(response); i++) {
        const char *name, *value;
        size_t name_len, value_len;
        quiver_response_header_at(response, i, &name, &name_len, &value, &value_len);
        printf("%.*s: %.*s\n", (int)name_len, name, (int)value_len, value);
    }
    const uint8_t *body = NULL;
    size_t body_len = 0;
    quiver_response_body(response, &body, &body_len);
    printf("\n");
    fwrite(body, 1, body_len, stdout);
    if (body_len > 0 && body[body_len - 1] != '\n') {
        printf("\n");
    }

    quiver_response_free(response);
    quiver_client_free(client);
    return 0;
}
