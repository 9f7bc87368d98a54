// SPDX-License-Identifier: MIT
// The queues table: one row per queue of ferry.queue (jobs ready,
// delayed, reserved and dead-lettered, pushes and acks per second, the
// age of the oldest ready job, paused or not), from the "servants":
// {"queue": {"queues": [...]}} object of /v1/stats, redrawn with every
// snapshot like the other panels (once a second from the stream).
import { fmtCount, fmtDuration } from "./format.js";

function n(v) {
    return typeof v === "number" && Number.isFinite(v) ? v : null;
}

// An age in ms: "850 ms" below a second, else as uptime is shown.
function fmtAge(ms) {
    if (ms == null) {
        return "–";
    }
    return ms < 1000 ? `${Math.round(ms)} ms` : fmtDuration(ms / 1000);
}

function cell(text, cls, data) {
    const td = document.createElement("td");
    if (cls) {
        td.className = cls;
    }
    for (const [k, v] of Object.entries(data || {})) {
        td.dataset[k] = String(v);
    }
    td.textContent = text;
    return td;
}

function tag(text, kind) {
    const s = document.createElement("span");
    s.className = `tag tag-${kind}`;
    s.textContent = text;
    const td = document.createElement("td");
    td.append(s);
    return td;
}

export class QueuesPanel {
    constructor($) {
        this.$ = $;
    }

    // One snapshot of /v1/stats (or the stream).
    add(snap) {
        const q = snap.servants && snap.servants.queue;
        if (!q) {
            return;
        }
        this.render(Array.isArray(q.queues) ? q.queues : []);
    }

    render(queues) {
        const $ = this.$;
        $("queues-panel").hidden = false;
        const list = [...queues].sort((a, b) =>
            String(a.name).localeCompare(String(b.name)),
        );
        const rows = list.map((q) => {
            const tr = document.createElement("tr");
            tr.className = "queue";
            tr.dataset.queue = String(q.name);
            const num = (field, fmt = fmtCount) => {
                const v = n(q[field]);
                return cell(v == null ? "–" : fmt(v), "num", {
                    [field]: v == null ? "" : v,
                });
            };
            tr.append(
                cell(String(q.name)),
                num("ready"),
                num("delayed"),
                num("reserved"),
                num("dead"),
                num("push_rate", (v) => `${fmtCount(v)}/s`),
                num("ack_rate", (v) => `${fmtCount(v)}/s`),
                num("oldest_ready_age_ms", fmtAge),
                q.paused ? tag("paused", "warn") : tag("delivering", "ok"),
            );
            return tr;
        });
        if (rows.length === 0) {
            const tr = document.createElement("tr");
            tr.className = "empty";
            const td = cell("no queues yet");
            td.colSpan = 9;
            tr.append(td);
            rows.push(tr);
        }
        $("queues-table").tBodies[0].replaceChildren(...rows);
        $("queues-count").textContent =
            list.length === 1 ? "1 queue" : `${fmtCount(list.length)} queues`;
    }
}
