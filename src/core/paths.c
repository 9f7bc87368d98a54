/* SPDX-License-Identifier: MIT */
/*
 * paths.c - ferry's default folders and the check that a folder is safe
 * to hold its socket and its state. See paths.h.
 */
#include "core/paths.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Writes the first folder of a systemd directory variable (it may list
 * several, separated by ':'); false when it is unset or not absolute.
 */
static bool
paths_from_systemd(const char *var, char *buf, size_t size)
{
    const char *v = getenv(var);
    size_t n;

    if (v == NULL || v[0] != '/') {
        return false;
    }
    n = strcspn(v, ":");
    if (n >= size) {
        return false;
    }
    memcpy(buf, v, n);
    buf[n] = '\0';
    return true;
}

/* Writes base + "/" + leaf; false when it does not fit. */
static bool
paths_join(char *buf, size_t size, const char *base, const char *leaf)
{
    int n = snprintf(buf, size, "%s/%s", base, leaf);

    return n > 0 && (size_t)n < size;
}

ferry_err
paths_default_data_dir(char *buf, size_t size)
{
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");

    if (paths_from_systemd("STATE_DIRECTORY", buf, size)) {
        return FERRY_OK;
    }
    if (geteuid() == 0) {
        return paths_join(buf, size, "/var/lib", "ferry")
                   ? FERRY_OK
                   : FERRY_EINVALID_ARGUMENT;
    }
    if (xdg != NULL && xdg[0] == '/') {
        return paths_join(buf, size, xdg, "ferry") ? FERRY_OK
                                                   : FERRY_EINVALID_ARGUMENT;
    }
    if (home == NULL || home[0] != '/') {
        struct passwd *pw = getpwuid(geteuid());
        home = pw != NULL ? pw->pw_dir : NULL;
    }
    if (home == NULL || home[0] != '/') {
        return FERRY_EINVALID_ARGUMENT;
    }
    return paths_join(buf, size, home, ".local/state/ferry")
               ? FERRY_OK
               : FERRY_EINVALID_ARGUMENT;
}

ferry_err
paths_default_run_dir(const char *data_dir, char *buf, size_t size)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");

    if (paths_from_systemd("RUNTIME_DIRECTORY", buf, size)) {
        return FERRY_OK;
    }
    if (geteuid() == 0) {
        return paths_join(buf, size, "/run", "ferry") ? FERRY_OK
                                                      : FERRY_EINVALID_ARGUMENT;
    }
    if (xdg != NULL && xdg[0] == '/') {
        return paths_join(buf, size, xdg, "ferry") ? FERRY_OK
                                                   : FERRY_EINVALID_ARGUMENT;
    }
    if (strlen(data_dir) >= size) {
        return FERRY_EINVALID_ARGUMENT;
    }
    memcpy(buf, data_dir, strlen(data_dir) + 1);
    return FERRY_OK;
}

uid_t
paths_service_uid(void)
{
    struct passwd *pw = getpwnam("ferry");

    return pw != NULL ? pw->pw_uid : (uid_t)-1;
}

static bool
paths_is_trusted(uid_t owner, uid_t extra_uid)
{
    return owner == 0 || owner == geteuid() ||
           (extra_uid != (uid_t)-1 && owner == extra_uid);
}

/*
 * Checks one existing path: a trusted owner and, for a folder, no write by
 * group or others unless it is a sticky parent.
 */
static ferry_err
paths_check_one(const char *path, bool is_leaf, uid_t extra_uid, char *err,
                size_t err_size)
{
    struct stat st;

    if (stat(path, &st) != 0) {
        snprintf(err, err_size, "'%s': %s", path, strerror(errno));
        return FERRY_EINVALID_ARGUMENT;
    }
    if (!paths_is_trusted(st.st_uid, extra_uid)) {
        snprintf(err, err_size,
                 "'%s' is owned by uid %u, not by this user (uid %u) or root: "
                 "another user could replace what is in it",
                 path, (unsigned)st.st_uid, (unsigned)geteuid());
        return FERRY_EINVALID_ARGUMENT;
    }
    if (!S_ISDIR(st.st_mode) || (st.st_mode & 022) == 0) {
        return FERRY_OK;
    }
    if (!is_leaf && (st.st_mode & S_ISVTX) != 0) {
        return FERRY_OK;
    }
    snprintf(err, err_size,
             "'%s' may be written by others (mode %04o): "
             "another user could replace what is in it",
             path, (unsigned)(st.st_mode & 07777));
    return FERRY_EINVALID_ARGUMENT;
}

ferry_err
paths_check(const char *dir, const char *file, uid_t extra_uid, char *err,
            size_t err_size)
{
    char real[PATH_MAX];
    ferry_err e;

    /* The folders as they really are: a symlink cannot hide a parent. */
    if (realpath(dir, real) == NULL) {
        snprintf(err, err_size, "'%s': %s", dir, strerror(errno));
        return FERRY_EINVALID_ARGUMENT;
    }
    e = paths_check_one("/", real[1] == '\0', extra_uid, err, err_size);
    for (char *p = real + 1; e == FERRY_OK && real[1] != '\0'; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            e = paths_check_one(real, c == '\0', extra_uid, err, err_size);
            *p = c;
            if (c == '\0') {
                break;
            }
        }
    }
    if (e == FERRY_OK && file != NULL) {
        char path[PATH_MAX + 256];
        struct stat st;

        snprintf(path, sizeof(path), "%s/%s", real, file);
        if (lstat(path, &st) == 0 && !paths_is_trusted(st.st_uid, extra_uid)) {
            snprintf(
                err, err_size,
                "'%s' is owned by uid %u, not by this user (uid %u) or root",
                path, (unsigned)st.st_uid, (unsigned)geteuid());
            return FERRY_EINVALID_ARGUMENT;
        }
    }
    return e;
}

ferry_err
paths_make_dir(const char *dir, char *err, size_t err_size)
{
    char path[PATHS_MAX + 1];
    size_t n = strlen(dir);

    if (n == 0 || n > PATHS_MAX || dir[0] != '/') {
        snprintf(err, err_size, "'%.*s': not an absolute folder name",
                 (int)(n > 200 ? 200 : n), dir);
        return FERRY_EINVALID_ARGUMENT;
    }
    memcpy(path, dir, n + 1);
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/') {
            continue;
        }
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            snprintf(err, err_size, "'%s': %s", path, strerror(errno));
            return FERRY_EINVALID_ARGUMENT;
        }
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        snprintf(err, err_size, "'%s': %s", path, strerror(errno));
        return FERRY_EINVALID_ARGUMENT;
    }
    return paths_check(path, NULL, (uid_t)-1, err, err_size);
}

ferry_err
paths_check_socket(const char *path, uid_t extra_uid, char *err,
                   size_t err_size)
{
    char dir[PATHS_MAX + 1];
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 0 : (size_t)(slash - path);

    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (n == 0) {
        snprintf(dir, sizeof(dir), "/");
    } else if (n < sizeof(dir)) {
        memcpy(dir, path, n);
        dir[n] = '\0';
    } else {
        snprintf(err, err_size, "socket name too long");
        return FERRY_EINVALID_ARGUMENT;
    }
    return paths_check(dir, slash == NULL ? path : slash + 1, extra_uid, err,
                       err_size);
}
