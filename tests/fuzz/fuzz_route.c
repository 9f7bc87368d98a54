/* SPDX-License-Identifier: MIT */
/*
 * fuzz_route.c - libFuzzer target for the gateway's REST routes, the part
 * of the HTTP side that parses what a client sends in the path: any bytes
 * as "METHOD PATH" are matched against a fixed table, and when a route
 * matches, the payload built from its parameters (percent-decoded, then a
 * JSON number or an escaped string) must fit the room promised for it and
 * parse as a JSON object with one member per parameter.
 *
 * FUZZ_SRC: src/http/route.c src/http/respond.c src/proto/errors.c
 * FUZZ_LIBS: -lh2o -luv -ljansson
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/route.h"

static char *specs[] = {
    "GET /fib/{n} fib",
    "POST /users/{id}/orders/{order} orders",
    "GET /a/b/c static",
    "PUT /{x} any",
    "GET /files/{name}/raw files",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct route_table table;
    static int ready;
    struct slice params[ROUTE_MAX_SEGS];
    const struct route *r;
    const uint8_t *space = memchr(data, ' ', size);
    const char *path;
    size_t plen, room, n;
    char *json, *scratch;
    json_error_t jerr;
    json_t *doc;
    bool known;

    if (!ready) {
        char err[256];
        if (route_table_init(&table, specs, sizeof(specs) / sizeof(specs[0]),
                             NULL, err, sizeof(err)) != FERRY_OK) {
            abort();
        }
        ready = 1;
    }
    if (space == NULL) {
        return 0;
    }
    path = (const char *)space + 1;
    plen = size - (size_t)(space - data) - 1;
    r = route_find(&table, (const char *)data, (size_t)(space - data), path,
                   plen, params, &known);
    if (r == NULL) {
        return 0;
    }
    room = route_payload_max(r, plen);
    json = malloc(room);
    scratch = malloc(plen + 1);
    if (json == NULL || scratch == NULL) {
        abort();
    }
    n = route_payload(r, params, json, scratch);
    if (n > room) {
        abort();
    }
    /* \u0000 is valid JSON (JSON_ALLOW_NUL); numbers past what jansson
     * holds (a 40-digit integer, 1e999) are valid JSON too, only beyond
     * jansson, so for them the check stops there. */
    doc = json_loadb(json, n, JSON_ALLOW_NUL, &jerr);
    if (doc == NULL && (strstr(jerr.text, "too big") != NULL ||
                        strstr(jerr.text, "overflow") != NULL)) {
        goto out_free;
    }
    if (doc == NULL || !json_is_object(doc) ||
        json_object_size(doc) != r->n_params) {
        abort();
    }
    json_decref(doc);
out_free:
    free(json);
    free(scratch);
    return 0;
}
