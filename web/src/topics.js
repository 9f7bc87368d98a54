// SPDX-License-Identifier: MIT
// The topics card: ferry.topic's subscriptions now, messages published
// and delivered per second (the change in the counters between two
// snapshots) and the messages dropped for slow subscribers since start,
// from the "servants": {"topic": {...}} object of /v1/stats.
import { LineChart, fmtRate } from "./charts.js";
import { fmtCount } from "./format.js";

const KEEP = 300;

function n(v) {
    return typeof v === "number" && Number.isFinite(v) ? v : null;
}

export class TopicsPanel {
    // ids: the elements of index.html's topics card.
    constructor($) {
        this.$ = $;
        this.chart = new LineChart($("topics-chart"), { yFormat: fmtRate });
        this.times = [];
        this.published = [];
        this.delivered = [];
        this.prev = null;
    }

    // One snapshot of /v1/stats (or the stream).
    add(snap) {
        const t = snap.servants && snap.servants.topic;
        if (!t) {
            return;
        }
        const now = Date.now() / 1000;
        let published = null;
        let delivered = null;
        if (this.prev && now > this.prev.at) {
            const dt = now - this.prev.at;
            const rate = (k) => Math.max(0, (n(t[k]) - n(this.prev.t[k])) / dt);
            published = rate("published");
            delivered = rate("delivered");
        }
        this.prev = { t, at: now };
        this.times.push(now);
        this.published.push(published);
        this.delivered.push(delivered);
        if (this.times.length > KEEP) {
            const drop = this.times.length - KEEP;
            for (const a of [this.times, this.published, this.delivered]) {
                a.splice(0, drop);
            }
        }
        this.render(t, published, delivered);
    }

    render(t, published, delivered) {
        const $ = this.$;
        const fact = (id, text, value) => {
            $(id).textContent = text;
            $(id).dataset.value = value == null ? "" : String(value);
        };
        $("topics-panel").hidden = false;
        const subs = n(t.subscriptions);
        fact("topics-subscriptions", subs == null ? "–" : fmtCount(subs), subs);
        fact("topics-published", published == null ? "–" : fmtRate(published),
            published);
        fact("topics-delivered", delivered == null ? "–" : fmtRate(delivered),
            delivered);
        const dropped = n(t.dropped);
        fact("topics-dropped", dropped == null ? "–" : fmtCount(dropped),
            dropped);
        this.chart.update(
            [
                { label: "published/s", color: "#2f6fdf" },
                { label: "delivered/s", color: "#2b8a3e", dash: [8, 4] },
            ],
            [this.times, this.published, this.delivered],
        );
    }
}
