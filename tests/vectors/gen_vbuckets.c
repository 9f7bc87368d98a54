/* SPDX-License-Identifier: MIT */
/*
 * gen_vbuckets.c - writes tests/vectors/vbuckets.json, the recorded
 * vbuckets of some keys and, for five members, the name hashes, the
 * weights and owners of some vbuckets and each member's share
 * (docs/cluster.md, "Keys and vbuckets"). Run once; the file is the
 * reference, checked by tests/unit/test_vbmap.c and, when it was written,
 * by an independent Python computation (python3-xxhash). Regenerate only
 * if the map's formulas change, which breaks every client:
 *
 *   cc -std=c11 -D_GNU_SOURCE -Iinclude -Isrc tests/vectors/gen_vbuckets.c \
 *       src/cluster/vbmap.c -lxxhash -o /tmp/gen_vbuckets &&
 *   /tmp/gen_vbuckets > tests/vectors/vbuckets.json
 */
#include <stdio.h>
#include <string.h>
#include "cluster/vbmap.h"
int
main(void)
{
    const char *keys[] = {
        "", "a", "user:42", "order/2026/12/03/0001", "ferry", "hello world"};
    const char *mem[] = {"node-a", "node-b", "node-c", "node-d", "node-e"};
    unsigned vbs[] = {0, 1, 2, 100, 511, 512, 1000, 1023};
    struct vbmap m;
    vbmap_init(&m, mem, 5, 7);
    printf("{\n \"version\": 1,\n \"vb_count\": 1024,\n \"keys\": [\n");
    for (int i = 0; i < 6; i++)
        printf("  {\"key\": \"%s\", \"vbucket\": %u}%s\n", keys[i],
               vb_of_key(keys[i], strlen(keys[i])), i < 5 ? "," : "");
    printf(" ],\n \"members\": [\"node-a\", \"node-b\", \"node-c\", "
           "\"node-d\", \"node-e\"],\n \"name_hashes\": {\n");
    for (int i = 0; i < 5; i++)
        printf("  \"%s\": \"%llu\"%s\n", mem[i],
               (unsigned long long)vbmap_name_hash(mem[i], strlen(mem[i])),
               i < 4 ? "," : "");
    printf(" },\n \"owners\": [\n");
    for (int i = 0; i < 8; i++) {
        printf("  {\"vbucket\": %u, \"owner\": \"%s\", \"weights\": {", vbs[i],
               vbmap_owner(&m, vbs[i]));
        for (int j = 0; j < 5; j++)
            printf("\"%s\": \"%llu\"%s", mem[j],
                   (unsigned long long)vbmap_weight(vbmap_name_hash(mem[j], 6),
                                                    (uint16_t)vbs[i]),
                   j < 4 ? ", " : "");
        printf("}}%s\n", i < 7 ? "," : "");
    }
    printf(" ],\n \"owned\": {");
    for (int j = 0; j < 5; j++)
        printf("\"%s\": %u%s", m.members[j].name, vbmap_owned(&m, (uint16_t)j),
               j < 4 ? ", " : "");
    printf("}\n}\n");
    vbmap_release(&m);
    return 0;
}
