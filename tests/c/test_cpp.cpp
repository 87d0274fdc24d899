// quiver.h from C++ (g++ -std=c++17 -Wall -Wextra -Werror -pedantic): the header compiles as
// C++, its enums and callback types work with C++ idioms (RAII owners, captureless lambdas as
// callbacks, std::promise), and the calls behave as from C (the client layer's too). Against
// the loopback test server (tests/c/run.sh sets QUIVER_TEST_*).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <type_traits>

#include "quiver.h"

static_assert(sizeof(quiver_result) == sizeof(uint32_t), "quiver_result is a uint32_t enum");
static_assert(std::is_same<std::underlying_type<quiver_class>::type, uint32_t>::value,
              "quiver_class is a uint32_t enum");

namespace {

int failures = 0;

#define EXPECT(cond)                                                                    \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            std::fprintf(stderr, "%s:%d: EXPECT failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                                 \
        }                                                                               \
    } while (0)

// Owners for the handles, each with its free function.
struct ClientFree {
    void operator()(const quiver_client *c) const { quiver_client_free(c); }
};
struct ResponseFree {
    void operator()(quiver_response *r) const { quiver_response_free(r); }
};
struct ErrorFree {
    void operator()(quiver_error *e) const { quiver_error_free(e); }
};
struct ConfigFree {
    void operator()(quiver_config *c) const { quiver_config_free(c); }
};
using Client = std::unique_ptr<const quiver_client, ClientFree>;
using Response = std::unique_ptr<quiver_response, ResponseFree>;
using Error = std::unique_ptr<quiver_error, ErrorFree>;
using Config = std::unique_ptr<quiver_config, ConfigFree>;

std::string body_of(const quiver_response *r) {
    const uint8_t *data = nullptr;
    size_t len = 0;
    quiver_response_body(r, &data, &len);
    return std::string(reinterpret_cast<const char *>(data), len);
}

const char *env(const char *name) {
    const char *v = std::getenv(name);
    if (v == nullptr) {
        std::fprintf(stderr, "%s is not set (run tests/c/run.sh)\n", name);
        std::exit(2);
    }
    return v;
}

struct Outcome {
    Response response;
    Error error;
};

}  // namespace

int main() {
    const std::string http = env("QUIVER_TEST_HTTP");
    Config config(quiver_config_new());
    EXPECT(quiver_config_set_str(config.get(), nullptr, "ca_file", env("QUIVER_TEST_CA_FILE")) ==
           QUIVER_RESULT_OK);
    const quiver_client *raw = nullptr;
    EXPECT(quiver_client_new(config.get(), &raw, nullptr) == QUIVER_RESULT_OK);
    Client client(raw);

    // Blocking.
    quiver_response *resp = nullptr;
    quiver_result r = quiver_client_send_blocking(
        client.get(), quiver_request_new("GET", (http + "/health").c_str()), &resp, nullptr);
    Response health(resp);
    EXPECT(r == QUIVER_RESULT_OK);
    EXPECT(health && quiver_response_status(health.get()) == 200);
    EXPECT(health && body_of(health.get()) == "ok");
    EXPECT(health && quiver_response_version(health.get()) == QUIVER_HTTP_VERSION_HTTP1_1);

    // A callback: a captureless lambda, the outcome handed over through a promise.
    std::promise<Outcome> promise;
    quiver_response_cb on_response = [](void *userdata, quiver_response *response,
                                        quiver_error *error) {
        static_cast<std::promise<Outcome> *>(userdata)->set_value(
            Outcome{Response(response), Error(error)});
    };
    std::future<Outcome> answer = promise.get_future();
    EXPECT(quiver_client_send(client.get(), quiver_request_new("GET", (http + "/bytes/5").c_str()),
                              on_response, &promise) == QUIVER_RESULT_OK);
    EXPECT(answer.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    Outcome got = answer.get();
    EXPECT(got.response && body_of(got.response.get()) == "abcde" && !got.error);

    // Errors: the enums compare and switch as C++ enums.
    quiver_error *err = nullptr;
    resp = nullptr;
    r = quiver_client_send_blocking(client.get(), quiver_request_new("GET", "http//nope"), &resp,
                                    &err);
    Error invalid(err);
    switch (r) {
        case QUIVER_RESULT_INVALID_URL:
            break;
        default:
            EXPECT(false);
    }
    EXPECT(resp == nullptr && invalid);
    EXPECT(quiver_error_class(invalid.get()) == QUIVER_CLASS_INVALID);
    EXPECT(std::strcmp(quiver_error_kind(invalid.get()), "invalid_url") == 0);
    EXPECT(std::strcmp(quiver_class_str(quiver_result_class(r)), "invalid") == 0);
    EXPECT(quiver_client_send(nullptr, quiver_request_new("GET", "http://x/"), on_response,
                              nullptr) == QUIVER_RESULT_NULL_PARAMETER);

    // A stream, with lambdas for its callbacks.
    struct Totals {
        size_t bytes = 0;
        int ends = 0;
        std::promise<void> done;
    } totals;
    quiver_stream_data_cb on_data = [](void *userdata, const quiver_stream *, const uint8_t *,
                                       size_t len) {
        static_cast<Totals *>(userdata)->bytes += len;
    };
    quiver_stream_end_cb on_end = [](void *userdata, const quiver_stream *, quiver_error *error) {
        Error owned(error);
        auto *t = static_cast<Totals *>(userdata);
        t->ends++;
        t->done.set_value();
    };
    std::future<void> ended = totals.done.get_future();
    EXPECT(quiver_client_stream(client.get(),
                                quiver_request_new("GET", (http + "/bytes/100000").c_str()),
                                nullptr, on_data, on_end, &totals, nullptr) == QUIVER_RESULT_OK);
    EXPECT(ended.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    EXPECT(totals.bytes == 100000 && totals.ends == 1);

    // The client layer: its enums as arguments, a form, the final URL and the history.
    const std::string redirect = http + "/redirect-to?url=%2Fmultipart&status=307";
    quiver_request *req = quiver_request_new("POST", redirect.c_str());
    EXPECT(quiver_request_set_redirect_mode(req, QUIVER_REDIRECT_FOLLOW) == QUIVER_RESULT_OK);
    EXPECT(quiver_request_set_auth(req, QUIVER_AUTH_NONE, nullptr, nullptr) == QUIVER_RESULT_OK);
    quiver_mime *mime = quiver_mime_new();
    EXPECT(quiver_mime_add_text(mime, "k", "v") == QUIVER_RESULT_OK);
    EXPECT(quiver_request_set_mime(req, mime) == QUIVER_RESULT_OK);
    resp = nullptr;
    EXPECT(quiver_client_send_blocking(client.get(), req, &resp, nullptr) == QUIVER_RESULT_OK);
    Response form(resp);
    EXPECT(form && body_of(form.get()).find("\"text\":\"v\"") != std::string::npos);
    EXPECT(form && quiver_response_history_len(form.get()) == 1);
    const char *final_url = nullptr;
    size_t final_len = 0;
    EXPECT(form && quiver_response_url(form.get(), &final_url, &final_len) == QUIVER_RESULT_OK &&
           std::string(final_url, final_len) == http + "/multipart");

    // The completion queue's calls from C++ too.
    const quiver_queue *queue = nullptr;
    EXPECT(quiver_queue_new(&queue) == QUIVER_RESULT_OK);
    EXPECT(quiver_queue_fd(queue) >= 0 && quiver_queue_dispatch(queue, 8) == 0);
    quiver_queue_free(queue);

    client.reset();
    std::printf("test_cpp: %s\n", failures == 0 ? "all passed" : "FAILED");
    return failures == 0 ? 0 : 1;
}
