/* SPDX-License-Identifier: MIT */
/*
 * dashboard_assets.h - the dashboard's files, embedded in ferryd at build
 * time. The table itself is generated (scripts/embed_assets.py writes
 * $(BUILD)/gen/dashboard_assets.c from the bundle built out of web/);
 * dashboard.c serves it.
 */
#ifndef FERRY_HTTP_DASHBOARD_ASSETS_H
#define FERRY_HTTP_DASHBOARD_ASSETS_H

#include <stddef.h>

/* One embedded file; everything is static and read-only. */
struct dashboard_asset {
    const char *name;          /* base name: "index.html", "dashboard.js" */
    const char *content_type;  /* the Content-Type header value */
    const char *etag;          /* quoted hash of data, for If-None-Match */
    const unsigned char *data; /* the file's bytes */
    size_t len;                /* bytes in data */
};

/* Sorted by name. */
extern const struct dashboard_asset dashboard_assets[];
extern const size_t dashboard_assets_count;

#endif
