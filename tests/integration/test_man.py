# SPDX-License-Identifier: MIT
"""The man pages in man/ (ferryd(8), ferry(1), ferryd.conf(5)): clean under
mandoc's and groff's linters, rendering to something, and still true to the
code: every flag that `ferryd --help` prints is in ferryd(8), every command
and option that `ferry --help` and `ferry COMMAND --help` print is in
ferry(1), and every configuration key is in ferryd.conf(5) with the default
the code has. Needs mandoc and groff (Debian: mandoc, groff-base)."""
import os
import re
import shutil
import subprocess
import tempfile

from ferrytest import FerryTestCase, ROOT, binary

MAN = os.path.join(ROOT, "man")
PAGES = ("ferryd.8", "ferry.1", "ferryd.conf.5")

# Sections each page must have (the man(7) headings, as rendered).
SECTIONS = {
    "ferryd.8": ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SIGNALS",
                 "ENVIRONMENT", "FILES", "EXIT STATUS", "SEE ALSO"),
    "ferry.1": ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS",
                "ENVIRONMENT", "EXIT STATUS", "EXAMPLES", "SEE ALSO"),
    "ferryd.conf.5": ("NAME", "SYNOPSIS", "DESCRIPTION", "KEYS",
                      "HOT RELOAD", "FILES", "EXAMPLES", "SEE ALSO"),
}

# A flag as `ferryd --help` prints it: "  --queue-limit N" on one line, then
# "        requests waiting ...; default 1024" on the next. --config, --help
# and --version have no "; default" line.
HELP_KEY = re.compile(r"^  --([a-z][a-z0-9-]*) .*\n {8}.*; default (.*)$",
                      re.M)
HELP_FLAG = re.compile(r"^  (--[a-z][a-z0-9-]*)", re.M)
LONG_OPT = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")

TAG_INDENT = 7  # mandoc -T ascii: section text and .TP tags; bodies deeper


def word(text):
    """A regex for text as a whole word (not part of --http-max-body)."""
    return re.compile(r"(?<![\w-])" + re.escape(text) + r"(?![\w-])")


def run(cmd, **kw):
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=30, **kw)


def help_text(*args):
    """stdout of a ferry binary's --help; it must exit 0."""
    r = run([binary(args[0])] + list(args[1:]) + ["--help"])
    if r.returncode != 0:
        raise AssertionError(f"{args} --help exited {r.returncode}: "
                             f"{r.stderr.decode(errors='replace')}")
    return r.stdout.decode()


def config_keys():
    """{key: default} of every configuration key. Taken from what
    `ferryd --help` prints, which config_print_help() writes from the key
    table in src/core/config.c (one flag per key, dashes for underscores),
    rather than by parsing the C source."""
    keys = {m.group(1).replace("-", "_"): m.group(2).strip()
            for m in HELP_KEY.finditer(help_text("ferryd"))}
    if len(keys) < 30:
        raise AssertionError(f"found only {len(keys)} keys in ferryd --help;"
                             f" has its format changed? {sorted(keys)}")
    return keys


def render(name):
    """The page as plain text: mandoc -T ascii without its overstrikes."""
    r = run(["mandoc", "-T", "ascii", os.path.join(MAN, name)])
    if r.returncode != 0:
        raise AssertionError(f"mandoc -T ascii {name} exited "
                             f"{r.returncode}: {r.stderr.decode()}")
    return re.sub(r".\x08", "", r.stdout.decode())


def section(text, title):
    """The lines of section title (a heading at column 0), or None."""
    m = re.search(r"^" + re.escape(title) + r"\n(.*?)(?=^\S|\Z)", text,
                  re.M | re.S)
    return m.group(1) if m else None


def entry(text, tag):
    """The rendered text of the .TP entry whose tag starts with regex tag
    (at the tag indent), up to the next entry or paragraph, whitespace
    collapsed; None when there is none."""
    lines = text.splitlines()
    start = re.compile(" " * TAG_INDENT + tag)
    for i, line in enumerate(lines):
        if not start.match(line):
            continue
        body = [line]
        for nxt in lines[i + 1:]:
            indent = len(nxt) - len(nxt.lstrip(" "))
            if nxt.strip() and indent <= TAG_INDENT:
                break
            body.append(nxt)
        return " ".join(" ".join(body).split())
    return None


def default_pieces(dflt):
    """What a default from --help must show as in a page: "none (off)" is
    "none", "'GET /fib/{n} fib'" is "GET /fib/{n} fib", and a list
    "A,B" is both A and B."""
    dflt = dflt.split(" (")[0].strip().strip("'")
    return [p.strip() for p in dflt.split(",")]


class TestManPages(FerryTestCase):
    TIME_LIMIT = 60

    def assertFinds(self, regex, text, what):
        """regex (a compiled pattern) matches in text; else fails naming
        what is missing, without printing the whole page."""
        if not regex.search(text):
            self.fail(f"{what}: /{regex.pattern}/ not found")

    def setUp(self):
        super().setUp()
        missing = [t for t in ("mandoc", "groff") if shutil.which(t) is None]
        if missing:
            self.fail(f"{' and '.join(missing)} not installed (Debian: "
                      f"apt-get install mandoc groff-base)")
        for name in PAGES:
            if not os.path.isfile(os.path.join(MAN, name)):
                self.fail(f"man/{name} is missing")

    def test_header(self):
        for name in PAGES:
            with self.subTest(page=name):
                with open(os.path.join(MAN, name), "rb") as f:
                    data = f.read()
                lines = data.decode("ascii").splitlines()
                self.assertEqual(lines[0], r'.\" SPDX-License-Identifier: MIT')
                self.assertRegex(lines[1], r"^\.TH ")

    def test_mandoc_lint(self):
        for name in PAGES:
            with self.subTest(page=name):
                r = run(["mandoc", "-T", "lint", "-W", "warning",
                         os.path.join(MAN, name)])
                out = (r.stdout + r.stderr).decode(errors="replace")
                self.assertEqual((r.returncode, out), (0, ""),
                                 f"mandoc -T lint -W warning man/{name}")

    def test_groff_warnings(self):
        for name in PAGES:
            with self.subTest(page=name):
                r = run(["groff", "-man", "-ww", "-z", "-t",
                         os.path.join(MAN, name)])
                out = (r.stdout + r.stderr).decode(errors="replace")
                self.assertEqual((r.returncode, out), (0, ""),
                                 f"groff -man -ww -z -t man/{name}")

    def test_renders(self):
        env = dict(os.environ, LC_ALL="C.UTF-8")
        for name in PAGES:
            with self.subTest(page=name):
                r = run(["mandoc", "-T", "utf8", os.path.join(MAN, name)],
                        env=env)
                self.assertEqual(r.returncode, 0, r.stderr)
                text = re.sub(r".\x08", "", r.stdout.decode())
                self.assertGreater(len(text.splitlines()), 40, text[:400])
                title = name.rsplit(".", 1)[0]
                self.assertIn(title, section(text, "NAME") or "",
                              text[:400])
                for title in SECTIONS[name]:
                    self.assertIsNotNone(section(text, title),
                                         f"no {title} section in {name}")

    def test_see_also(self):
        refs = {"ferryd.8": ("ferry(1)", "ferryd.conf(5)"),
                "ferry.1": ("ferryd(8)", "ferryd.conf(5)"),
                "ferryd.conf.5": ("ferry(1)", "ferryd(8)")}
        for name, want in refs.items():
            see = section(render(name), "SEE ALSO") or ""
            for ref in want:
                with self.subTest(page=name, ref=ref):
                    self.assertIn(ref, see)

    def test_ferryd_flags(self):
        """Every long option of `ferryd --help` has an entry in ferryd(8);
        a key's entry shows the default --help prints."""
        out = help_text("ferryd")
        flags = HELP_FLAG.findall(out)
        self.assertGreater(len(flags), 30, out)
        text = render("ferryd.8")
        for flag in flags:
            with self.subTest(flag=flag):
                self.assertFinds(word(flag), text, f"{flag} not in ferryd.8")
        options = section(text, "OPTIONS")
        for key, dflt in config_keys().items():
            flag = "--" + key.replace("_", "-")
            with self.subTest(flag=flag):
                e = entry(options, re.escape(flag) + r"(?![\w-])")
                self.assertIsNotNone(e, f"no entry for {flag} in OPTIONS")
                first, *rest = default_pieces(dflt)
                self.assertIn("Default: " + first, e)
                for piece in rest:
                    self.assertIn(piece, e)

    def test_ferry_commands(self):
        """Every command of `ferry --help` has a subsection in COMMANDS of
        ferry(1), and every long option of the help texts is in the page;
        so is every operation of `ferry admin --help`."""
        out = help_text("ferry")
        block = re.search(r"^commands:\n((?:  \S.*\n)+)", out, re.M)
        self.assertIsNotNone(block, out)
        commands = re.findall(r"^  (\S+)", block.group(1), re.M)
        self.assertGreaterEqual(len(commands), 4, out)
        text = render("ferry.1")
        commands_text = section(text, "COMMANDS")
        self.assertIsNotNone(commands_text)
        for cmd in commands:
            with self.subTest(command=cmd):
                self.assertFinds(re.compile(r"^   " + re.escape(cmd) + r"$",
                                            re.M), commands_text,
                                 f"no subsection for '{cmd}' in COMMANDS")
            sub = help_text("ferry", cmd)
            for opt in sorted(set(LONG_OPT.findall(out + sub))):
                with self.subTest(command=cmd, option=opt):
                    self.assertFinds(word(opt), text, f"{opt} not in ferry.1")
        admin = help_text("ferry", "admin")
        ops = re.findall(r"^(?:usage:)? +ferry admin ([a-z][a-z-]*)", admin,
                         re.M)
        self.assertGreaterEqual(len(ops), 4, admin)
        for op in ops:
            with self.subTest(admin=op):
                self.assertIsNotNone(entry(commands_text, re.escape(op) +
                                           r"(?![\w-])"),
                                     f"no entry for admin {op}")

    def test_config_keys(self):
        """Every key has an entry "key = ..." in ferryd.conf(5) that shows
        the default the code has."""
        keys = config_keys()
        text = render("ferryd.conf.5")
        body = section(text, "KEYS")
        self.assertIsNotNone(body)
        for key, dflt in keys.items():
            with self.subTest(key=key):
                e = entry(body, re.escape(key) + " = ")
                self.assertIsNotNone(e, f"no entry for {key} in KEYS")
                first, *rest = default_pieces(dflt)
                self.assertIn("Default " + first, e)
                for piece in rest:
                    self.assertIn(piece, e)

    def test_conf_example_is_accepted(self):
        """The configuration file of EXAMPLES in ferryd.conf(5) starts a
        ferryd (its listeners and folder overridden by the harness's
        flags)."""
        example = section(render("ferryd.conf.5"), "EXAMPLES")
        self.assertIsNotNone(example)
        lines = []
        for line in example.lstrip("\n").splitlines():
            if not line.strip():
                break
            lines.append(line[TAG_INDENT:])
        self.assertIn("[ferryd]", lines)
        tmp = tempfile.mkdtemp(prefix="ferry-man-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        path = os.path.join(tmp, "example.ini")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        d = self.daemon("--config", path)
        self.assertIsNone(d.proc.poll(), d.log_tail())
