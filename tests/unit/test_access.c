/* SPDX-License-Identifier: MIT */
/*
 * test_access.c - the rules of core/access.h, as tables: who may see
 * internals for every combination of token settings (caller, worker,
 * admin; each on or off, an empty one being off) and every token a client
 * may show (none, each of the three, a wrong one, a prefix of one), who
 * may give the operator's commands (the same, on a unix socket or not),
 * and the words a refusal uses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/access.h"
#include "core/config.h"

#define CT "caller-s3cret"
#define WT "worker-s3cret"
#define AT "admin-s3cret"

/* A client's token; NULL for none. */
static const char *const shown[] = {NULL, CT, WT, AT, "wrong", "admin-"};
#define N_SHOWN (sizeof(shown) / sizeof(shown[0]))

/* A setting: on (the token), or off as NULL or as "". */
static const char *const caller_opts[] = {NULL, "", CT};
static const char *const worker_opts[] = {NULL, "", WT};
static const char *const admin_opts[] = {NULL, "", AT};

static bool
on(const char *t)
{
    return t != NULL && t[0] != '\0';
}

/* The rule written out again, from docs/http.md. */
static bool
want_internals(const char *caller, const char *admin, const char *tok)
{
    if (on(admin)) {
        return tok != NULL && strcmp(tok, admin) == 0;
    }
    if (on(caller)) {
        return tok != NULL && strcmp(tok, caller) == 0;
    }
    return true;
}

static bool
want_command(const char *admin, const char *tok, bool on_unix)
{
    if (on(admin)) {
        return tok != NULL && strcmp(tok, admin) == 0;
    }
    return on_unix;
}

static struct config
settings(const char *caller, const char *worker, const char *admin)
{
    struct config cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.caller_token = (char *)caller;
    cfg.worker_token = (char *)worker;
    cfg.admin_token = (char *)admin;
    return cfg;
}

static void
test_internals_table(void **state)
{
    size_t cases = 0, allowed = 0;

    for (size_t c = 0; c < 3; c++) {
        for (size_t w = 0; w < 3; w++) {
            for (size_t a = 0; a < 3; a++) {
                struct config cfg = settings(caller_opts[c], worker_opts[w],
                                             admin_opts[a]);
                for (size_t t = 0; t < N_SHOWN; t++) {
                    const char *tok = shown[t];
                    bool got = access_may_see_internals(
                        &cfg, tok != NULL ? tok : "",
                        tok != NULL ? strlen(tok) : 0);
                    bool want =
                        want_internals(caller_opts[c], admin_opts[a], tok);
                    if (got != want) {
                        fail_msg("caller '%s' worker '%s' admin '%s', "
                                 "shown '%s': got %d, want %d",
                                 caller_opts[c] ? caller_opts[c] : "(null)",
                                 worker_opts[w] ? worker_opts[w] : "(null)",
                                 admin_opts[a] ? admin_opts[a] : "(null)",
                                 tok ? tok : "(none)", got, want);
                    }
                    cases++;
                    allowed += got;
                }
            }
        }
    }
    assert_int_equal(cases, 27 * N_SHOWN);
    /* Open settings (no caller, no admin: 4 of 9 for each worker opt, so
     * 12 of 27) let all 6 through; caller-only ones (6) only CT; admin
     * ones (9) only AT. */
    assert_int_equal(allowed, 12 * N_SHOWN + 6 + 9);
}

static void
test_worker_token_never_opens_internals(void **state)
{
    struct config cfg = settings(CT, WT, NULL);

    assert_false(access_may_see_internals(&cfg, WT, strlen(WT)));
    assert_true(access_may_see_internals(&cfg, CT, strlen(CT)));
    cfg = settings(NULL, WT, AT);
    assert_false(access_may_see_internals(&cfg, WT, strlen(WT)));
    assert_false(access_may_see_internals(&cfg, "", 0));
    /* With only the worker token set, internals are as open as calls. */
    cfg = settings(NULL, WT, NULL);
    assert_true(access_may_see_internals(&cfg, "", 0));
}

static void
test_commands_table(void **state)
{
    size_t cases = 0;

    for (size_t c = 0; c < 3; c++) {
        for (size_t a = 0; a < 3; a++) {
            struct config cfg = settings(caller_opts[c], NULL, admin_opts[a]);
            for (size_t t = 0; t < N_SHOWN; t++) {
                for (int u = 0; u < 2; u++) {
                    const char *tok = shown[t];
                    bool got = access_may_command(
                        &cfg, tok != NULL ? tok : "",
                        tok != NULL ? strlen(tok) : 0, u == 1);
                    assert_int_equal(got,
                                     want_command(admin_opts[a], tok, u == 1));
                    cases++;
                }
            }
        }
    }
    assert_int_equal(cases, 9 * N_SHOWN * 2);
}

static void
test_token_matches(void **state)
{
    assert_true(access_token_matches(AT, strlen(AT), AT));
    assert_false(access_token_matches("", 0, AT));
    assert_false(access_token_matches(AT, strlen(AT) - 1, AT));
    /* A setting that is off matches nothing, not even nothing. */
    assert_false(access_token_matches("", 0, ""));
    assert_false(access_token_matches("", 0, NULL));
    assert_false(access_token_matches("x", 1, NULL));
}

static void
test_refusal_words(void **state)
{
    struct config cfg = settings(CT, WT, AT);

    assert_string_equal(access_internals_need(&cfg), "the admin token");
    cfg = settings(CT, WT, "");
    assert_string_equal(access_internals_need(&cfg), "the caller token");
    cfg = settings(NULL, WT, NULL);
    assert_string_equal(access_internals_need(&cfg), "no token");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_internals_table),
        cmocka_unit_test(test_worker_token_never_opens_internals),
        cmocka_unit_test(test_commands_table),
        cmocka_unit_test(test_token_matches),
        cmocka_unit_test(test_refusal_words),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
