// SPDX-License-Identifier: MIT
// The dashboard's charts, all drawn by uPlot: line charts of a time series
// per service, and a latency heatmap (time x latency bucket, colour =
// replies) drawn in a uPlot draw hook so it shares uPlot's axes, scales and
// resizing with the other charts.

import uPlot from "uplot";
import { fmtCount, fmtMicros } from "./format.js";

const HEIGHT = 240;
const MIN_SPAN = 60; // Seconds: a new page still gets a readable time axis.

// The x scale: the samples kept, but never less than MIN_SPAN seconds.
function timeRange(u, min, max) {
    if (min == null || max == null) {
        const now = Date.now() / 1000;
        return [now - MIN_SPAN, now];
    }
    return [Math.min(min, max - MIN_SPAN), max];
}

function chartWidth(el) {
    return Math.max(200, el.clientWidth);
}

// Keeps a chart as wide as its container.
function followWidth(el, getPlot) {
    const ro = new ResizeObserver(() => {
        const u = getPlot();
        if (u) {
            u.setSize({ width: chartWidth(el), height: HEIGHT });
        }
    });
    ro.observe(el);
}

// A line chart whose set of series can change (services come and go):
// setSeries() rebuilds the uPlot instance only when the list differs.
export class LineChart {
    // el: the container; opts: { yFormat, log, emptyText, yMax } (yMax:
    // a fixed top of the y axis, as 100 for percentages).
    constructor(el, opts) {
        this.el = el;
        this.opts = opts;
        this.key = "";
        this.plot = null;
        followWidth(el, () => this.plot);
    }

    // series: [{ label, color, dash }], data: [times, ...one array each].
    update(series, data) {
        const key = JSON.stringify(series);
        if (key !== this.key || !this.plot) {
            this.key = key;
            if (this.plot) {
                this.plot.destroy();
            }
            this.plot = new uPlot(this.options(series), data, this.el);
            this.showLatest();
            return;
        }
        this.plot.setData(data);
        this.showLatest();
    }

    // With the cursor away from the chart the legend shows the newest
    // values rather than dashes.
    showLatest() {
        const u = this.plot;
        if (u.cursor.left == null || u.cursor.left < 0) {
            u.setLegend({ idx: u.data[0].length - 1 });
        }
    }

    options(series) {
        const fmt = this.opts.yFormat;
        const y = { auto: true };
        if (this.opts.yMax) {
            y.range = () => [0, this.opts.yMax];
        } else if (this.opts.log) {
            y.distr = 3;
            y.log = 10;
        } else {
            // Rates start at zero so a drop to zero is visible as one.
            y.range = (u, min, max) => [0, max > 0 ? max * 1.1 : 1];
        }
        return {
            width: chartWidth(this.el),
            height: HEIGHT,
            scales: { x: { time: true, range: timeRange }, y },
            series: [
                {},
                ...series.map((s) => ({
                    label: s.label,
                    stroke: s.color,
                    width: 2,
                    dash: s.dash,
                    spanGaps: false,
                    points: { show: false },
                    value: (u, v) => (v == null ? "–" : fmt(v)),
                })),
            ],
            axes: [
                {},
                {
                    size: 64,
                    values: (u, splits) => splits.map((v) => fmt(v)),
                },
            ],
            legend: { live: true },
            cursor: { drag: { x: false, y: false } },
        };
    }
}

// Colour of a heatmap cell: from pale yellow (few) to dark blue (most),
// on a log scale so a few slow replies still show next to many fast ones.
const RAMP = [
    [255, 247, 188],
    [254, 196, 79],
    [236, 112, 20],
    [153, 52, 4],
    [37, 52, 148],
];

function rampColor(f) {
    f = Math.min(1, Math.max(0, f)) * (RAMP.length - 1);
    const i = Math.min(RAMP.length - 2, Math.floor(f));
    const t = f - i;
    const c = RAMP[i].map((a, k) => Math.round(a + (RAMP[i + 1][k] - a) * t));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
}

// The latency heatmap. Rows are the histogram's buckets: row j holds the
// replies with latency in (bounds[j-1], bounds[j]]; the last row is
// everything above the last bound.
export class HeatmapChart {
    constructor(el) {
        this.el = el;
        this.plot = null;
        this.bounds = null;
        this.times = [];
        this.columns = [];
        followWidth(el, () => this.plot);
    }

    // times: seconds; columns: one array of counts (or null) per time.
    update(bounds, times, columns) {
        this.times = times;
        this.columns = columns;
        const key = JSON.stringify(bounds);
        if (!this.plot || key !== JSON.stringify(this.bounds)) {
            this.bounds = bounds;
            if (this.plot) {
                this.plot.destroy();
            }
            this.plot = new uPlot(this.options(), this.data(), this.el);
            return;
        }
        this.plot.setData(this.data());
    }

    data() {
        // One invisible series so uPlot has something to scale x by.
        return [this.times, this.times.map(() => null)];
    }

    options() {
        const rows = this.bounds.length + 1;
        const bounds = this.bounds;
        const step = rows > 12 ? 2 : 1;
        const splits = [];
        for (let k = 1; k < rows; k += step) {
            splits.push(k);
        }
        return {
            width: chartWidth(this.el),
            height: HEIGHT,
            scales: {
                x: { time: true, range: timeRange },
                y: { auto: false, range: [0, rows] },
            },
            series: [
                {},
                {
                    label: "replies",
                    paths: () => null,
                    points: { show: false },
                },
            ],
            axes: [
                {},
                {
                    size: 64,
                    splits: () => splits,
                    values: (u, vals) =>
                        vals.map((k) => fmtMicros(bounds[k - 1])),
                },
            ],
            legend: { show: false },
            cursor: { drag: { x: false, y: false }, points: { show: false } },
            hooks: { draw: [(u) => this.draw(u)] },
        };
    }

    draw(u) {
        const { ctx } = u;
        const cols = this.columns;
        const times = this.times;
        let max = 0;
        for (const c of cols) {
            if (c) {
                for (const n of c) {
                    max = Math.max(max, n);
                }
            }
        }
        if (max <= 0) {
            return;
        }
        const logMax = Math.log1p(max);
        const { left, top, width, height } = u.bbox;
        ctx.save();
        ctx.beginPath();
        ctx.rect(left, top, width, height);
        ctx.clip();
        for (let i = 0; i < times.length; i++) {
            const c = cols[i];
            if (!c) {
                continue;
            }
            // A column spans from the previous sample to this one.
            const prev = i > 0 ? times[i - 1] : times[i] - 1;
            const x0 = Math.floor(u.valToPos(prev, "x", true));
            const x1 = Math.ceil(u.valToPos(times[i], "x", true));
            for (let j = 0; j < c.length; j++) {
                if (!(c[j] > 0)) {
                    continue;
                }
                const y0 = Math.round(u.valToPos(j + 1, "y", true));
                const y1 = Math.round(u.valToPos(j, "y", true));
                ctx.fillStyle = rampColor(Math.log1p(c[j]) / logMax);
                ctx.fillRect(x0, y0, Math.max(1, x1 - x0), y1 - y0);
            }
        }
        ctx.restore();
    }
}

export function fmtRate(v) {
    return `${fmtCount(v)}/s`;
}
