// SPDX-License-Identifier: MIT
// ferry's live dashboard. Keeps the last few minutes of the snapshots that
// ferryd streams on /v1/stats/stream (one a second) and redraws the charts,
// the cache, store and topics cards and the queues table from them; polls
// /v1/services every second for the services table.
// If the stream is silent (proxy, reconnect), /v1/stats is polled instead.
// With ferryd's admin_token set, open the page as /#token=TOKEN: every
// request then carries it (see takeToken).

import "uplot/dist/uPlot.min.css";
import "../style.css";
import { CachePanel } from "./cache.js";
import { CLUSTER_EVERY_MS, ClusterPanel } from "./cluster.js";
import { HeatmapChart, LineChart, fmtRate } from "./charts.js";
import { QueuesPanel } from "./queues.js";
import { StorePanel } from "./store.js";
import { TopicsPanel } from "./topics.js";
import {
    fmtBytes,
    fmtCount,
    fmtDuration,
    fmtMicros,
    fmtSeconds,
} from "./format.js";

const KEEP = 300; // Samples kept: five minutes at one a second.
const PALETTE = [
    "#2f6fdf",
    "#d9480f",
    "#2b8a3e",
    "#9c36b5",
    "#0b7285",
    "#e8590c",
    "#5c940d",
    "#c2255c",
];

const $ = (id) => document.getElementById(id);

// The admin token, when ferryd wants one: given once in the page's
// fragment (#token=...), which a browser never sends to a server, then
// kept for this tab only and taken out of the address bar.
function takeToken() {
    const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (m) {
        sessionStorage.setItem("ferry-token", decodeURIComponent(m[1]));
        history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem("ferry-token");
}

const token = takeToken();
const authHeaders = () => (token ? { Authorization: `Bearer ${token}` } : {});
const NEEDS_TOKEN = "admin token needed: open /#token=TOKEN";

// The history: one time axis, and per service one value per time (null
// where the service did not exist yet).
const hist = {
    times: [],
    services: new Map(), // name -> per-service history, see serviceHist()
    latest: null, // the last snapshot
    lastAt: 0, // Date.now() of the last snapshot
};

const colors = new Map();

function colorOf(name) {
    if (!colors.has(name)) {
        colors.set(name, PALETTE[colors.size % PALETTE.length]);
    }
    return colors.get(name);
}

function serviceHist(name) {
    let s = hist.services.get(name);
    if (!s) {
        const pad = () => hist.times.map(() => null);
        s = {
            rps: pad(),
            eps: pad(),
            p50: pad(),
            p99: pad(),
            p999: pad(),
            heat: pad(), // per time: replies in each bucket in that second
            bounds: null,
        };
        hist.services.set(name, s);
    }
    return s;
}

function num(v) {
    return typeof v === "number" && isFinite(v) ? v : null;
}

function positive(v) {
    v = num(v);
    return v != null && v > 0 ? v : null;
}

function addSnapshot(snap) {
    charts.cache.add(snap);
    charts.store.add(snap);
    charts.queues.add(snap);
    charts.topics.add(snap);
    hist.latest = snap;
    hist.lastAt = Date.now();
    hist.times.push(Date.now() / 1000);
    const seen = new Set();
    for (const svc of snap.services || []) {
        seen.add(svc.name);
        const s = serviceHist(svc.name);
        const lat = (svc.latency_us && svc.latency_us.window_60s) || {};
        s.rps.push(num(svc.rps));
        s.eps.push(num(svc.errors_per_s));
        s.p50.push(positive(lat.p50));
        s.p99.push(positive(lat.p99));
        s.p999.push(positive(lat.p999));
        // The heatmap's counts are the replies of the last whole second.
        const hm = svc.heatmap;
        if (hm && Array.isArray(hm.counts) && Array.isArray(hm.bounds_us)) {
            s.bounds = hm.bounds_us;
            s.heat.push(hm.counts.slice());
        } else {
            s.heat.push(null);
        }
    }
    for (const [name, s] of hist.services) {
        if (!seen.has(name)) {
            for (const k of ["rps", "eps", "p50", "p99", "p999", "heat"]) {
                s[k].push(null);
            }
        }
    }
    if (hist.times.length > KEEP) {
        const drop = hist.times.length - KEEP;
        hist.times.splice(0, drop);
        for (const s of hist.services.values()) {
            for (const k of ["rps", "eps", "p50", "p99", "p999", "heat"]) {
                s[k].splice(0, drop);
            }
        }
    }
    render();
}

// --------------------------------------------------------------- charts

const charts = {};

function initCharts() {
    charts.throughput = new LineChart($("throughput-chart"), {
        yFormat: fmtRate,
    });
    charts.errors = new LineChart($("errors-chart"), { yFormat: fmtRate });
    charts.latency = new LineChart($("latency-chart"), {
        yFormat: fmtMicros,
        log: true,
    });
    charts.heatmap = new HeatmapChart($("heatmap-chart"));
    charts.cache = new CachePanel($);
    charts.store = new StorePanel($);
    charts.queues = new QueuesPanel($);
    charts.topics = new TopicsPanel($);
    $("service-select").addEventListener("change", () => render());
}

// The service the latency charts show: the one picked, else the busiest.
function selectedService() {
    const sel = $("service-select");
    const names = [...hist.services.keys()].sort();
    const current = [...sel.options].map((o) => o.value);
    if (current.join("\n") !== names.join("\n")) {
        const keep = sel.value;
        sel.replaceChildren(
            ...names.map((n) => {
                const o = document.createElement("option");
                o.value = n;
                o.textContent = n;
                return o;
            }),
        );
        if (names.includes(keep)) {
            sel.value = keep;
        } else if (names.length) {
            sel.value = busiest(names);
        }
    }
    return sel.value || null;
}

function busiest(names) {
    let best = names[0];
    let bestRps = -1;
    for (const n of names) {
        const r = hist.services.get(n).rps;
        const v = r[r.length - 1] || 0;
        if (v > bestRps) {
            best = n;
            bestRps = v;
        }
    }
    return best;
}

function renderCharts() {
    const names = [...hist.services.keys()].sort();
    const perService = (field) => [
        hist.times,
        ...names.map((n) => hist.services.get(n)[field]),
    ];
    const lines = names.map((n) => ({ label: n, color: colorOf(n) }));
    charts.throughput.update(lines, perService("rps"));
    charts.errors.update(lines, perService("eps"));

    const sel = selectedService();
    $("heatmap-service").textContent = sel || "–";
    if (!sel) {
        return;
    }
    const s = hist.services.get(sel);
    const c = colorOf(sel);
    charts.latency.update(
        [
            { label: "p50", color: c },
            { label: "p99", color: c, dash: [8, 4] },
            { label: "p99.9", color: c, dash: [2, 3] },
        ],
        [hist.times, s.p50, s.p99, s.p999],
    );
    if (s.bounds) {
        charts.heatmap.update(s.bounds, hist.times, s.heat);
    }
}

// ---------------------------------------------------------------- facts

function renderFacts() {
    const snap = hist.latest;
    $("uptime").textContent = fmtDuration(num(snap.uptime_s));
    $("rss").textContent = fmtBytes(num(snap.rss_bytes));
    $("cpu").textContent =
        `${fmtSeconds(num(snap.cpu_user_s))} / ${fmtSeconds(num(snap.cpu_sys_s))}`;
    const conns = snap.connections || {};
    $("connections").textContent =
        `${fmtCount(num(conns.callers))} / ${fmtCount(num(conns.workers))}`;
    $("requests").textContent = fmtCount(num(snap.requests));
    let total = 0;
    for (const svc of snap.services || []) {
        total += num(svc.rps) || 0;
    }
    const rounded = String(Math.round(total * 10) / 10);
    $("total-rps").textContent = fmtCount(total);
    $("total-rps").dataset.lastRps = rounded;
    $("throughput-chart").dataset.lastRps = rounded;
    $("updated").textContent =
        `last update ${new Date(hist.lastAt).toLocaleTimeString()}`;
}

// --------------------------------------------------------------- table

let servicesDoc = null; // the last /v1/services answer, or null
let servicesErr = null; // why it could not be read

function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
        if (k === "class") {
            e.className = v;
        } else if (k.startsWith("data-")) {
            e.setAttribute(k, v);
        } else {
            e[k] = v;
        }
    }
    for (const c of children) {
        e.append(c instanceof Node ? c : String(c ?? "–"));
    }
    return e;
}

function tag(text, kind) {
    return el("span", { class: `tag tag-${kind}` }, text);
}

function numCell(v, fmt = fmtCount) {
    return el("td", { class: "num" }, v == null ? "–" : fmt(v));
}

function serviceState(svc, stats) {
    const workers = Array.isArray(svc.workers)
        ? svc.workers.length
        : num(svc.workers);
    if (svc.disabled) {
        return tag("disabled", "bad");
    }
    if (svc.circuit === "open" || svc.circuit === "half_open") {
        return tag(`circuit ${svc.circuit.replace("_", " ")}`, "bad");
    }
    if (svc.builtin) {
        return tag("built-in", "info");
    }
    if (workers > 0) {
        return tag("serving", "ok");
    }
    const queued = num(svc.queued) || (stats && num(stats.queued)) || 0;
    return queued > 0 ? tag("no workers", "bad") : tag("no workers", "warn");
}

function workerState(w) {
    if (w.draining) {
        return tag("draining", "warn");
    }
    if (w.ejected) {
        return tag("ejected", "bad");
    }
    if (w.probing) {
        return tag("probing", "warn");
    }
    if (num(w.last_seen_ms) != null && w.last_seen_ms > 30000) {
        return tag("silent", "bad");
    }
    return tag("ready", "ok");
}

function renderTable() {
    const body = $("services-table").tBodies[0];
    const stats = new Map();
    for (const svc of (hist.latest && hist.latest.services) || []) {
        stats.set(svc.name, svc);
    }
    // Services from /v1/services, plus any only the stats know about.
    const list = servicesDoc ? [...(servicesDoc.services || [])] : [];
    const listed = new Set(list.map((s) => s.name));
    for (const [name, st] of stats) {
        if (!listed.has(name)) {
            list.push({ name, workers: st.workers, queued: st.queued });
        }
    }
    list.sort((a, b) => String(a.name).localeCompare(String(b.name)));

    const rows = [];
    for (const svc of list) {
        const st = stats.get(svc.name);
        // Percentiles of a service with no replies yet mean nothing.
        const lat =
            (st && num(st.replies) !== 0 && st.latency_us &&
                st.latency_us.window_60s) ||
            {};
        const workers = Array.isArray(svc.workers) ? svc.workers : [];
        const nworkers = Array.isArray(svc.workers)
            ? workers.length
            : num(svc.workers);
        rows.push(
            el(
                "tr",
                { class: "service", "data-service": svc.name },
                el(
                    "td",
                    {},
                    el("span", {
                        class: "swatch",
                        style: `background:${colorOf(svc.name)}`,
                    }),
                    svc.name,
                ),
                el("td", {}, serviceState(svc, st)),
                numCell(nworkers),
                numCell(num(svc.credit)),
                numCell(num(svc.in_flight ?? (st && st.in_flight))),
                numCell(num(svc.queued ?? (st && st.queued))),
                numCell(st ? num(st.rps) : null),
                numCell(st ? num(st.errors_total) : null),
                numCell(num(lat.p50), fmtMicros),
                numCell(num(lat.p99), fmtMicros),
                el("td", {}, ""),
                el("td", {}, ""),
            ),
        );
        // Another node's workers of it (a cluster: /v1/services' "nodes").
        for (const nd of Array.isArray(svc.nodes) ? svc.nodes : []) {
            rows.push(
                el(
                    "tr",
                    { class: "node", "data-node": String(nd.node) },
                    el("td", {}, `node ${nd.node}`),
                    el("td", {}, tag("remote", "info")),
                    numCell(num(nd.workers)),
                    numCell(num(nd.credit)),
                    ...Array.from({ length: 8 }, () => el("td", {}, "")),
                ),
            );
        }
        for (const w of workers) {
            rows.push(
                el(
                    "tr",
                    { class: "worker", "data-worker": String(w.id) },
                    el("td", {}, `#${w.id} ${w.name || ""}`),
                    el("td", {}, workerState(w)),
                    el("td", {}, ""),
                    numCell(num(w.credit)),
                    numCell(num(w.in_flight)),
                    el("td", {}, ""),
                    el("td", {}, ""),
                    el("td", {}, ""),
                    el("td", {}, ""),
                    el("td", {}, ""),
                    el("td", {}, w.addr || "–"),
                    numCell(num(w.last_seen_ms), (v) => `${fmtCount(v)} ms`),
                ),
            );
        }
    }
    if (rows.length === 0) {
        const why = servicesErr ? ` (${servicesErr})` : "";
        rows.push(
            el(
                "tr",
                { class: "empty" },
                el("td", { colSpan: 12 }, `no services yet${why}`),
            ),
        );
    }
    body.replaceChildren(...rows);
}

// ------------------------------------------------------------- wiring

function render() {
    if (hist.latest) {
        renderFacts();
        renderCharts();
    }
    renderTable();
}

function setState(text, kind) {
    const s = $("stream-state");
    s.textContent = text;
    s.className = `state state-${kind}`;
}

// Server-Sent Events read with fetch, which (unlike EventSource) can send
// the Authorization header: "data: {...}" lines, a blank line after each
// event. Returns when the stream ends; throws on a failed request.
async function readStream() {
    const r = await fetch("/v1/stats/stream", {
        headers: authHeaders(),
        cache: "no-store",
    });
    if (!r.ok || !r.body) {
        const e = new Error(`/v1/stats/stream: HTTP ${r.status}`);
        e.status = r.status;
        throw e;
    }
    setState("live", "live");
    const reader = r.body.getReader();
    const text = new TextDecoder();
    let buf = "";
    for (;;) {
        const { value, done } = await reader.read();
        if (done) {
            return;
        }
        buf += text.decode(value, { stream: true });
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
            const data = buf
                .slice(0, end)
                .split("\n")
                .filter((l) => l.startsWith("data:"))
                .map((l) => l.slice(5).trimStart())
                .join("\n");
            buf = buf.slice(end + 2);
            try {
                addSnapshot(JSON.parse(data));
                setState("live", "live");
            } catch (e) {
                // Not a snapshot (a comment, a keep-alive): skip it.
            }
        }
    }
}

// Reads the stream for as long as the page is open, reconnecting after a
// pause when it ends or fails.
async function startStream() {
    if (typeof ReadableStream === "undefined") {
        return; // tick() polls /v1/stats instead
    }
    for (;;) {
        let wait = 1000;
        try {
            await readStream();
            setState("reconnecting", "down");
        } catch (e) {
            if (e.status === 401) {
                setState(NEEDS_TOKEN, "down");
                wait = 5000;
            } else {
                setState("reconnecting", "down");
            }
        }
        await new Promise((done) => setTimeout(done, wait));
    }
}

async function getJSON(path) {
    const r = await fetch(path, { cache: "no-store", headers: authHeaders() });
    if (!r.ok) {
        const e = new Error(`${path}: HTTP ${r.status}`);
        e.status = r.status;
        throw e;
    }
    return r.json();
}

let polling = false;
const cluster = new ClusterPanel($, { el, tag, numCell });
let clusterAt = 0; // Date.now() of the last /v1/cluster read

// Every CLUSTER_EVERY_MS: the cluster panel from /v1/cluster.
async function pollCluster() {
    if (Date.now() - clusterAt < CLUSTER_EVERY_MS) {
        return;
    }
    clusterAt = Date.now();
    try {
        cluster.render(await getJSON("/v1/cluster"));
    } catch (e) {
        cluster.render(null, e.message);
    }
}

// Once a second: refresh the services table, and read /v1/stats when the
// stream has been silent for a while.
async function tick() {
    if (polling) {
        return;
    }
    polling = true;
    try {
        try {
            servicesDoc = await getJSON("/v1/services");
            servicesErr = null;
        } catch (e) {
            servicesErr = e.message;
        }
        if (Date.now() - hist.lastAt > 3000) {
            try {
                addSnapshot(await getJSON("/v1/stats"));
            } catch (e) {
                setState(e.status === 401 ? NEEDS_TOKEN : "no data", "down");
            }
        } else {
            renderTable();
        }
        await pollCluster();
    } finally {
        polling = false;
    }
}

initCharts();
startStream();
tick();
setInterval(tick, 1000);
