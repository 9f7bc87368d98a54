// SPDX-License-Identifier: MIT
// The store panel: the durable store under ferry.kv (and later the
// queues): writes per second (committed batches between two snapshots),
// commits per second, commit latency (p50, p99 since start) and its size
// (pages in use, the map, store_max_bytes), from the
// "servants": {"store": {...}, "kv": {...}} object of /v1/stats.
import { LineChart, fmtRate } from "./charts.js";
import { fmtBytes, fmtCount } from "./format.js";

const KEEP = 300;

function n(v) {
    return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function us(v) {
    if (v == null) {
        return "–";
    }
    return v >= 1000 ? `${Math.round(v / 100) / 10} ms` : `${Math.round(v)} µs`;
}

export class StorePanel {
    constructor($) {
        this.$ = $;
        this.chart = new LineChart($("store-chart"), { yFormat: fmtRate });
        this.times = [];
        this.writes = [];
        this.commits = [];
        this.prev = null;
    }

    add(snap) {
        const s = snap.servants && snap.servants.store;
        if (!s) {
            return;
        }
        const now = Date.now() / 1000;
        let writes = null;
        let commits = null;
        if (this.prev && now > this.prev.at) {
            const dt = now - this.prev.at;
            const ok = (x) => n(x.batches) - n(x.batches_refused) - n(x.batches_failed);
            writes = (ok(s) - ok(this.prev.s)) / dt;
            commits = (n(s.commits) - n(this.prev.s.commits)) / dt;
        }
        this.prev = { s, at: now };
        this.times.push(now);
        this.writes.push(writes);
        this.commits.push(commits);
        if (this.times.length > KEEP) {
            const drop = this.times.length - KEEP;
            for (const a of [this.times, this.writes, this.commits]) {
                a.splice(0, drop);
            }
        }
        this.render(s, snap.servants.kv, writes);
    }

    render(s, kv, writes) {
        const $ = this.$;
        $("store-panel").hidden = false;
        $("store-size").textContent =
            `${fmtBytes(n(s.used_bytes))} used, map ${fmtBytes(n(s.map_bytes))} of ${fmtBytes(n(s.max_bytes))}`;
        $("store-size").dataset.used = String(n(s.used_bytes));
        $("store-writes").textContent = writes == null ? "–" : fmtRate(writes);
        const lat = s.commit_us || {};
        $("store-latency").textContent = `p50 ${us(n(lat.p50))}, p99 ${us(n(lat.p99))}`;
        $("store-latency").dataset.p99 = String(n(lat.p99));
        $("store-revision").textContent = kv ? fmtCount(n(kv.rev)) : "–";
        this.chart.update(
            [
                { label: "writes/s", color: "#2f6fdf" },
                { label: "commits/s", color: "#e8590c", dash: [8, 4] },
            ],
            [this.times, this.writes, this.commits],
        );
    }
}
