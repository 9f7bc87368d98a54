/* SPDX-License-Identifier: MIT */
/*
 * paths.h - where ferry keeps its files, and whether a folder is safe.
 *
 * Two folders: the runtime folder holds the unix socket (gone at reboot,
 * as it should be), the data folder holds durable state. Their defaults
 * follow the conventions a user expects: under systemd the folders it made
 * ($RUNTIME_DIRECTORY, $STATE_DIRECTORY), as root /run/ferry and
 * /var/lib/ferry, else $XDG_RUNTIME_DIR/ferry and $XDG_STATE_HOME/ferry
 * (~/.local/state/ferry). ferryd and the ferry command compute the same
 * defaults here, so the command finds the daemon's socket with no flag.
 *
 * A folder is safe when it and every parent are owned by a trusted user
 * (us or root) and no one else may write them; a parent others may write
 * is safe only with the sticky bit, which stops them renaming our entries
 * (/tmp). That is the check OpenSSH makes of its files: it stops another
 * user from swapping ferryd's socket for theirs and reading a token.
 * libuv-free: the ferry command links it.
 */
#ifndef FERRY_CORE_PATHS_H
#define FERRY_CORE_PATHS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "ferry.h"

#define PATHS_MAX 4000 /* longest folder name accepted */
#define PATHS_SOCKET                                                           \
    "ferryd.sock"          /* the socket's name in the runtime folder          \
                            */
#define PATHS_ERR_SIZE 512 /* room for a message naming a path */

/*
 * Writes the default data folder into buf. FERRY_EINVALID_ARGUMENT when
 * there is none to be had (no $HOME and no passwd entry).
 */
ferry_err paths_default_data_dir(char *buf, size_t size);

/*
 * Writes the default runtime folder into buf; data_dir is the fallback
 * when neither systemd nor $XDG_RUNTIME_DIR gives one (a user session
 * without a runtime folder).
 */
ferry_err paths_default_run_dir(const char *data_dir, char *buf, size_t size);

/*
 * Creates dir and its missing parents (the last with mode 0700), then
 * checks that dir and every parent are safe (see the top). On refusal err
 * names the folder and why.
 */
ferry_err paths_make_dir(const char *dir, char *err, size_t err_size);

/*
 * Checks an existing folder and its parents, and when file is not NULL the
 * file in it (a socket ferryd made): all must be owned by a trusted user
 * and, but for sticky parents, writable by no one else. extra_uid is one
 * more trusted owner ((uid_t)-1 for none): the ferry command trusts the
 * daemon's own user.
 */
ferry_err paths_check(const char *dir, const char *file, uid_t extra_uid,
                      char *err, size_t err_size);

/* paths_check() of a unix socket's folder and of the socket itself. */
ferry_err paths_check_socket(const char *path, uid_t extra_uid, char *err,
                             size_t err_size);

/* The uid of the system user "ferry" the package makes, or (uid_t)-1. */
uid_t paths_service_uid(void);

#endif
