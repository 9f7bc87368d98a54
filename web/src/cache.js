// SPDX-License-Identifier: MIT
// The cache panel: ferry.cache's hit ratio each second (from the change
// in hits and misses between two snapshots, so it shows what the cache
// does now, not since start) and its memory against the cap, from the
// "servants": {"cache": {...}} object of /v1/stats.
import { LineChart } from "./charts.js";
import { fmtBytes, fmtCount } from "./format.js";

const KEEP = 300;

function pct(v) {
    return v == null ? "–" : `${Math.round(v * 10) / 10}%`;
}

function n(v) {
    return typeof v === "number" && Number.isFinite(v) ? v : null;
}

export class CachePanel {
    // ids: the elements of index.html's cache card.
    constructor($) {
        this.$ = $;
        this.chart = new LineChart($("cache-chart"), {
            yFormat: pct,
            yMax: 100,
        });
        this.times = [];
        this.ratio = [];
        this.memory = [];
        this.prev = null;
    }

    // One snapshot of /v1/stats (or the stream).
    add(snap) {
        const c = snap.servants && snap.servants.cache;
        if (!c) {
            return;
        }
        let ratio = null;
        if (this.prev) {
            const dh = n(c.hits) - n(this.prev.hits);
            const dm = n(c.misses) - n(this.prev.misses);
            if (dh + dm > 0) {
                ratio = (100 * dh) / (dh + dm);
            }
        }
        this.prev = c;
        this.times.push(Date.now() / 1000);
        this.ratio.push(ratio);
        const cap = n(c.max_bytes);
        this.memory.push(cap ? (100 * n(c.bytes)) / cap : null);
        if (this.times.length > KEEP) {
            const drop = this.times.length - KEEP;
            for (const a of [this.times, this.ratio, this.memory]) {
                a.splice(0, drop);
            }
        }
        this.render(c, ratio);
    }

    render(c, ratio) {
        const $ = this.$;
        $("cache-panel").hidden = false;
        const total = n(c.hit_ratio);
        $("cache-hit-ratio").textContent =
            `${pct(ratio)} now / ${pct(total == null ? null : total * 100)} all`;
        $("cache-hit-ratio").dataset.total = total == null ? "" : String(total);
        $("cache-memory").textContent =
            `${fmtBytes(n(c.bytes))} of ${fmtBytes(n(c.max_bytes))}`;
        $("cache-memory").dataset.bytes = String(n(c.bytes));
        $("cache-items").textContent = fmtCount(n(c.items));
        $("cache-evictions").textContent =
            `${fmtCount(n(c.evictions))} / ${fmtCount(n(c.expirations))}`;
        this.chart.update(
            [
                { label: "hit ratio", color: "#2b8a3e" },
                { label: "memory of cap", color: "#2f6fdf", dash: [8, 4] },
            ],
            [this.times, this.ratio, this.memory],
        );
    }
}
