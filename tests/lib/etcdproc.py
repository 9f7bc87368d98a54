# SPDX-License-Identifier: MIT
"""etcdproc - a real etcd for one test (stdlib only).

Etcd(hosts=["127.0.0.1", bridge_addr]) is a single-member etcd in a
fresh temp data dir, its client port open on every given address (the
same port on each), its peer port on 127.0.0.1 only, with a --name and
--initial-cluster unique to this run. start() waits until GET /health
says healthy; stop() is SIGTERM then SIGKILL by PID; kill() is kill -9;
pause()/resume() are SIGSTOP/SIGCONT (a hung etcd, not a dead one);
restart() starts it again on the same data dir and ports. Each running
etcd is recorded in STATE_DIR so that sweep_leftovers() of a later run
ends the etcd of a runner that died without cleaning up.

put/get/range/delete talk to its v3 JSON gateway (/v3/kv/...) with
urllib, base64 handled, so tests can read what ferryd wrote. Every wait
is bounded.
"""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import netns
from ferrytest import LogFile

ETCD = os.environ.get("ETCD_BIN", "etcd")
# One file per running etcd, "<owner pid> <etcd pid> <name> <tmp dir>",
# so that a later run can end the etcd of a runner that was SIGKILLed.
STATE_DIR = "/run/lock/ferry-etcd" if os.geteuid() == 0 else \
    os.path.join(tempfile.gettempdir(), f"ferry-etcd-{os.geteuid()}")
ETCDCTL = os.environ.get("ETCDCTL_BIN", "etcdctl")
_count = [0]


def _b64(v):
    if isinstance(v, str):
        v = v.encode()
    return base64.b64encode(bytes(v)).decode()


def _unb64(s):
    return base64.b64decode(s) if s else b""


def prefix_end(prefix):
    """The range_end that makes [prefix, end) every key under prefix."""
    if isinstance(prefix, str):
        prefix = prefix.encode()
    b = bytearray(prefix)
    while b:
        if b[-1] < 0xff:
            b[-1] += 1
            return bytes(b)
        b.pop()
    return b"\0"                                 # every key


def _port_free(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_ports(hosts, count):
    """count distinct ports, each free on every address of hosts."""
    ports = []
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((hosts[0], 0))
            p = s.getsockname()[1]
        if p not in ports and all(_port_free(h, p) for h in hosts):
            ports.append(p)
            if len(ports) == count:
                return ports
    raise RuntimeError(f"no {count} free ports on {hosts}")


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def sweep_leftovers():
    """Ends (SIGKILL, by PID) every etcd an earlier run of this module
    started whose runner is dead, and removes its temp dir. The PID is
    taken only when that process's command line still has the recorded
    --name, so a reused PID is left alone. Returns the names ended."""
    ended = []
    try:
        files = os.listdir(STATE_DIR)
    except FileNotFoundError:
        return ended
    for fn in files:
        path = os.path.join(STATE_DIR, fn)
        try:
            with open(path, encoding="utf-8") as f:
                owner, pid, name, tmp = f.read().split(" ", 3)
            owner, pid = int(owner), int(pid)
        except (OSError, ValueError):
            continue
        if netns.pid_alive(owner):
            continue
        if name.encode() in _cmdline(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            ended.append(name)
        tmp = tmp.strip()
        if os.path.basename(tmp).startswith("etcd-"):
            shutil.rmtree(tmp, ignore_errors=True)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return ended


class EtcdError(Exception):
    """etcd or its gateway answered with an error."""


class Etcd(LogFile):
    """One etcd process; see the module doc.

    hosts: addresses the client port listens on (the first is used by
    the helpers; default 127.0.0.1). client_port / peer_port: given or
    free ones. data_dir: given, else a fresh temp dir (removed by
    cleanup() unless keep_data). extra_args: more etcd flags.
    """

    def __init__(self, hosts=("127.0.0.1",), client_port=None,
                 peer_port=None, data_dir=None, name=None,
                 extra_args=(), ready_timeout=20.0, keep_data=False):
        self.hosts = list(hosts)
        if not self.hosts:
            raise ValueError("etcd needs at least one address")
        if client_port is None or peer_port is None:
            cp, pp = free_ports(self.hosts + ["127.0.0.1"], 2)
            client_port = client_port or cp
            peer_port = peer_port or pp
        self.client_port = client_port
        self.peer_port = peer_port
        _count[0] += 1
        self.name = name or f"ferrytest-{os.getpid()}-{_count[0]}"
        self.tmp = tempfile.mkdtemp(prefix="etcd-")
        self.own_data = data_dir is None
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.log_path = os.path.join(self.tmp, "etcd.log")
        self.extra_args = list(extra_args)
        self.ready_timeout = ready_timeout
        self.keep_data = keep_data
        self.proc = None
        self.paused = False
        self.returncode = None
        self._logf = None
        self._hook = None

    # -- addresses
    @property
    def endpoints(self):
        """Client URLs, one per address, e.g. for cluster_etcd."""
        return [f"http://{h}:{self.client_port}" for h in self.hosts]

    @property
    def url(self):
        """The first client URL; the helpers use it."""
        return self.endpoints[0]

    def endpoint(self, host):
        return f"http://{host}:{self.client_port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    # -- lifecycle
    def command(self):
        peer = f"http://127.0.0.1:{self.peer_port}"
        return [ETCD, "--name", self.name, "--data-dir", self.data_dir,
                "--listen-client-urls", ",".join(self.endpoints),
                "--advertise-client-urls", ",".join(self.endpoints),
                "--listen-peer-urls", peer,
                "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"{self.name}={peer}",
                "--initial-cluster-token", self.name,
                "--initial-cluster-state", "new",
                "--log-outputs", "stderr"] + self.extra_args

    def start(self):
        """Starts etcd and waits until /health says true; raises
        AssertionError with its log when it does not in ready_timeout."""
        if shutil.which(ETCD) is None:
            raise AssertionError(f"etcd not found ({ETCD}); cluster tests "
                                 "need etcd (apt-get install etcd-server)")
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("etcd already running")
        os.makedirs(os.path.dirname(self.data_dir) or ".", exist_ok=True)
        self._logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=self._logf, stderr=self._logf,
                                     cwd=self.tmp)
        self.paused = False
        self._write_state()
        if self._hook is None:
            self._hook = netns.add_cleanup(self.cleanup)
        self.wait_ready(self.ready_timeout)
        return self

    @property
    def state_path(self):
        return os.path.join(STATE_DIR, f"{os.getpid()}-{self.name}")

    def _write_state(self):
        os.makedirs(STATE_DIR, exist_ok=True)
        with open(self.state_path, "w", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {self.proc.pid} {self.name} {self.tmp}")

    def _drop_state(self):
        try:
            os.unlink(self.state_path)
        except FileNotFoundError:
            pass

    def wait_ready(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"etcd exited with "
                                     f"{self.proc.returncode} at start\n"
                                     f"{self.log_tail()}")
            try:
                if self.healthy(timeout=1.0):
                    return
                last = "health false"
            except (OSError, ValueError) as e:
                last = e
            time.sleep(0.1)
        raise AssertionError(f"etcd not healthy after {timeout} s "
                             f"({last})\n{self.log_tail()}")

    def healthy(self, timeout=2.0, host=None):
        """True when GET /health answers {"health": "true"}."""
        url = (self.endpoint(host) if host else self.url) + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                doc = json.loads(r.read())
        except urllib.error.HTTPError as e:
            doc = json.loads(e.read() or b"{}")
        return doc.get("health") in ("true", True)

    def stop(self, timeout=10.0):
        """SIGTERM (SIGCONT too when paused), SIGKILL after timeout;
        returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                if self.paused:
                    self.proc.send_signal(signal.SIGCONT)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.paused = False
        self.returncode = self.proc.returncode
        if self._logf:
            self._logf.close()
            self._logf = None
        return self.returncode

    def kill(self):
        """kill -9, and wait for it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.paused = False
        self.returncode = self.proc.returncode if self.proc else None
        return self.returncode

    def pause(self):
        """SIGSTOP: etcd stays, answers nothing."""
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        """SIGCONT after pause()."""
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def restart(self, timeout=10.0):
        """Stops (if running) and starts again, same data dir and ports."""
        self.stop(timeout)
        # The ports were ours a moment ago; wait (bounded) until free.
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and not all(
                _port_free(h, self.client_port) for h in self.hosts):
            time.sleep(0.1)
        return self.start()

    def cleanup(self):
        """Stops etcd and removes its temp dir (unless keep_data)."""
        self.stop(5.0)
        self._drop_state()
        if self._hook is not None:
            netns.remove_cleanup(self._hook)
            self._hook = None
        if not self.keep_data:
            # A data dir the test gave lives outside tmp and stays.
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # -- the v3 JSON gateway
    def _post(self, path, doc, timeout=5.0):
        req = urllib.request.Request(
            self.url + path, data=json.dumps(doc).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise EtcdError(f"{path}: HTTP {e.code}: "
                            f"{e.read()[:500]!r}") from None

    def put(self, key, value, lease=None, timeout=5.0):
        """Puts key = value (str or bytes); returns the header revision."""
        doc = {"key": _b64(key), "value": _b64(value)}
        if lease:
            doc["lease"] = str(lease)
        r = self._post("/v3/kv/put", doc, timeout)
        return int(r.get("header", {}).get("revision", 0))

    def get(self, key, timeout=5.0):
        """The value of key as bytes, or None."""
        kvs = self._range({"key": _b64(key)}, timeout)
        return kvs[0]["value"] if kvs else None

    def get_kv(self, key, timeout=5.0):
        """key's entry as a dict (key, value bytes, create_revision,
        mod_revision, version, lease), or None."""
        kvs = self._range({"key": _b64(key)}, timeout)
        return kvs[0] if kvs else None

    def range(self, prefix, timeout=5.0):
        """{key bytes: value bytes} of every key under prefix."""
        kvs = self._range({"key": _b64(prefix),
                           "range_end": _b64(prefix_end(prefix))}, timeout)
        return {kv["key"]: kv["value"] for kv in kvs}

    def range_kvs(self, prefix, timeout=5.0):
        """The entries under prefix as dicts, like get_kv()."""
        return self._range({"key": _b64(prefix),
                            "range_end": _b64(prefix_end(prefix))}, timeout)

    def _range(self, doc, timeout):
        r = self._post("/v3/kv/range", doc, timeout)
        out = []
        for kv in r.get("kvs", []):
            out.append({"key": _unb64(kv.get("key")),
                        "value": _unb64(kv.get("value")),
                        "create_revision": int(kv.get("create_revision", 0)),
                        "mod_revision": int(kv.get("mod_revision", 0)),
                        "version": int(kv.get("version", 0)),
                        "lease": int(kv.get("lease", 0))})
        return out

    def delete(self, key, prefix=False, timeout=5.0):
        """Deletes key (every key under it when prefix); returns the
        number deleted."""
        doc = {"key": _b64(key)}
        if prefix:
            doc["range_end"] = _b64(prefix_end(key))
        r = self._post("/v3/kv/deleterange", doc, timeout)
        return int(r.get("deleted", 0))

    def lease_grant(self, ttl_s, timeout=5.0):
        """A new lease of ttl_s seconds; returns its id."""
        r = self._post("/v3/lease/grant", {"TTL": str(int(ttl_s))}, timeout)
        return int(r["ID"])

    def leases(self, timeout=5.0):
        """Ids of the live leases."""
        r = self._post("/v3/lease/leases", {}, timeout)
        return [int(x["ID"]) for x in r.get("leases", [])]

    def wait_key(self, key, timeout=10.0, present=True):
        """Waits until key exists (or, present=False, is gone); returns
        its value (or None). Raises AssertionError past timeout."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.get(key)
            if (v is not None) == present:
                return v
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"etcd key {key!r} {'never' if present else 'still'} "
                    f"there after {timeout} s")
            time.sleep(0.05)


def etcdctl(endpoint, *args, timeout=15.0, wrap=()):
    """Runs etcdctl (v3 API) against endpoint; wrap is a command prefix,
    e.g. ["ip", "netns", "exec", NS]. Returns CompletedProcess (text)."""
    env = dict(os.environ, ETCDCTL_API="3")
    cmd = list(wrap) + [ETCDCTL, "--endpoints", endpoint,
                        "--dial-timeout", "3s",
                        "--command-timeout", "5s"] + list(args)
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, errors="replace", timeout=timeout,
                          env=env)


__all__ = ["Etcd", "EtcdError", "etcdctl", "free_ports", "prefix_end",
           "sweep_leftovers"]
