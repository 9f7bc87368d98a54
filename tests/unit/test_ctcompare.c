/* SPDX-License-Identifier: MIT */
/*
 * test_ctcompare.c - constant-time token comparison: equal, differing in
 * the first, a middle and the last byte, length mismatches either way
 * (including a prefix of the secret and the secret repeated), and empty
 * inputs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/ctcompare.h"

static bool
eq(const char *given, const char *secret)
{
    return ctcompare_equal(given, strlen(given), secret, strlen(secret));
}

static void
test_equal(void **state)
{
    assert_true(eq("s3cret-token", "s3cret-token"));
    assert_true(eq("x", "x"));
    assert_true(ctcompare_equal("a\0b", 3, "a\0b", 3));
}

static void
test_differ_anywhere(void **state)
{
    assert_false(eq("X3cret-token", "s3cret-token"));
    assert_false(eq("s3crXt-token", "s3cret-token"));
    assert_false(eq("s3cret-tokeX", "s3cret-token"));
    /* Each single-bit flip of each byte is caught. */
    for (size_t i = 0; i < 12; i++) {
        for (int bit = 0; bit < 8; bit++) {
            char g[13];
            memcpy(g, "s3cret-token", 13);
            g[i] = (char)(g[i] ^ (1 << bit));
            assert_false(ctcompare_equal(g, 12, "s3cret-token", 12));
        }
    }
}

static void
test_lengths(void **state)
{
    assert_false(eq("s3cret", "s3cret-token"));
    assert_false(eq("s3cret-token-and-more", "s3cret-token"));
    /* The secret repeated: indexing modulo its length must not pass it. */
    assert_false(eq("abcabc", "abc"));
    assert_false(eq("abc", "abcabc"));
    /* Lengths that agree in their low byte only. */
    {
        static char big[300];
        memset(big, 'a', sizeof(big));
        assert_false(ctcompare_equal(big, 300, big, 44));
        assert_true(ctcompare_equal(big, 300, big, 300));
    }
}

static void
test_empty(void **state)
{
    assert_true(ctcompare_equal("", 0, "", 0));
    assert_true(ctcompare_equal(NULL, 0, NULL, 0));
    assert_false(eq("", "token"));
    assert_false(eq("token", ""));
    assert_false(ctcompare_equal("\0", 1, "", 0));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_differ_anywhere),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_empty),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
