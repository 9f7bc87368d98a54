# SPDX-License-Identifier: MIT
"""ferrycluster - several ferryd nodes, each in its own network namespace,
and a real etcd, for the cluster tests (tests/cluster/; stdlib only).

Cluster(n) builds a netns.Network of n namespaces, starts an etcdproc.Etcd
listening on 127.0.0.1 and on the bridge address, and in namespace i a
ferryd started the way ferrytest.Daemon starts one (flags --listen,
--http, --data-dir, --run-dir, --name; stdout and stderr to a log file in
its own data dir), prefixed with `ip netns exec NS`. Each node also gets
a config file (--config) of "[ferryd]" plus the lines the test gives:
the harness itself needs none of them, so it runs before ferryd knows a
single cluster_* key. Flags win over the file; pass args= to change one.

Config lines are str.format_map()ed with the node's fields (double the
braces for a literal one):

    {index} {name} {host} {port} {addr} {http_addr} {data_dir}
    {etcd}      the etcd client URL on the bridge ("" without etcd)
    {cluster}   a cluster name unique to this run
    {peers}     every node's addr, comma separated

A node is called from the root namespace (node.call(), the ferry CLI at
its address over the bridge; node.conn(), a raw ferrytest.Conn;
node.client(), the Python client when clients/python is importable) or
from inside another node's namespace (cluster.ferry(j, ..., via=i)).
Workers run inside a node's namespace pointing at that node.

Every wait is bounded; ClusterTestCase closes the cluster after each test,
prints every node's log tail when the test failed, and fails a test whose
processes reported a sanitizer error.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import etcdproc
import netns
from ferrytest import (ROOT, Conn, FerryTestCase, LogFile, ProtocolFailure,
                       Worker,
                       _env, _stop_pid, binary, ferryd_has_http,
                       http_request, remove_tmp, sanitizer_report)

DEFAULT_PORT = 7700
DEFAULT_HTTP_PORT = 8080


class FerryFailed(AssertionError):
    """The ferry CLI exited non-zero; .result is its CompletedProcess."""

    def __init__(self, msg, result):
        super().__init__(msg)
        self.result = result


class ClusterNode(LogFile):
    """Node i of a Cluster: one ferryd in namespace ns at addr."""

    def __init__(self, cluster, net_node, port, http_port, config, args,
                 env, ready_timeout):
        self.cluster = cluster
        self.index = net_node.index
        self.name = f"node{self.index}"
        self.ns = net_node.ns
        self.host = net_node.addr
        self.port = port
        self.addr = f"{self.host}:{port}"
        self.http_port = http_port
        self.http_addr = f"{self.host}:{http_port}" if http_port else None
        self.http_url = f"http://{self.http_addr}" if http_port else None
        self.tmp = tempfile.mkdtemp(prefix=f"ferryd-{self.name}-")
        self.data_dir = self.tmp
        self.config_path = os.path.join(self.tmp, "ferryd.conf")
        self.log_path = os.path.join(self.tmp, "ferryd.log")
        self.config = config                     # list or callable(node)
        self.extra_config = []                   # add_config() lines
        self.args = list(args)
        self.env = env
        self.ready_timeout = ready_timeout
        self.proc = None
        self.returncode = None
        self.paused = False
        self.starts = 0
        self._logf = None

    def __repr__(self):
        return f"<ClusterNode {self.name} {self.ns} {self.addr}>"

    # -- config
    def fields(self):
        """The names config lines may use in braces."""
        c = self.cluster
        return {"index": self.index, "name": self.name, "host": self.host,
                "port": self.port, "addr": self.addr,
                "http_addr": self.http_addr or "", "data_dir": self.data_dir,
                "etcd": c.etcd_url or "", "cluster": c.cluster_name,
                "peers": ",".join(n.addr for n in c.nodes)}

    def add_config(self, *lines):
        """More config lines (formatted like the others); they take effect
        at the next start or restart."""
        self.extra_config += lines

    def config_lines(self):
        base = self.config(self) if callable(self.config) else self.config
        f = self.fields()
        return [str(l).format_map(f) for l in list(base) +
                self.extra_config]

    def write_config(self):
        text = "[ferryd]\n" + "".join(l + "\n" for l in self.config_lines())
        with open(self.config_path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return text

    def command(self):
        cmd = [binary("ferryd"), "--config", self.config_path,
               "--listen", self.addr, "--data-dir", self.data_dir,
               "--run-dir", self.data_dir, "--name", self.name]
        if self.http_addr:
            cmd += ["--http", self.http_addr]
        return self.cluster.net.wrap(self.index, cmd + self.args)

    # -- lifecycle
    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def is_running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, wait=True):
        """Starts ferryd in its namespace; with wait, returns once it
        answers HELLO at addr from the root namespace (and its HTTP port
        accepts), else raises AssertionError with its log."""
        if self.is_running():
            raise RuntimeError(f"{self.name} already running")
        self.write_config()
        self.starts += 1
        self._logf = open(self.log_path, "ab")
        if self.starts > 1:
            self._logf.write(f"=== harness: start {self.starts} of "
                             f"{self.name} ===\n".encode())
            self._logf.flush()
        self.cmd = self.command()
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=self._logf, stderr=self._logf,
                                     env=_env(self.env), cwd=self.tmp)
        self.paused = False
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=None):
        timeout = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                self._close_log()
                raise AssertionError(
                    f"{self.name}: ferryd exited with {self.proc.returncode}"
                    f" at start: {' '.join(self.cmd)}\n{self.log_tail()}")
            try:
                with Conn(self.addr, timeout=2) as c:
                    try:
                        c.hello()
                    except ProtocolFailure as e:
                        if "UNAUTHORIZED" not in str(e):
                            raise
                if self.http_addr:
                    socket.create_connection((self.host, self.http_port),
                                             timeout=2).close()
                return self
            except (OSError, ProtocolFailure) as e:
                last = e
                time.sleep(0.05)
        raise AssertionError(f"{self.name}: ferryd not ready at {self.addr} "
                             f"after {timeout} s ({last})\n{self.log_tail()}")

    def stop(self, timeout=10.0):
        """SIGTERM (SIGCONT too when paused), SIGKILL after timeout;
        returns the exit status."""
        if self.proc is None:
            return None
        if self.paused and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.send_signal(signal.SIGCONT)
        self.returncode = _stop_pid(self.proc, timeout)
        self.paused = False
        self._close_log()
        return self.returncode

    def kill(self):
        """kill -9, and wait for it."""
        if self.is_running():
            self.proc.kill()
            self.proc.wait(10)
        self.returncode = self.proc.returncode if self.proc else None
        self.paused = False
        self._close_log()
        return self.returncode

    def signal(self, sig):
        self.proc.send_signal(sig)

    def pause(self):
        """SIGSTOP: the node hangs (sockets open, nothing answered)."""
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def wait(self, timeout):
        """Waits for the node to exit; its status, or None past timeout."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._close_log()
        return self.returncode

    def restart(self, wait=True, kill=False, timeout=10.0):
        """Stops (SIGTERM, or SIGKILL with kill) and starts again: same
        data dir, ports and log file, the config file written anew."""
        if kill:
            self.kill()
        else:
            self.stop(timeout)
        return self.start(wait)

    def _close_log(self):
        if self._logf is not None:
            self._logf.close()
            self._logf = None

    # -- log (log and log_tail: ferrytest.LogFile)

    def log_mark(self):
        """The log's length now: pass it as since= to wait_log() to look
        only at lines written after this point."""
        return len(self.log)

    def wait_log(self, pattern, timeout=10.0, since=0):
        """Waits until the log (from offset since) matches the regular
        expression pattern; returns the re.Match. AssertionError with the
        log's tail past timeout, or when ferryd exited first."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log, since)
            if m:
                return m
            if not self.is_running():
                m = rx.search(self.log, since)
                if m:
                    return m
                raise AssertionError(
                    f"{self.name} exited ({self.returncode}) before log "
                    f"matched {pattern!r}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no log line matching "
                                     f"{pattern!r} after {timeout} s\n"
                                     f"{self.log_tail()}")
            time.sleep(0.05)

    # -- talking to it from the root namespace
    def conn(self, role=None, timeout=10.0, **kw):
        """A raw ferrytest.Conn to this node that has done HELLO."""
        c = Conn(self.addr, timeout=timeout)
        try:
            if role is None:
                c.hello(**kw)
            else:
                c.hello(role, **kw)
        except BaseException:
            c.close()
            raise
        return c

    def ferry(self, args, input=None, timeout=30.0, via=None, env=None):
        """The ferry CLI at this node (see Cluster.ferry)."""
        return self.cluster.ferry(self.index, args, input=input,
                                  timeout=timeout, via=via, env=env)

    def call(self, service, payload=b"", timeout_ms=None, via=None,
             timeout=30.0, key=None):
        """Calls service through this node with the ferry CLI (payload on
        stdin), from the root namespace or from node via's namespace;
        returns the reply without the newline the CLI ends it with (use
        conn() or client() for replies that end with one themselves).
        FerryFailed on a non-zero exit."""
        return self.cluster.call(self.index, service, payload, timeout_ms,
                                 via=via, timeout=timeout, key=key)

    def http(self, method, path, body=None, headers=None, timeout=10.0):
        """One HTTP request to this node's HTTP port (ferrytest's
        HttpResponse)."""
        if not self.http_addr:
            raise AssertionError(f"{self.name} has no HTTP port")
        return http_request(self.http_addr, method, path, body, headers,
                            timeout)

    def client(self, **kw):
        """A ferry.Client (clients/python) connected to this node; raises
        AssertionError when that client is not importable."""
        return python_client().Client(self.addr, **kw)


def python_client():
    """The ferry module of clients/python (added to sys.path if needed)."""
    try:
        import ferry
        return ferry
    except ImportError:
        pass
    path = os.path.join(ROOT, "clients", "python")
    if os.path.isdir(path) and path not in sys.path:
        sys.path.insert(0, path)
    try:
        import ferry
        return ferry
    except ImportError as e:
        raise AssertionError(f"the Python client is not importable from "
                             f"{path}: {e}") from None


class Cluster:
    """n ferryd nodes in namespaces, and an etcd; see the module doc.

    config: lines for every node's config file (a list, or a callable
    taking the ClusterNode and returning one); args: more ferryd flags;
    etcd: start one (default) or not; port / http_port: the ports each
    node listens on at its own address (every node has its own
    namespace, so they may be the same; http_port=None: --http off);
    start: build and start everything now.
    """

    def __init__(self, n=3, config=(), args=(), etcd=True, env=None,
                 port=DEFAULT_PORT, http_port=DEFAULT_HTTP_PORT,
                 ready_timeout=20.0, start=True):
        self.n = n
        self.net = None
        self.etcd = None
        self.nodes = []
        self.workers = []
        self.cluster_name = f"ferrytest-{os.getpid()}-{id(self) & 0xffff:x}"
        self.closed = False
        self._config = config
        self._args = list(args)
        self._with_etcd = etcd
        self._env = env
        self._port = port
        self._http_port = http_port
        self._ready_timeout = ready_timeout
        self._hook = None
        self._reports = None
        if start:
            try:
                self.start()
            except BaseException:
                self.close()
                raise

    @property
    def etcd_url(self):
        """etcd's client URL on the bridge, as the nodes reach it."""
        if self.etcd is None:
            return None
        return self.etcd.endpoint(self.net.bridge_addr)

    def start(self):
        """Builds the network, starts etcd and every node (waiting for
        each)."""
        self.net = netns.Network(self.n)          # sweeps dead runs' too
        self._hook = netns.add_cleanup(lambda: self.close(keep_files=True))
        etcdproc.sweep_leftovers()
        if self._with_etcd:
            self.etcd = etcdproc.Etcd(hosts=["127.0.0.1",
                                             self.net.bridge_addr])
            self.etcd.start()
        http_port = self._http_port
        if http_port and not ferryd_has_http():
            http_port = None
        args = list(self._args)
        if not http_port and "--http" not in args and ferryd_has_http():
            args += ["--http", "off"]
        for nn in self.net.nodes:
            self.nodes.append(ClusterNode(self, nn, self._port, http_port,
                                          self._config, args, self._env,
                                          self._ready_timeout))
        for node in self.nodes:
            node.start(wait=False)
        for node in self.nodes:
            node.wait_ready()
        return self

    def node(self, i):
        """Node i, counted from 1."""
        if not 1 <= i <= len(self.nodes):
            raise IndexError(f"no node {i} (1..{len(self.nodes)})")
        return self.nodes[i - 1]

    def __iter__(self):
        return iter(self.nodes)

    def __len__(self):
        return len(self.nodes)

    # -- commands
    def run_in(self, i, cmd, timeout=30.0, **kw):
        """subprocess.run of cmd inside node i's namespace (text output
        captured), bounded by timeout."""
        kw.setdefault("env", _env(self._env))
        return self.net.run(i, cmd, timeout=timeout, **kw)

    def popen_in(self, i, cmd, **kw):
        """subprocess.Popen of cmd inside node i's namespace."""
        kw.setdefault("env", _env(self._env))
        return self.net.popen(i, cmd, **kw)

    def ferry(self, i, args, input=None, timeout=30.0, via=None, env=None):
        """Runs `ferry --addr <node i> ARGS` from the root namespace, or
        from inside node via's namespace; returns the CompletedProcess
        (bytes). subprocess.TimeoutExpired past timeout."""
        cmd = [binary("ferry"), "--addr", self.node(i).addr] + list(args)
        if via is not None:
            cmd = self.net.wrap(via, cmd)
        return subprocess.run(cmd, input=input, capture_output=True,
                              timeout=timeout,
                              env=_env(env if env is not None
                                       else self._env),
                              stdin=None if input is not None
                              else subprocess.DEVNULL)

    def call(self, i, service, payload=b"", timeout_ms=None, via=None,
             timeout=30.0, key=None):
        """Calls service through node i (see ClusterNode.call)."""
        if isinstance(payload, str):
            payload = payload.encode()
        args = ["call", service, "-"]
        if timeout_ms is not None:
            args += ["--timeout", str(timeout_ms)]
        if key is not None:
            args += ["--key", key]
        r = self.ferry(i, args, input=payload, timeout=timeout, via=via)
        if r.returncode != 0:
            where = f" from node{via}" if via is not None else ""
            raise FerryFailed(
                f"ferry call {service} through node{i}{where} exited "
                f"{r.returncode}: {r.stderr.decode(errors='replace')}",
                r)
        out = r.stdout
        return out[:-1] if out.endswith(b"\n") else out

    def worker(self, i, name, *args, env=None, ready_timeout=10.0):
        """Starts worker binary name (from $FERRY_BIN) inside node i's
        namespace with --addr <node i>, waits for its READY; stopped by
        close()."""
        w = Worker(name, ["--addr", self.node(i).addr] + list(args),
                   env=env if env is not None else self._env,
                   ready_timeout=ready_timeout,
                   prefix=self.net.wrap(i, []))
        w.cmd = f"{name} in node{i}"
        self.workers.append(w)
        return w.start()

    # -- faults
    def cut(self, i):
        """Cuts node i off the network (its bridge-side veth down)."""
        self.net.cut(i)

    def restore(self, i):
        self.net.restore(i)

    # -- reports
    def logs(self, tail=60):
        """Every node's (and etcd's) log tail, for failure messages."""
        parts = []
        for node in self.nodes:
            parts.append(f"--- {node.name} ({node.addr}, pid {node.pid}) "
                         f"{node.log_path}\n{node.log_tail(tail)}")
        for w in self.workers:
            parts.append(f"--- worker {w.cmd}\n{w.log[-2000:]}")
        if self.etcd is not None:
            parts.append(f"--- etcd {self.etcd.url}\n"
                         f"{self.etcd.log_tail(15)}")
        return "\n".join(parts)

    def sanitizer_reports(self):
        """Sanitizer reports in the nodes' and workers' logs (read once at
        close(), before it may remove them)."""
        if self._reports is not None:
            return list(self._reports)
        reps = []
        for p in self.nodes + self.workers:
            rep = sanitizer_report(p.log)
            if rep:
                reps.append(f"--- {getattr(p, 'cmd', p)}:\n{rep}")
        return reps

    def close(self, keep_files=False):
        """Stops workers and nodes (SIGTERM, then SIGKILL), etcd, then
        removes the network, and the nodes' and etcd's temp dirs unless
        keep_files. Idempotent; also run at exit (keeping the files)."""
        if self.closed:
            return
        self.closed = True
        for w in reversed(self.workers):
            try:
                w.stop()
            except Exception:                    # noqa: BLE001
                pass
        for node in self.nodes:
            try:
                node.stop(5.0)
            except Exception:                    # noqa: BLE001
                pass
        self._reports = self.sanitizer_reports()
        if self.etcd is not None:
            self.etcd.keep_data = self.etcd.keep_data or keep_files
            self.etcd.cleanup()
        if self.net is not None:
            self.net.close()
        if self._hook is not None:
            netns.remove_cleanup(self._hook)
        if not keep_files:
            self.remove_files()

    def remove_files(self):
        """Removes the nodes' and etcd's temp dirs (after close)."""
        for p in self.nodes + self.workers:
            remove_tmp(p.tmp)
        if self.etcd is not None:
            remove_tmp(self.etcd.tmp)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ClusterTestCase(FerryTestCase):
    """FerryTestCase for cluster tests: self.cluster(n, ...) builds a
    Cluster closed after the test; a failed test prints every node's log
    tail; a sanitizer report from a node or worker fails the test."""

    TIME_LIMIT = 180

    def setUp(self):
        super().setUp()
        self._clusters = []

    def cluster(self, n=3, **kw):
        c = Cluster(n, **kw)
        self._clusters.append(c)
        return c

    def _failed(self):
        outcome = getattr(self, "_outcome", None)
        return outcome is not None and not getattr(outcome, "success", True)

    def tearDown(self):
        signal.alarm(0)
        if self._failed():
            for c in self._clusters:
                print(f"\n=== logs of {c.cluster_name} ===\n{c.logs()}",
                      flush=True)
        reports = []
        failed = self._failed()
        for c in self._clusters:
            # Read the logs before close() removes them; a failed test
            # keeps its files (their paths are in the logs printed above).
            c.close(keep_files=True)
            rep = c.sanitizer_reports()
            reports += rep
            if not failed and not rep:
                c.remove_files()
        super().tearDown()
        if reports:
            self.fail("sanitizer report:\n" + "\n".join(reports))


__all__ = ["Cluster", "ClusterNode", "ClusterTestCase", "FerryFailed",
           "python_client"]
