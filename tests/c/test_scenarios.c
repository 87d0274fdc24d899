/* The cross-language behaviour cases (tests/server/scenarios.tsv) from C: each case on each
 * protocol it names, through quiver_client_send_blocking. tests/c/run.sh starts the server and
 * sets QUIVER_TEST_* (QUIVER_TEST_SCENARIOS: the table's path). Exits non-zero when a case
 * fails. */
#define _POSIX_C_SOURCE 200809L

#include "test_util.h"

#define MAX_LINE 4096
#define MAX_FIELDS 16

static const char *HTTP, *HTTPS, *H2C, *H3, *CA_FILE;

/* Undoes the table's escapes in place (\r \n \t \\). */
static void unescape(char *s) {
    char *out = s;
    for (char *in = s; *in; in++) {
        if (*in == '\\' && in[1]) {
            in++;
            *out++ = *in == 'r' ? '\r' : *in == 'n' ? '\n' : *in == 't' ? '\t' : *in;
        } else {
            *out++ = *in;
        }
    }
    *out = '\0';
}

/* Splits `s` at each `sep` in place; returns how many pieces went to `out`. */
static size_t split(char *s, char sep, char **out, size_t max) {
    size_t n = 0;
    out[n++] = s;
    for (char *p = s; *p && n < max; p++) {
        if (*p == sep) {
            *p = '\0';
            out[n++] = p + 1;
        }
    }
    return n;
}

static int dash(const char *cell) { return strcmp(cell, "-") == 0; }

/* Whether `hay` (len bytes) contains the NUL-terminated `needle`. */
static int contains(const uint8_t *hay, size_t len, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; n <= len && i <= len - n; i++) {
        if (memcmp(hay + i, needle, n) == 0) return 1;
    }
    return n == 0;
}

/* A client and base URL for one of the table's protocol names; NULL when not served. */
static const quiver_client *client_for(const char *name, const char **base) {
    quiver_config *config = quiver_config_new();
    CHECK_RESULT(quiver_config_set_bool(config, NULL, "proxy_from_env", false), QUIVER_RESULT_OK);
    if (strcmp(name, "http1") == 0) {
        *base = HTTP;
    } else if (strcmp(name, "https1") == 0) {
        *base = HTTPS;
        CHECK_RESULT(quiver_config_set_str(config, NULL, "ca_file", CA_FILE), QUIVER_RESULT_OK);
        CHECK_RESULT(quiver_config_set_str(config, NULL, "protocol", "http1"), QUIVER_RESULT_OK);
    } else if (strcmp(name, "h2") == 0) {
        *base = HTTPS;
        CHECK_RESULT(quiver_config_set_str(config, NULL, "ca_file", CA_FILE), QUIVER_RESULT_OK);
    } else if (strcmp(name, "h2c") == 0) {
        *base = H2C;
        CHECK_RESULT(quiver_config_set_str(config, NULL, "protocol", "http2"), QUIVER_RESULT_OK);
    } else if (strcmp(name, "h3") == 0) {
        *base = H3;
        CHECK_RESULT(quiver_config_set_str(config, NULL, "ca_file", CA_FILE), QUIVER_RESULT_OK);
        CHECK_RESULT(quiver_config_set_str(config, NULL, "protocol", "http3"), QUIVER_RESULT_OK);
    } else {
        REQUIRE(!"unknown protocol in scenarios.tsv");
    }
    const quiver_client *c = *base == NULL ? NULL : new_client(config);
    quiver_config_free(config);
    return c;
}

/* Runs one case (its cells already split) on `client`; prints and counts a failure. */
static void run_case(const quiver_client *client, const char *base, const char *protocol,
                     char **f) {
    const char *name = f[0];
    char *url = f[3][0] == '/' ? format("%s%s", base, f[3]) : format("%s", f[3]);
    quiver_request *req = quiver_request_new(f[2], url);
    REQUIRE(req != NULL);
    if (!dash(f[4])) {
        char *pairs[MAX_FIELDS];
        size_t n = split(f[4], '|', pairs, MAX_FIELDS);
        for (size_t i = 0; i < n; i++) {
            char *eq = strchr(pairs[i], '=');
            REQUIRE(eq != NULL);
            *eq = '\0';
            unescape(eq + 1);
            CHECK_RESULT(quiver_request_add_header(req, pairs[i], eq + 1), QUIVER_RESULT_OK);
        }
    }
    if (!dash(f[5])) {
        unescape(f[5]);
        CHECK_RESULT(quiver_request_set_body_copy(req, (const uint8_t *)f[5], strlen(f[5])),
                     QUIVER_RESULT_OK);
    }
    if (!dash(f[6])) {
        CHECK_RESULT(quiver_request_set_timeout_ms(req, strtoull(f[6], NULL, 10)),
                     QUIVER_RESULT_OK);
    }
    quiver_response *resp = NULL;
    quiver_error *err = NULL;
    quiver_result code = quiver_client_send_blocking(client, req, &resp, &err);
    int failed = 0;
    if (strncmp(f[7], "error=", 6) == 0) {
        const char *kind = f[7] + 6;
        if (code == QUIVER_RESULT_OK || err == NULL || strcmp(quiver_error_kind(err), kind) != 0) {
            fprintf(stderr, "%s on %s: expected %s, got %s\n", name, protocol, kind,
                    err != NULL ? quiver_error_kind(err) : "a response");
            failed = 1;
        }
    } else if (code != QUIVER_RESULT_OK) {
        print_error(name, err);
        failed = 1;
    } else {
        long status = strtol(f[7] + strlen("status="), NULL, 10);
        const uint8_t *body = NULL;
        size_t len = 0;
        CHECK_RESULT(quiver_response_body(resp, &body, &len), QUIVER_RESULT_OK);
        if (quiver_response_status(resp) != status) {
            fprintf(stderr, "%s on %s: status %u, expected %ld\n", name, protocol,
                    quiver_response_status(resp), status);
            failed = 1;
        }
        char *checks[MAX_FIELDS];
        size_t n = dash(f[8]) ? 0 : split(f[8], '|', checks, MAX_FIELDS);
        for (size_t i = 0; i < n && !failed; i++) {
            char *arg = strchr(checks[i], '=');
            REQUIRE(arg != NULL);
            *arg++ = '\0';
            int ok;
            if (strcmp(checks[i], "pattern") == 0) {
                ok = len == strtoull(arg, NULL, 10) && is_pattern(body, len, 0);
            } else if (strcmp(checks[i], "text") == 0) {
                unescape(arg);
                ok = len == strlen(arg) && memcmp(body, arg, len) == 0;
            } else if (strcmp(checks[i], "len") == 0) {
                ok = len == strtoull(arg, NULL, 10);
            } else if (strcmp(checks[i], "contains") == 0) {
                unescape(arg);
                ok = contains(body, len, arg);
            } else if (strcmp(checks[i], "header") == 0) {
                char *colon = strchr(arg, ':');
                REQUIRE(colon != NULL);
                *colon = '\0';
                const char *value = NULL;
                size_t value_len = 0;
                ok = quiver_response_header_get(resp, arg, 0, &value, &value_len) ==
                         QUIVER_RESULT_OK &&
                     bytes_eq(value, value_len, colon + 1);
            } else if (strcmp(checks[i], "history") == 0) {
                ok = quiver_response_history_len(resp) == strtoull(arg, NULL, 10);
            } else if (strcmp(checks[i], "url_ends") == 0) {
                unescape(arg);
                const char *final_url = NULL;
                size_t url_len = 0, n_end = strlen(arg);
                ok = quiver_response_url(resp, &final_url, &url_len) == QUIVER_RESULT_OK &&
                     url_len >= n_end && memcmp(final_url + url_len - n_end, arg, n_end) == 0;
            } else {
                ok = 0;
            }
            if (!ok) {
                fprintf(stderr, "%s on %s: check %s failed (body %zu bytes)\n", name, protocol,
                        checks[i], len);
                failed = 1;
            }
        }
    }
    if (failed) test_failures++;
    quiver_response_free(resp);
    quiver_error_free(err);
    free(url);
}

int main(void) {
    HTTP = env_or_die("QUIVER_TEST_HTTP");
    HTTPS = env_or_die("QUIVER_TEST_HTTPS");
    H2C = getenv("QUIVER_TEST_H2C");
    H3 = getenv("QUIVER_TEST_H3");
    CA_FILE = env_or_die("QUIVER_TEST_CA_FILE");
    const char *path = env_or_die("QUIVER_TEST_SCENARIOS");
    const char *protocols[] = {"http1", "https1", "h2", "h2c", "h3"};
    int runs = 0;
    for (size_t p = 0; p < sizeof protocols / sizeof protocols[0]; p++) {
        const char *base = NULL;
        const quiver_client *client = client_for(protocols[p], &base);
        if (client == NULL) {
            printf("scenarios on %s: not served here\n", protocols[p]);
            continue;
        }
        FILE *file = fopen(path, "r");
        REQUIRE(file != NULL);
        char line[MAX_LINE];
        while (fgets(line, sizeof line, file) != NULL) {
            line[strcspn(line, "\n")] = '\0';
            if (line[0] == '#' || line[0] == '\0') continue;
            char *f[MAX_FIELDS];
            REQUIRE(split(line, '\t', f, MAX_FIELDS) == 9);
            int wanted = strcmp(f[1], "*") == 0;
            char list[256];
            snprintf(list, sizeof list, ",%s,", f[1]);
            char needle[32];
            snprintf(needle, sizeof needle, ",%s,", protocols[p]);
            wanted = wanted || strstr(list, needle) != NULL;
            if (!wanted) continue;
            run_case(client, base, protocols[p], f);
            runs++;
        }
        fclose(file);
        quiver_client_free(client);
    }
    CHECK(runs >= 60);
    if (test_failures > 0) {
        printf("test_scenarios: %d failure(s) in %d runs\n", test_failures, runs);
        return 1;
    }
    printf("test_scenarios: all %d runs passed\n", runs);
    return 0;
}
