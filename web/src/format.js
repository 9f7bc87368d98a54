// SPDX-License-Identifier: MIT
// Number formatting for the dashboard: short, unit-aware, no locale
// surprises (the test reads some of these values back).

export function fmtDuration(s) {
    if (s == null || !isFinite(s)) {
        return "–";
    }
    s = Math.floor(s);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = s % 60;
    if (d > 0) {
        return `${d}d ${h}h ${m}m`;
    }
    if (h > 0) {
        return `${h}h ${m}m ${sec}s`;
    }
    if (m > 0) {
        return `${m}m ${sec}s`;
    }
    return `${sec}s`;
}

export function fmtBytes(n) {
    if (n == null || !isFinite(n)) {
        return "–";
    }
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
        n /= 1024;
        i++;
    }
    return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

// Microseconds as µs, ms or s with about three significant digits.
export function fmtMicros(us) {
    if (us == null || !isFinite(us)) {
        return "–";
    }
    if (us < 1000) {
        return `${Math.round(us)} µs`;
    }
    if (us < 1e6) {
        return `${trim(us / 1000)} ms`;
    }
    return `${trim(us / 1e6)} s`;
}

// A count or rate: 950, 12.3k, 4.5M.
export function fmtCount(n) {
    if (n == null || !isFinite(n)) {
        return "–";
    }
    const a = Math.abs(n);
    if (a >= 1e9) {
        return `${trim(n / 1e9)}G`;
    }
    if (a >= 1e6) {
        return `${trim(n / 1e6)}M`;
    }
    if (a >= 1e4) {
        return `${trim(n / 1e3)}k`;
    }
    if (a >= 100 || Number.isInteger(n)) {
        return String(Math.round(n));
    }
    return n.toFixed(1);
}

export function fmtSeconds(s) {
    if (s == null || !isFinite(s)) {
        return "–";
    }
    return `${s.toFixed(1)} s`;
}

function trim(x) {
    const a = Math.abs(x);
    const digits = a >= 100 ? 0 : a >= 10 ? 1 : 2;
    return String(parseFloat(x.toFixed(digits)));
}
