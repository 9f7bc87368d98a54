# SPDX-License-Identifier: MIT
"""`make install` and `make uninstall` into a DESTDIR: every file a user
expects is laid out (ferryd, ferry, the example workers, ferry.h,
libferry.a and libferry.so with its soname, ferry.pc, the man pages, the
systemd unit with its paths, the example config), a worker builds against
the installed ferry.pc (shared and static) and serves a real ferryd, and
uninstall leaves only the config file. Builds the release tree (build/)
when it is not there yet.
"""
import os
import shutil
import subprocess
import tempfile

from ferrytest import ROOT, FerryTestCase, run_ferry

WORKER = r"""
#include <stdio.h>
#include <string.h>
#include <ferry.h>

static void
on_job(struct ferry_job *job, void *arg)
{
    size_t len;
    const char *p = ferry_job_payload(job, &len);
    char out[256];
    int n = snprintf(out, sizeof(out), "installed:%.*s", (int)len, p);
    ferry_job_reply(job, out, (size_t)n);
}

static void
on_ready(struct ferry_worker *w, void *arg)
{
    puts("ready");
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    struct ferry_worker *w;
    struct ferry_opts opts = {0};
    if (ferry_worker_new(argv[1], &opts, &w) != FERRY_OK ||
        ferry_worker_register(w, "installed", 1, on_job, NULL) != FERRY_OK) {
        return 1;
    }
    return ferry_worker_run(w, on_ready, NULL) == FERRY_OK ? 0 : 1;
}
"""


class TestInstall(FerryTestCase):
    TIME_LIMIT = 600

    def setUp(self):
        super().setUp()
        self.dest = tempfile.mkdtemp(prefix="ferry-install-")
        self.addCleanup(shutil.rmtree, self.dest, True)

    def make(self, *args):
        r = subprocess.run(["make", "-s", "-C", ROOT, "BUILD=build",
                            f"DESTDIR={self.dest}"] + list(args),
                           capture_output=True, text=True, timeout=540)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r

    def path(self, rel):
        return os.path.join(self.dest, rel.lstrip("/"))

    def files(self):
        out = set()
        for top, _, names in os.walk(self.dest):
            for n in names:
                out.add("/" + os.path.relpath(os.path.join(top, n),
                                              self.dest))
        return out

    def test_install_layout_worker_uninstall(self):
        self.make("install", "PREFIX=/usr")
        want = {
            "/usr/sbin/ferryd", "/usr/bin/ferry",
            "/usr/bin/ferry-fib-worker", "/usr/bin/ferry-echo-worker",
            "/usr/bin/ferry-hello-worker", "/usr/include/ferry.h",
            "/usr/include/ferry_servants.h",
            "/usr/lib/libferry.a", "/usr/lib/libferry.so",
            "/usr/lib/libferry.so.0", "/usr/lib/libferry.so.0.1.0",
            "/usr/lib/pkgconfig/ferry.pc",
            "/usr/share/man/man1/ferry.1", "/usr/share/man/man5/ferryd.conf.5",
            "/usr/share/man/man8/ferryd.8",
            "/usr/lib/systemd/system/ferryd.service",
            "/usr/share/doc/ferry/ferryd.conf.example",
            "/usr/share/doc/ferry/README.md", "/usr/share/doc/ferry/LICENSE",
            "/etc/ferry/ferryd.conf",
        }
        self.assertEqual(self.files(), want)
        for exe in ("/usr/sbin/ferryd", "/usr/bin/ferry"):
            self.assertTrue(os.access(self.path(exe), os.X_OK), exe)
        self.assertEqual(os.readlink(self.path("/usr/lib/libferry.so")),
                         "libferry.so.0")
        dyn = subprocess.run(["readelf", "-d",
                              self.path("/usr/lib/libferry.so.0.1.0")],
                             capture_output=True, text=True).stdout
        self.assertIn("Library soname: [libferry.so.0]", dyn)
        # Only the public API is exported.
        syms = subprocess.run(["nm", "-D", "--defined-only",
                               "--without-symbol-versions",
                               self.path("/usr/lib/libferry.so")],
                              capture_output=True, text=True).stdout.split()
        exported = [s for s in syms if s.startswith("ferry") or
                    s.startswith("frame_") or s.startswith("buf_")]
        self.assertIn("ferry_worker_run", exported)
        self.assertIn("ferry_cache_get", exported)
        self.assertIn("ferry_kv_decode", exported)
        self.assertIn("ferry_queue_reserve", exported)
        for name in ("ferry_topic_encode", "ferry_topic_decode",
                     "ferry_topic_next", "ferry_topic_publish",
                     "ferry_topic_subscribe", "ferry_topic_poll",
                     "ferry_topic_unsubscribe", "ferry_topic_stats"):
            self.assertIn(name, exported)
        # The daemon's queue and topic codecs (and the trie) inside
        # libferry stay private.
        self.assertEqual([s for s in syms if s.startswith("queue_")
                          or s.startswith("topic_")], [])
        self.assertEqual([s for s in exported
                          if not s.startswith("ferry_")], [])
        with open(self.path("/usr/lib/systemd/system/ferryd.service")) as f:
            unit = f.read()
        self.assertIn(
            "ExecStart=/usr/sbin/ferryd --config /etc/ferry/ferryd.conf\n",
            unit)
        # The installed ferryd reads the installed config.
        r = subprocess.run([self.path("/usr/sbin/ferryd"), "--config",
                            self.path("/etc/ferry/ferryd.conf"), "--version"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ferryd 0.1", r.stdout)

        self.build_and_serve(static=False)
        self.build_and_serve(static=True)

        # A changed config survives a second install and the uninstall.
        with open(self.path("/etc/ferry/ferryd.conf"), "a") as f:
            f.write("; mine\n")
        self.make("install", "PREFIX=/usr")
        self.make("uninstall", "PREFIX=/usr")
        self.assertEqual(self.files(), {"/etc/ferry/ferryd.conf"})
        with open(self.path("/etc/ferry/ferryd.conf")) as f:
            self.assertTrue(f.read().endswith("; mine\n"))

    def build_and_serve(self, static):
        work = tempfile.mkdtemp(prefix="ferry-worker-")
        self.addCleanup(shutil.rmtree, work, True)
        src = os.path.join(work, "w.c")
        exe = os.path.join(work, "w-static" if static else "w-shared")
        with open(src, "w") as f:
            f.write(WORKER)
        env = dict(os.environ,
                   PKG_CONFIG_PATH=self.path("/usr/lib/pkgconfig"),
                   PKG_CONFIG_SYSROOT_DIR=self.dest)
        pc = subprocess.run(["pkg-config", "--cflags", "--libs"] +
                            (["--static"] if static else []) + ["ferry"],
                            capture_output=True, text=True, env=env,
                            check=True).stdout.split()
        self.assertIn("-I" + self.path("/usr/include"), pc)
        link = (["-Wl,-Bstatic", "-lferry", "-Wl,-Bdynamic"] if static
                else [])
        cmd = ["cc", "-std=c11", "-Wall", "-Werror", src, "-o", exe] + \
            [a for a in pc if not (static and a == "-lferry")] + link
        r = subprocess.run(cmd, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, f"{cmd}: {r.stderr}")
        needed = subprocess.run(["readelf", "-d", exe], capture_output=True,
                                text=True).stdout
        self.assertEqual("libferry.so.0" in needed, not static, needed)
        d = self.daemon()
        p = subprocess.Popen([exe, d.addr], stdout=subprocess.PIPE,
                             env=dict(os.environ, LD_LIBRARY_PATH=self.path(
                                 "/usr/lib")))
        try:
            # Printed once every service is registered.
            self.assertEqual(p.stdout.readline(), b"ready\n")
            r = run_ferry(["call", "installed", "x"], addr=d.addr)
            self.assertEqual((r.returncode, r.stdout),
                             (0, b"installed:x\n"), r)
        finally:
            p.kill()
            p.wait(10)
            p.stdout.close()
        d.stop()

    def test_default_prefix(self):
        # /usr/local: config under /usr/local/etc, unit paths follow.
        self.make("install")
        files = self.files()
        self.assertIn("/usr/local/sbin/ferryd", files)
        self.assertIn("/usr/local/etc/ferry/ferryd.conf", files)
        with open(self.path(
                "/usr/local/lib/systemd/system/ferryd.service")) as f:
            self.assertIn("ExecStart=/usr/local/sbin/ferryd --config "
                          "/usr/local/etc/ferry/ferryd.conf\n", f.read())
        self.make("uninstall")
        self.assertEqual(self.files(), {"/usr/local/etc/ferry/ferryd.conf"})
