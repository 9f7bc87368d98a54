/* SPDX-License-Identifier: MIT */
/*
 * test_paths.c - ferry's default folders under systemd, as root and as
 * another user (a child that drops to uid 65534 when the test runs as
 * root), and the safety check: folders others may write, folders and
 * sockets owned by someone else, sticky parents, symlinks, creation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/paths.h"

#define NOBODY 65534

static char base[256]; /* a fresh folder per test, mode 0700 */

static int
setup(void **state)
{
    snprintf(base, sizeof(base), "/tmp/ferry-test-paths-XXXXXX");
    assert_non_null(mkdtemp(base));
    return 0;
}

static int
teardown(void **state)
{
    char cmd[300];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    assert_int_equal(system(cmd), 0);
    unsetenv("STATE_DIRECTORY");
    unsetenv("RUNTIME_DIRECTORY");
    return 0;
}

static void
sub(char *out, size_t size, const char *leaf)
{
    snprintf(out, size, "%s/%s", base, leaf);
}

static void
test_systemd_folders(void **state)
{
    char dir[PATHS_MAX + 1];

    setenv("STATE_DIRECTORY", "/var/lib/ferry:/var/lib/other", 1);
    setenv("RUNTIME_DIRECTORY", "/run/ferry", 1);
    assert_int_equal(paths_default_data_dir(dir, sizeof(dir)), FERRY_OK);
    assert_string_equal(dir, "/var/lib/ferry");
    assert_int_equal(paths_default_run_dir("/x", dir, sizeof(dir)), FERRY_OK);
    assert_string_equal(dir, "/run/ferry");
    /* A relative value is not systemd's: ignored. */
    setenv("STATE_DIRECTORY", "relative", 1);
    assert_int_equal(paths_default_data_dir(dir, sizeof(dir)), FERRY_OK);
    assert_string_not_equal(dir, "relative");
    /* Too long for the buffer: an error, not a cut name. */
    assert_int_equal(paths_default_run_dir("/x", dir, 5),
                     FERRY_EINVALID_ARGUMENT);
}

/* What a user (not root) gets, checked in a child running as that user. */
static int
user_defaults(void)
{
    char dir[PATHS_MAX + 1];

    setenv("XDG_STATE_HOME", "/home/u/.state", 1);
    setenv("XDG_RUNTIME_DIR", "/run/user/65534", 1);
    if (paths_default_data_dir(dir, sizeof(dir)) != FERRY_OK ||
        strcmp(dir, "/home/u/.state/ferry") != 0) {
        return 1;
    }
    if (paths_default_run_dir("/d", dir, sizeof(dir)) != FERRY_OK ||
        strcmp(dir, "/run/user/65534/ferry") != 0) {
        return 2;
    }
    unsetenv("XDG_STATE_HOME");
    unsetenv("XDG_RUNTIME_DIR");
    setenv("HOME", "/home/u", 1);
    if (paths_default_data_dir(dir, sizeof(dir)) != FERRY_OK ||
        strcmp(dir, "/home/u/.local/state/ferry") != 0) {
        return 3;
    }
    /* No runtime folder at all: the socket goes in the data folder. */
    if (paths_default_run_dir("/d", dir, sizeof(dir)) != FERRY_OK ||
        strcmp(dir, "/d") != 0) {
        return 4;
    }
    return 0;
}

static void
test_root_and_user_defaults(void **state)
{
    char dir[PATHS_MAX + 1];
    pid_t pid;
    int status;

    if (geteuid() == 0) {
        assert_int_equal(paths_default_data_dir(dir, sizeof(dir)), FERRY_OK);
        assert_string_equal(dir, "/var/lib/ferry");
        assert_int_equal(paths_default_run_dir("/d", dir, sizeof(dir)),
                         FERRY_OK);
        assert_string_equal(dir, "/run/ferry");
    }
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (geteuid() == 0 && setuid(NOBODY) != 0) {
            _exit(9);
        }
        _exit(user_defaults());
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_make_dir_creates_private(void **state)
{
    char dir[300], err[PATHS_ERR_SIZE];
    struct stat st;

    sub(dir, sizeof(dir), "a/b/c");
    assert_int_equal(paths_make_dir(dir, err, sizeof(err)), FERRY_OK);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    /* Again: it exists and is still fine. */
    assert_int_equal(paths_make_dir(dir, err, sizeof(err)), FERRY_OK);
    assert_int_equal(paths_make_dir("relative/dir", err, sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "absolute"));
}

static void
test_writable_by_others_refused(void **state)
{
    char dir[300], inner[320], err[PATHS_ERR_SIZE];

    sub(dir, sizeof(dir), "open");
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(chmod(dir, 0777), 0);
    assert_int_equal(paths_check(dir, NULL, (uid_t)-1, err, sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "mode 0777"));
    assert_non_null(strstr(err, dir));
    /* Group write alone is refused too. */
    assert_int_equal(chmod(dir, 0770), 0);
    assert_int_equal(paths_check(dir, NULL, (uid_t)-1, err, sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
    /* A folder inside one others may write: its parent is refused. */
    assert_int_equal(chmod(dir, 0777), 0);
    snprintf(inner, sizeof(inner), "%s/inner", dir);
    assert_int_equal(paths_make_dir(inner, err, sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "mode 0777"));
    /* Sticky, as /tmp: others cannot rename our entries; fine as parent,
     * never as the folder itself. */
    assert_int_equal(chmod(dir, 01777), 0);
    assert_int_equal(paths_make_dir(inner, err, sizeof(err)), FERRY_OK);
    assert_int_equal(paths_check(dir, NULL, (uid_t)-1, err, sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
    assert_int_equal(paths_check("/tmp", NULL, (uid_t)-1, err, sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
}

static void
test_foreign_owner_refused(void **state)
{
    char dir[300], link[300], sock[320], err[PATHS_ERR_SIZE];

    if (geteuid() != 0) {
        /* Only root can give a folder away; the mode checks above still
         * ran. Counted as a pass would be a lie: fail loudly instead. */
        fail_msg("test_foreign_owner_refused needs root (chown)");
    }
    sub(dir, sizeof(dir), "theirs");
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(chown(dir, NOBODY, NOBODY), 0);
    assert_int_equal(paths_check(dir, NULL, (uid_t)-1, err, sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "owned by uid 65534"));
    /* Trusted on purpose (the ferry command trusts ferryd's user). */
    assert_int_equal(paths_check(dir, NULL, NOBODY, err, sizeof(err)),
                     FERRY_OK);
    /* A symlink of ours to it does not hide it. */
    sub(link, sizeof(link), "link");
    assert_int_equal(symlink(dir, link), 0);
    assert_int_equal(paths_check(link, NULL, (uid_t)-1, err, sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
    /* Our folder, someone else's socket in it. */
    snprintf(sock, sizeof(sock), "%s/ferryd.sock", base);
    assert_int_equal(mknod(sock, S_IFIFO | 0600, 0), 0);
    assert_int_equal(paths_check_socket(sock, (uid_t)-1, err, sizeof(err)),
                     FERRY_OK);
    assert_int_equal(chown(sock, NOBODY, NOBODY), 0);
    assert_int_equal(paths_check_socket(sock, (uid_t)-1, err, sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "ferryd.sock"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_systemd_folders, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_root_and_user_defaults, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_make_dir_creates_private, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_writable_by_others_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_foreign_owner_refused, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
