# SPDX-License-Identifier: MIT
"""promparse - a strict parser of the Prometheus text exposition format,
version 0.0.4 (stdlib only), for checking what ferryd serves on /metrics.

    m = promparse.parse(text)          # raises PromError on anything wrong
    m.value("ferry_requests_total", service="echo")
    m.families["ferry_requests_total"].type        # "counter"

Stricter than Prometheus itself where the format leaves room, because a
scrape that only happens to work is a bug waiting:

* lines end with "\\n", the last one too; no "\\r";
* "# HELP name text" (escapes \\\\ and \\n only) and "# TYPE name type"
  (counter, gauge, histogram, summary, untyped), at most one of each per
  family, TYPE before the family's first sample; other "#" lines are
  comments;
* sample: name [{label="value",...}] value [timestamp]; names match
  [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* and do not
  start with "__"; label values escape only \\\\, \\" and \\n; no label twice;
  values are decimal floats or NaN, +Inf, -Inf (no hex, no "inf");
  timestamps are integers;
* every sample belongs to a family declared with TYPE, and a family's
  lines are one group (no coming back to a family after another);
* no two samples with the same name and labels;
* counters are not negative and not NaN;
* histograms: per label set (without "le"), "_bucket" samples with "le"
  strictly ascending, cumulative counts non-decreasing, a "+Inf" bucket
  equal to "_count", and a "_sum"; "le" only on "_bucket";
* summaries: "quantile" in [0, 1] on the bare name only, "_sum" and
  "_count" per label set.
"""
import math
import re

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
FLOAT_RE = re.compile(
    r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
SPECIAL = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf}


class PromError(ValueError):
    """A violation of the format; .line is the 1-based line number."""

    def __init__(self, line, msg):
        super().__init__(f"line {line}: {msg}" if line else msg)
        self.line = line


class Sample:
    __slots__ = ("name", "labels", "value", "timestamp", "line")

    def __init__(self, name, labels, value, timestamp, line):
        self.name, self.labels, self.value = name, labels, value
        self.timestamp, self.line = timestamp, line

    def __repr__(self):
        return f"Sample({self.name}, {self.labels}, {self.value})"


class Family:
    def __init__(self, name, line):
        self.name = name
        self.type = None
        self.help = None
        self.samples = []
        self.line = line


class Metrics:
    """The parsed exposition: families by name, in order."""

    def __init__(self):
        self.families = {}

    def samples(self, name=None):
        out = []
        for fam in self.families.values():
            out += [s for s in fam.samples if name is None or s.name == name]
        return out

    def find(self, name, **labels):
        """Samples named name whose labels include labels."""
        return [s for s in self.samples(name)
                if all(s.labels.get(k) == v for k, v in labels.items())]

    def value(self, name, **labels):
        """The value of the one sample named name with exactly labels;
        KeyError when there is none."""
        for s in self.samples(name):
            if s.labels == labels:
                return s.value
        raise KeyError(f"no sample {name}{labels}")


def parse_float(text, line=0):
    if text in SPECIAL:
        return SPECIAL[text]
    if not FLOAT_RE.match(text):
        raise PromError(line, f"bad number {text!r}")
    return float(text)


def _unescape(s, allowed, line):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s) or s[i + 1] not in allowed:
                raise PromError(line, f"bad escape in {s!r}")
            out.append("\n" if s[i + 1] == "n" else s[i + 1])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _parse_labels(text, i, line):
    """Parses '{...}' starting at text[i] == '{'; returns (dict, index
    after '}')."""
    labels = {}
    i += 1
    n = len(text)

    def skip_ws(j):
        while j < n and text[j] in " \t":
            j += 1
        return j

    i = skip_ws(i)
    if i < n and text[i] == "}":
        return labels, i + 1
    while True:
        m = LABEL_RE.match(text, i)
        if not m:
            raise PromError(line, f"bad label name at {text[i:i + 20]!r}")
        lname = m.group(0)
        if lname.startswith("__"):
            raise PromError(line, f"reserved label name {lname!r}")
        if lname in labels:
            raise PromError(line, f"label {lname!r} twice")
        i = skip_ws(m.end())
        if i >= n or text[i] != "=":
            raise PromError(line, f"'=' expected after label {lname!r}")
        i = skip_ws(i + 1)
        if i >= n or text[i] != '"':
            raise PromError(line, f"'\"' expected for label {lname!r}")
        j = i + 1
        while j < n and text[j] != '"':
            j += 2 if text[j] == "\\" else 1
        if j >= n:
            raise PromError(line, f"unterminated value of label {lname!r}")
        labels[lname] = _unescape(text[i + 1:j], '\\"n', line)
        i = skip_ws(j + 1)
        if i < n and text[i] == ",":
            i = skip_ws(i + 1)
            if i < n and text[i] == "}":
                return labels, i + 1
            continue
        if i < n and text[i] == "}":
            return labels, i + 1
        raise PromError(line, "',' or '}' expected in labels")


def _family_of(name, families):
    """(family name, suffix) a sample name belongs to, or (None, None)."""
    fam = families.get(name)
    if fam is not None and fam.type in ("counter", "gauge", "untyped",
                                        "summary"):
        return name, ""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            base = families.get(name[:-len(suffix)])
            if base is None:
                continue
            if base.type == "histogram" or \
                    (base.type == "summary" and suffix != "_bucket"):
                return base.name, suffix
    return None, None


def parse(text):
    """Parses an exposition (str or bytes); returns Metrics or raises
    PromError."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise PromError(0, f"not UTF-8: {e}") from None
    if "\r" in text:
        raise PromError(0, "carriage return in the exposition")
    if text and not text.endswith("\n"):
        raise PromError(0, "the last line does not end with a line feed")
    m = Metrics()
    fams = m.families
    done = set()          # families whose group has ended
    current = None        # family whose lines we are in
    seen = set()          # (name, sorted labels)

    def enter(name, lineno):
        nonlocal current
        if current is not None and current != name:
            done.add(current)
        if name in done:
            raise PromError(lineno, f"lines of family {name!r} are not "
                            "one group")
        current = name

    for lineno, raw in enumerate(text.split("\n")[:-1], 1):
        if raw.strip(" \t") == "":
            continue
        if raw.startswith("#"):
            parts = raw[1:].lstrip(" \t")
            toks = re.split(r"[ \t]+", parts, maxsplit=2)
            if toks[0] not in ("HELP", "TYPE"):
                continue                     # a comment
            if len(toks) < 2 or not NAME_RE.fullmatch(toks[1]):
                raise PromError(lineno, f"bad metric name in {raw!r}")
            name = toks[1]
            enter(name, lineno)
            fam = fams.get(name)
            if fam is None:
                fam = fams[name] = Family(name, lineno)
            if toks[0] == "HELP":
                if fam.help is not None:
                    raise PromError(lineno, f"second HELP for {name!r}")
                fam.help = _unescape(toks[2] if len(toks) > 2 else "",
                                     "\\n", lineno)
            else:
                if fam.type is not None:
                    raise PromError(lineno, f"second TYPE for {name!r}")
                if fam.samples:
                    raise PromError(lineno, f"TYPE after samples of "
                                    f"{name!r}")
                if len(toks) != 3 or toks[2] not in TYPES:
                    raise PromError(lineno, f"bad TYPE line {raw!r}")
                fam.type = toks[2]
            continue
        # A sample.
        nm = NAME_RE.match(raw)
        if not nm:
            raise PromError(lineno, f"bad sample line {raw!r}")
        name = nm.group(0)
        i = nm.end()
        labels = {}
        if i < len(raw) and raw[i] == "{":
            labels, i = _parse_labels(raw, i, lineno)
        rest = raw[i:]
        if not rest or rest[0] not in " \t":
            raise PromError(lineno, f"blank expected before the value in "
                            f"{raw!r}")
        toks = rest.strip(" \t").split()
        if any(c not in " \t" for c in rest if c.isspace()):
            raise PromError(lineno, "only blanks and tabs separate tokens")
        if len(toks) not in (1, 2):
            raise PromError(lineno, f"value [timestamp] expected in {raw!r}")
        value = parse_float(toks[0], lineno)
        ts = None
        if len(toks) == 2:
            if not re.fullmatch(r"-?[0-9]+", toks[1]):
                raise PromError(lineno, f"bad timestamp {toks[1]!r}")
            ts = int(toks[1])
        fname, suffix = _family_of(name, fams)
        if fname is None or fams[fname].type is None:
            raise PromError(lineno, f"sample {name!r} belongs to no family "
                            "declared with TYPE")
        fam = fams[fname]
        enter(fname, lineno)
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise PromError(lineno, f"sample {name}{labels} twice")
        seen.add(key)
        if fam.type == "counter" and (math.isnan(value) or value < 0):
            raise PromError(lineno, f"counter {name} is {toks[0]}")
        if fam.type == "histogram":
            if (suffix == "_bucket") != ("le" in labels):
                raise PromError(lineno, f"'le' belongs on {fname}_bucket "
                                f"only ({name}{labels})")
            if suffix in ("_bucket", "_count") and \
                    (math.isnan(value) or value < 0):
                raise PromError(lineno, f"{name} is {toks[0]}")
        if fam.type == "summary":
            if (suffix == "") != ("quantile" in labels):
                raise PromError(lineno, f"'quantile' belongs on {fname} "
                                f"only ({name}{labels})")
            if suffix == "":
                q = parse_float(labels["quantile"], lineno)
                if not 0 <= q <= 1:
                    raise PromError(lineno, f"quantile {q} outside [0, 1]")
            if suffix == "_count" and (math.isnan(value) or value < 0):
                raise PromError(lineno, f"{name} is {toks[0]}")
        fam.samples.append(Sample(name, labels, value, ts, lineno))

    for fam in fams.values():
        if fam.type == "histogram":
            _check_histogram(fam)
        elif fam.type == "summary":
            _check_summary(fam)
    return m


def _groups(fam, drop):
    g = {}
    for s in fam.samples:
        key = tuple(sorted((k, v) for k, v in s.labels.items() if k != drop))
        g.setdefault(key, []).append(s)
    return g


def _check_histogram(fam):
    for key, samples in _groups(fam, "le").items():
        where = f"histogram {fam.name}{dict(key)}"
        buckets = [s for s in samples if s.name == fam.name + "_bucket"]
        sums = [s for s in samples if s.name == fam.name + "_sum"]
        counts = [s for s in samples if s.name == fam.name + "_count"]
        line = samples[0].line
        if not buckets:
            raise PromError(line, f"{where}: no buckets")
        les = [parse_float(s.labels["le"], s.line) for s in buckets]
        if any(math.isnan(x) for x in les):
            raise PromError(line, f"{where}: le is NaN")
        for a, b, s in zip(les, les[1:], buckets[1:]):
            if not a < b:
                raise PromError(s.line, f"{where}: le not strictly "
                                f"ascending ({a} then {b})")
        for a, b in zip(buckets, buckets[1:]):
            if b.value < a.value:
                raise PromError(b.line, f"{where}: buckets not cumulative "
                                f"({a.value} then {b.value})")
        if les[-1] != math.inf:
            raise PromError(line, f"{where}: no le=\"+Inf\" bucket")
        if len(counts) != 1:
            raise PromError(line, f"{where}: no {fam.name}_count")
        if len(sums) != 1:
            raise PromError(line, f"{where}: no {fam.name}_sum")
        if counts[0].value != buckets[-1].value:
            raise PromError(counts[0].line, f"{where}: _count "
                            f"{counts[0].value} != +Inf bucket "
                            f"{buckets[-1].value}")


def _check_summary(fam):
    for key, samples in _groups(fam, "quantile").items():
        names = [s.name for s in samples]
        where = f"summary {fam.name}{dict(key)}"
        if names.count(fam.name + "_sum") != 1 or \
                names.count(fam.name + "_count") != 1:
            raise PromError(samples[0].line, f"{where}: needs one _sum and "
                            "one _count")
