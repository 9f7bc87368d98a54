// SPDX-License-Identifier: MIT
// Opens ferry's dashboard in Debian's chromium (driven by playwright-core,
// never a downloaded browser), waits until it shows live data and prints
// one JSON line with what it saw. Started by test_dashboard.py, which
// owns ferryd, the workers and the load; this script owns only the browser.
//
//   node dashboard_check.js URL SCREENSHOT SERVICE[,SERVICE...] [TIMEOUT_MS]
//
// Exit status: 0 when the page showed throughput > 0 and every service in
// its table, 1 otherwise (the JSON line then says why).
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");

const ROOT = path.resolve(__dirname, "..", "..");
// playwright-core is a devDependency of web/ (one npm ci for both).
const { chromium } = require(
    require.resolve("playwright-core", { paths: [path.join(ROOT, "web")] }),
);

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
// Without the networking flags chromium keeps trying to reach outside
// hosts, which are unreachable on the test machines.
const FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

async function main() {
    const [url, shot, services, timeoutArg] = process.argv.slice(2);
    if (!url || !shot || !services) {
        console.error(
            "usage: node dashboard_check.js URL SCREENSHOT SERVICES [TIMEOUT_MS]",
        );
        return 2;
    }
    const want = services.split(",").filter(Boolean);
    const timeout = Number(timeoutArg || 30000);
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-chromium-"));
    const result = { ok: false, url, screenshot: shot, errors: [] };
    let ctx = null;
    let closing = false;
    try {
        ctx = await chromium.launchPersistentContext(profile, {
            executablePath: CHROMIUM,
            headless: true,
            args: FLAGS,
            viewport: { width: 1400, height: 1000 },
            timeout: 30000,
        });
        const page = ctx.pages()[0] || (await ctx.newPage());
        // Each distinct problem once: a missing endpoint fails every second.
        const note = (msg) => {
            if (!result.errors.includes(msg)) {
                result.errors.push(msg);
            }
        };
        page.on("pageerror", (e) => note(`pageerror: ${e}`));
        page.on("console", (m) => {
            // Failed loads are reported with their URL just below.
            if (m.type() === "error" && !/^Failed to load/.test(m.text())) {
                note(`console: ${m.text()}`);
            }
        });
        page.on("response", (r) => {
            if (r.status() >= 400) {
                note(`HTTP ${r.status()} for ${new URL(r.url()).pathname}`);
            }
        });
        page.on("requestfailed", (r) => {
            const path = new URL(r.url()).pathname;
            // The stream is cut when the browser closes: not a failure.
            if (!(path === "/v1/stats/stream" && closing)) {
                note(`request failed: ${path}: ${r.failure()?.errorText}`);
            }
        });
        const resp = await page.goto(url, { timeout });
        result.status = resp ? resp.status() : null;

        // Live data: throughput above zero and every wanted service listed.
        try {
            await page.waitForFunction(
                (names) => {
                    const rps = Number(
                        document.querySelector("#throughput-chart")?.dataset
                            .lastRps,
                    );
                    const rows = [
                        ...document.querySelectorAll(
                            "#services-table tr[data-service]",
                        ),
                    ].map((r) => r.dataset.service);
                    return rps > 0 && names.every((n) => rows.includes(n));
                },
                want,
                { timeout, polling: 250 },
            );
        } catch (e) {
            result.errors.push(`waiting for live data: ${e.message}`);
        }
        // Two more snapshots so the line charts have a visible stretch.
        await page.waitForTimeout(2500);

        Object.assign(
            result,
            await page.evaluate(() => {
                const text = (id) =>
                    document.getElementById(id)?.textContent.trim();
                return {
                    last_rps: Number(
                        document.querySelector("#throughput-chart").dataset
                            .lastRps,
                    ),
                    services: [
                        ...document.querySelectorAll(
                            "#services-table tr[data-service]",
                        ),
                    ].map((r) => r.dataset.service),
                    // Each service's state tag, as the table shows it.
                    states: Object.fromEntries(
                        [
                            ...document.querySelectorAll(
                                "#services-table tr[data-service]",
                            ),
                        ].map((r) => [
                            r.dataset.service,
                            r.querySelector(".tag")?.textContent.trim(),
                        ]),
                    ),
                    workers: document.querySelectorAll(
                        "#services-table tr[data-worker]",
                    ).length,
                    uptime: text("uptime"),
                    rss: text("rss"),
                    stream: text("stream-state"),
                    // The ferry.cache panel: shown once /v1/stats has it.
                    cache_shown: !document.getElementById("cache-panel")
                        ?.hidden,
                    cache_memory: text("cache-memory"),
                    cache_chart: !!document.querySelector(
                        "#cache-chart .uplot canvas",
                    ),
                    // The store panel: shown once /v1/stats has it.
                    store_shown: !document.getElementById("store-panel")
                        ?.hidden,
                    store_size: text("store-size"),
                    store_chart: !!document.querySelector(
                        "#store-chart .uplot canvas",
                    ),
                    // The topics card: shown once /v1/stats has
                    // ferry.topic; each figure's value as a number.
                    topics_shown: !document.getElementById("topics-panel")
                        ?.hidden,
                    topics: Object.fromEntries(
                        ["subscriptions", "published", "delivered", "dropped"]
                            .map((k) => [
                                k,
                                document.getElementById(`topics-${k}`)
                                    ?.dataset.value,
                            ])
                            .map(([k, v]) => [k, v ? Number(v) : null]),
                    ),
                    topics_published: text("topics-published"),
                    topics_chart: !!document.querySelector(
                        "#topics-chart .uplot canvas",
                    ),
                    // The queues table: shown once /v1/stats has
                    // ferry.queue; per queue its ready count and state.
                    queues_shown: !document.getElementById("queues-panel")
                        ?.hidden,
                    queues: Object.fromEntries(
                        [
                            ...document.querySelectorAll(
                                "#queues-table tr[data-queue]",
                            ),
                        ].map((r) => [
                            r.dataset.queue,
                            {
                                ready: Number(
                                    r.querySelector("td[data-ready]")?.dataset
                                        .ready,
                                ),
                                dead: Number(
                                    r.querySelector("td[data-dead]")?.dataset
                                        .dead,
                                ),
                                state: r
                                    .querySelector(".tag")
                                    ?.textContent.trim(),
                            },
                        ]),
                    ),
                    // The cluster panel, from /v1/cluster: on a single
                    // node "single node" and no member table.
                    cluster_shown: !document.getElementById("cluster-panel")
                        ?.hidden,
                    cluster_enabled: document.getElementById("cluster-panel")
                        ?.dataset.enabled,
                    cluster_state: text("cluster-state"),
                    cluster_table_shown: !document.getElementById(
                        "cluster-table",
                    )?.hidden,
                    charts: [
                        "throughput-chart",
                        "errors-chart",
                        "latency-chart",
                        "heatmap-chart",
                    ].filter((id) =>
                        document.querySelector(`#${id} .uplot canvas`),
                    ),
                };
            }),
        );
        fs.mkdirSync(path.dirname(shot), { recursive: true });
        await page.screenshot({ path: shot, fullPage: true });
        closing = true;
        result.ok =
            result.last_rps > 0 &&
            want.every((n) => result.services.includes(n)) &&
            result.errors.length === 0;
    } catch (e) {
        result.errors.push(String(e && e.stack ? e.stack : e));
    } finally {
        if (ctx) {
            await ctx.close().catch(() => {});
        }
        fs.rmSync(profile, { recursive: true, force: true });
    }
    console.log(JSON.stringify(result));
    return result.ok ? 0 : 1;
}

main().then(
    (rc) => process.exit(rc),
    (e) => {
        console.error(e);
        process.exit(1);
    },
);
