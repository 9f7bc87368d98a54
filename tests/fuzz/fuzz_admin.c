/* SPDX-License-Identifier: MIT */
/*
 * fuzz_admin.c - libFuzzer target for the operator's commands: any bytes as
 * the payload of ferry.admin (control_run_text) on a real broker, so every
 * field it reads is checked before it is trusted. A command either answers
 * a JSON object with "ok": true, or fails with a message; it never crashes.
 *
 * FUZZ_SRC: src/broker/ src/core/ src/proto/ src/topic/ src/cluster/vbmap.c
 * FUZZ_LIBS: -luv -ljansson -linih -lsystemd -lxxhash -lm
 *
 * src/topic/ for the events the broker emits (worker joins, circuit
 * changes; topic/topic.h): with no ferry.topic running they are no-ops.
 *
 * The broker lives for the whole run, as it does in ferryd: services that
 * commands create stay (bounded by max_services), so later inputs meet
 * the state earlier ones left.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/control.h"
#include "core/config.h"
#include "core/log.h"
#include "core/loop.h"

static struct config cfg;
static struct loop loop;
static struct broker broker;

static void
fuzz_setup(void)
{
    if (config_init(&cfg) != FERRY_OK) {
        abort();
    }
    cfg.max_services = 64;
    log_set_level(LOG_LVL_ERROR);
    if (loop_init(&loop, &cfg) != FERRY_OK ||
        broker_init(&broker, &loop) != FERRY_OK) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    char msg[CONFIG_ERR_SIZE] = "";
    char *reply = NULL;
    json_t *doc;

    if (!ready) {
        fuzz_setup();
        ready = 1;
    }
    if (control_run_text(&broker, data, size, "fuzz", &reply, msg,
                         sizeof(msg)) != FERRY_OK) {
        /* Every refusal says why. */
        if (msg[0] == '\0' || reply != NULL) {
            abort();
        }
        return 0;
    }
    doc = json_loads(reply, 0, NULL);
    if (doc == NULL || !json_is_true(json_object_get(doc, "ok"))) {
        abort();
    }
    json_decref(doc);
    free(reply);
    return 0;
}
