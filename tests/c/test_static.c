/* Linked against libquiver.a (with -lpthread -ldl -lm): the static library is complete and
 * works without the shared one. */
#define _POSIX_C_SOURCE 200809L

#include "test_util.h"

int main(void) {
    const char *http = env_or_die("QUIVER_TEST_HTTP");
    CHECK(quiver_version() != NULL && quiver_version_num() > 0);

    const quiver_client *client = NULL;
    CHECK_RESULT(quiver_client_new(NULL, &client, NULL), QUIVER_RESULT_OK);
    REQUIRE(client != NULL);

    char *url = format("%s/bytes/5000", http);
    quiver_response *resp = NULL;
    CHECK_RESULT(quiver_client_send_blocking(client, quiver_request_new("GET", url), &resp, NULL),
                 QUIVER_RESULT_OK);
    if (resp != NULL) {
        const uint8_t *data = NULL;
        size_t len = 0;
        CHECK_RESULT(quiver_response_body(resp, &data, &len), QUIVER_RESULT_OK);
        CHECK(quiver_response_status(resp) == 200 && len == 5000 && is_pattern(data, len, 0));
    }
    quiver_response_free(resp);

    completion done;
    completion_init(&done);
    CHECK_RESULT(quiver_client_send(client, quiver_request_new("GET", url), on_response, &done),
                 QUIVER_RESULT_OK);
    CHECK(completion_wait(&done, 5000) == 1);
    CHECK(done.response != NULL && quiver_response_status(done.response) == 200);
    completion_destroy(&done);

    quiver_client_free(client);
    free(url);
    printf("test_static: %s\n", test_failures == 0 ? "all passed" : "FAILED");
    return test_failures == 0 ? 0 : 1;
}
