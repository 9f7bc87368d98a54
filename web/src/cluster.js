// SPDX-License-Identifier: MIT
// The cluster panel: this node's view of its cluster from /v1/cluster
// (docs/cluster.md, "Seeing the cluster"), read every few seconds: the
// node, the epoch of its vbucket map, fenced or not, then one row per
// member with its vbuckets, peer link, requests forwarded to it and its
// services. On a single node ({"enabled": false}) it says so and shows no
// table. The table helpers are main.js's, passed in.

export const CLUSTER_EVERY_MS = 3000;

function n(v) {
    return typeof v === "number" && Number.isFinite(v) ? v : null;
}

// "svc:2, other:1": a member's services with their worker counts.
function servicesText(services) {
    const list = Object.entries(services || {}).map(
        ([name, s]) => `${name}:${n(s && s.workers) ?? "–"}`,
    );
    return list.length ? list.join(", ") : "–";
}

export class ClusterPanel {
    // $: the page's getElementById; h: { el, tag, numCell } of main.js.
    constructor($, h) {
        this.$ = $;
        this.h = h;
    }

    // The document of /v1/cluster, or null with why when it could not be
    // read.
    render(doc, why) {
        const $ = this.$;
        const { el, tag, numCell } = this.h;
        $("cluster-panel").hidden = false;
        const facts = $("cluster-facts");
        const table = $("cluster-table");
        if (!doc || !doc.enabled) {
            $("cluster-state").textContent = doc
                ? "single node"
                : `unknown (${why || "no answer"})`;
            $("cluster-panel").dataset.enabled = "false";
            facts.hidden = true;
            table.hidden = true;
            return;
        }
        $("cluster-panel").dataset.enabled = "true";
        const members = Array.isArray(doc.members) ? doc.members : [];
        $("cluster-state").textContent =
            `${members.length} member${members.length === 1 ? "" : "s"}`;
        facts.hidden = false;
        table.hidden = false;
        $("cluster-node").textContent = String(doc.node ?? "–");
        $("cluster-epoch").textContent = String(n(doc.epoch) ?? "–");
        $("cluster-fenced").replaceChildren(
            doc.fenced ? tag("fenced", "bad") : tag("no", "ok"),
        );
        const rows = members.map((m) => {
            const link = String(m.link ?? "–");
            const kind = link === "up" ? "ok" : link === "self" ? "info" : "bad";
            return el(
                "tr",
                { class: "member", "data-member": String(m.name) },
                el("td", {}, String(m.name ?? "–")),
                el("td", {}, String(m.addr ?? "–")),
                numCell(n(m.node_id)),
                numCell(n(m.vbuckets)),
                el("td", { "data-link": link }, tag(link, kind)),
                numCell(n(m.forwarded)),
                numCell(n(m.failed)),
                el("td", {}, servicesText(m.services)),
            );
        });
        table.tBodies[0].replaceChildren(...rows);
    }
}
