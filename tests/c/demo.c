/* Fetches one URL through libquiver and prints status, version, headers and body length.
 *
 * Usage: demo URL [CA_FILE]    (CA_FILE: PEM roots to trust instead of the bundled ones)
 * Build: cc -std=c11 demo.c -I include -L <libdir> -lquiver   (or: pkg-config --cflags --libs quiver)
 */
#include <stdio.h>

#include "quiver.h"

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
    quiver_error *error = NULL;
    if (quiver_client_new(config, &client, &error) != QUIVER_RESULT_OK) {
        fprintf(stderr, "config: %s\n", quiver_error_message(error));
        quiver_error_free(error);
        quiver_config_free(config);
        return 1;
    }
    quiver_config_free(config);

    quiver_response *response = NULL;
    quiver_result result = quiver_client_send_blocking(
        client, quiver_request_new("GET", argv[1]), &response, &error);
    if (result != QUIVER_RESULT_OK) {
        fprintf(stderr, "GET %s failed: %s (%s, %s): %s\n", argv[1], quiver_result_str(result),
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
    size_t body_len = 0;
    quiver_response_body(response, NULL, &body_len);
    printf("\n(%zu body bytes)\n", body_len);

    quiver_response_free(response);
    quiver_client_free(client);
    return 0;
}
