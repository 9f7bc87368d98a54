# SPDX-License-Identifier: MIT
"""netns - a private network for one test run (stdlib only, needs root).

A Network is a bridge in the root namespace with the first address of a
/24, and N network namespaces, each joined to the bridge by a veth pair:
the namespace end holds the node's address (and lo is up), the other end
is a port of the bridge. The test runner and etcd, both in the root
namespace, reach every node through the bridge; nodes reach each other
and etcd the same way. Cutting a node off is setting its bridge-side veth
down: its address stays, packets to and from it are lost, exactly like a
pulled cable.

Names carry the runner's PID so runs at the same time never meet:
"fry<pid><seq>" then "b" (the bridge), "h<i>" (bridge side of node i),
"p<i>" (namespace side) or "n<i>" (the namespace), at most 14 bytes, under
the kernel's 15-byte limit for interface names. The /24 is derived from
the PID too (within 10.128.0.0/9) and taken only if no address or route
on the host overlaps it, under a lock file so two runs cannot take the
same one at once.

Cleanup always runs: close() (the context manager calls it), atexit, and
SIGTERM all remove what this run made, after ending the processes still
inside its namespaces by PID. A new Network also removes the leftovers of
earlier runs whose PID is dead (names with our prefix only), e.g. after a
SIGKILLed runner.

A host that cannot make namespaces (not root, no ip(8), no netns support)
raises NetnsUnavailable, an AssertionError: the test fails, never skips.
"""
import atexit
import fcntl
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import threading
import time

PREFIX = "fry"
# fry<pid><seq><kind><index>: seq a..z per process, kind b/h/p/n.
NAME_RE = re.compile(r"^" + PREFIX + r"(\d+)([a-z])([bhpn])(\d*)$")
POOL = ipaddress.ip_network("10.128.0.0/9")      # 32768 /24s to pick from
LOCK_PATH = "/run/lock/ferry-netns.lock"
IP_TIMEOUT = 20.0                                # one ip(8) command at most
NODE_HOST_BASE = 10                              # node i is .(10 + i)


class NetnsUnavailable(AssertionError):
    """This machine cannot build the test network (not root, no ip(8),
    or the kernel refuses namespaces). An AssertionError so that unittest
    counts a failure: cluster tests never skip to go green."""


def _ip(*args, check=True, ns=None, timeout=IP_TIMEOUT):
    """Runs ip(8) (inside namespace ns when given); returns its
    CompletedProcess. Raises RuntimeError with ip's message when check is
    true and it failed."""
    cmd = ["ip"]
    if ns is not None:
        cmd += ["netns", "exec", ns, "ip"]
    cmd += list(args)
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: "
                           f"{r.stderr.strip()}")
    return r


def pid_alive(pid):
    """True while a process pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_pids(pids, term_timeout=5.0):
    """SIGTERM each PID (SIGCONT too, in case it was stopped), SIGKILL
    what is left after term_timeout; waits (bounded) until they are
    gone."""
    pids = [p for p in pids if p != os.getpid()]
    for p in pids:
        for sig in (signal.SIGTERM, signal.SIGCONT):
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + term_timeout
    left = list(pids)
    while left and time.monotonic() < deadline:
        left = [p for p in left if _reap(p)]
        if left:
            time.sleep(0.05)
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5.0
    while left and time.monotonic() < deadline:
        left = [p for p in left if _reap(p)]
        if left:
            time.sleep(0.05)


def _reap(pid):
    """True while pid still runs. A zombie counts as gone; our own
    children are left for their Popen to reap, so it sees the status."""
    if not pid_alive(pid):
        return False
    # A zombie that is not our child counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def check_available():
    """Raises NetnsUnavailable saying why, unless we are root with ip(8)
    whose netns subcommand works."""
    if os.geteuid() != 0:
        raise NetnsUnavailable(
            "cluster tests need root: they create network namespaces, a "
            "bridge and veth pairs (run them as root, e.g. in a VM or "
            "container with CAP_NET_ADMIN and CAP_SYS_ADMIN)")
    if shutil.which("ip") is None:
        raise NetnsUnavailable("cluster tests need ip(8) from iproute2 "
                               "(apt-get install iproute2)")
    r = _ip("netns", "list", check=False)
    if r.returncode != 0:
        raise NetnsUnavailable(f"'ip netns list' failed: {r.stderr.strip()}")


def namespaces():
    """Names of all network namespaces ip(8) knows."""
    out = _ip("netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def links():
    """Names of all interfaces of the root namespace."""
    out = _ip("-o", "link", "show").stdout
    names = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@")[0])
    return names


def ours(names, pid=None):
    """The names in names made by this harness (by run pid if given)."""
    res = []
    for n in names:
        m = NAME_RE.match(n)
        if m and (pid is None or int(m.group(1)) == pid):
            res.append(n)
    return res


def ns_pids(ns):
    """PIDs of the processes inside namespace ns."""
    r = _ip("netns", "pids", ns, check=False)
    return [int(x) for x in r.stdout.split() if x.isdigit()]


def _remove_ns(ns):
    _kill_pids(ns_pids(ns))
    _ip("netns", "del", ns, check=False)


def sweep_leftovers():
    """Removes namespaces and links of earlier runs whose PID is dead
    (our prefix only), ending the processes left inside them by PID.
    Returns the names removed."""
    removed = []
    for ns in ours(namespaces()):
        if not pid_alive(int(NAME_RE.match(ns).group(1))):
            _remove_ns(ns)
            removed.append(ns)
    # Bridge-side veths vanish with their namespace end; delete any left,
    # then the bridges.
    for kind in "hpb":
        for name in ours(links()):
            m = NAME_RE.match(name)
            if m.group(3) == kind and not pid_alive(int(m.group(1))):
                _ip("link", "del", name, check=False)
                removed.append(name)
    return removed


def _used_networks():
    """IPv4 networks the host uses already: its addresses and routes (all
    tables), default routes left out."""
    used = []
    for args in (("-4", "-o", "addr", "show"),
                 ("-4", "route", "show", "table", "all")):
        out = _ip(*args, check=False).stdout
        for tok in re.findall(r"\b(\d+\.\d+\.\d+\.\d+(?:/\d+)?)", out):
            try:
                net = ipaddress.ip_network(tok, strict=False)
            except ValueError:
                continue
            if net.prefixlen > 0:
                used.append(net)
    return used


def _pick_subnet(pid, seq):
    """The first /24 from a PID-derived start in POOL that overlaps
    nothing on the host."""
    subnets = 1 << (24 - POOL.prefixlen)
    start = (pid * 26 + seq) % subnets
    used = _used_networks()
    for k in range(subnets):
        idx = (start + k * 7919) % subnets       # prime stride: spread out
        net = ipaddress.ip_network(
            (int(POOL.network_address) + (idx << 8), 24))
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError(f"no free /24 left in {POOL}")


_live = []                                       # Networks not closed yet
_live_lock = threading.Lock()
_seq = [0]
_hooks = []                                      # cleanup callables (LIFO)
_signal_installed = [False]


def add_cleanup(fn):
    """Runs fn at exit and on SIGTERM (before the networks are removed);
    used by etcdproc and ferrycluster for their processes. Returns fn."""
    _install_exit_hooks()
    with _live_lock:
        _hooks.append(fn)
    return fn


def remove_cleanup(fn):
    with _live_lock:
        if fn in _hooks:
            _hooks.remove(fn)


def cleanup_all():
    """Runs every pending cleanup hook, then closes every live Network."""
    with _live_lock:
        hooks = list(reversed(_hooks))
        _hooks.clear()
        nets = list(_live)
    for fn in hooks:
        try:
            fn()
        except Exception:                        # noqa: BLE001 - best effort
            pass
    for n in nets:
        n.close()


def _on_sigterm(signum, frame):
    cleanup_all()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install_exit_hooks():
    if _signal_installed[0]:
        return
    _signal_installed[0] = True
    atexit.register(cleanup_all)
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)


class Node:
    """One namespace of a Network: ns (its name), addr (its IPv4 address
    as a string), host_veth (the bridge side) and veth (its own side)."""

    def __init__(self, index, ns, addr, host_veth, veth):
        self.index = index
        self.ns = ns
        self.addr = addr
        self.host_veth = host_veth
        self.veth = veth

    def __repr__(self):
        return f"<netns node {self.index} {self.ns} {self.addr}>"


class Network:
    """A bridge and n namespaces on a private /24 (see the module doc).

    Network(n) builds it at once; use it as a context manager, or call
    close() (also run at exit and on SIGTERM). Nodes are numbered from 1:
    net.node(1).addr. net.bridge_addr is the root namespace's address on
    the bridge.
    """

    def __init__(self, n, sweep=True):
        check_available()
        _install_exit_hooks()
        if sweep:
            sweep_leftovers()
        with _live_lock:
            seq = _seq[0]
            _seq[0] += 1
        if seq >= 26:
            raise RuntimeError("more than 26 networks in one process")
        self.pid = os.getpid()
        self.tag = f"{PREFIX}{self.pid}{chr(ord('a') + seq)}"
        self.bridge = self.tag + "b"
        self.nodes = []
        self.closed = False
        self._made_ns = []
        self._made_links = []
        with _live_lock:
            _live.append(self)
        self.subnet = None
        self.bridge_addr = None
        try:
            self._build(n, seq)
        except BaseException as e:
            self.close()
            if isinstance(e, (OSError, RuntimeError,
                              subprocess.SubprocessError)):
                raise NetnsUnavailable(
                    f"could not build the test network: {e}") from e
            raise

    def _build(self, n, seq):
        os.makedirs(os.path.dirname(LOCK_PATH), exist_ok=True)
        with open(LOCK_PATH, "a") as lock:
            # The lock is held from choosing the /24 until its route
            # exists, so another run sees it as used.
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self.subnet = _pick_subnet(self.pid, seq)
                hosts = list(self.subnet.hosts())
                self.bridge_addr = str(hosts[0])
                self._made_links.append(self.bridge)
                _ip("link", "add", self.bridge, "type", "bridge",
                    "forward_delay", "0", "stp_state", "0")
                _ip("addr", "add", f"{self.bridge_addr}/24", "dev",
                    self.bridge)
                _ip("link", "set", self.bridge, "up")
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        for i in range(1, n + 1):
            self.nodes.append(self._add_node(i, str(hosts[NODE_HOST_BASE
                                                         + i - 1])))
        self._wait_reachable()

    def _add_node(self, i, addr):
        ns = f"{self.tag}n{i}"
        host = f"{self.tag}h{i}"
        peer = f"{self.tag}p{i}"
        self._made_ns.append(ns)
        _ip("netns", "add", ns)
        self._made_links.append(host)
        _ip("link", "add", host, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", ns)
        _ip("link", "set", host, "master", self.bridge)
        _ip("link", "set", host, "up")
        _ip("link", "set", "lo", "up", ns=ns)
        _ip("addr", "add", f"{addr}/24", "dev", peer, ns=ns)
        _ip("link", "set", peer, "up", ns=ns)
        return Node(i, ns, addr, host, peer)

    def _wait_reachable(self, timeout=10.0):
        """Waits until every namespace end is up with carrier."""
        deadline = time.monotonic() + timeout
        for nd in self.nodes:
            while True:
                out = _ip("-o", "link", "show", nd.veth, ns=nd.ns).stdout
                if "LOWER_UP" in out:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"veth '{nd.veth}' in '{nd.ns}' not "
                                       f"up after {timeout} s: {out}")
                time.sleep(0.05)

    # -- access
    def node(self, i):
        """Node i, counted from 1."""
        if not 1 <= i <= len(self.nodes):
            raise IndexError(f"no node {i} (1..{len(self.nodes)})")
        return self.nodes[i - 1]

    def __len__(self):
        return len(self.nodes)

    def names(self):
        """Every namespace and link name this network made."""
        return list(self._made_ns) + list(self._made_links) + \
            [nd.veth for nd in self.nodes]

    # -- commands inside a namespace
    def wrap(self, i, cmd):
        """cmd (a list) prefixed to run inside node i's namespace."""
        return ["ip", "netns", "exec", self.node(i).ns] + list(cmd)

    def popen(self, i, cmd, **kw):
        """subprocess.Popen of cmd inside node i's namespace. The PID is
        the command's own: ip netns exec execs it."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen(self.wrap(i, cmd), **kw)

    def run(self, i, cmd, timeout=30.0, **kw):
        """subprocess.run of cmd inside node i's namespace, bounded by
        timeout (TimeoutExpired past it); output captured as text unless
        told otherwise."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        if "stdout" not in kw and "stderr" not in kw:
            kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(self.wrap(i, cmd), timeout=timeout, **kw)

    # -- faults
    def cut(self, i):
        """Cuts node i off: its bridge-side veth goes down."""
        _ip("link", "set", self.node(i).host_veth, "down")

    def restore(self, i):
        """Joins node i again: its bridge-side veth comes back up."""
        _ip("link", "set", self.node(i).host_veth, "up")

    def is_cut(self, i):
        """True while node i's bridge-side veth is down."""
        out = _ip("-o", "link", "show", self.node(i).host_veth).stdout
        flags = re.search(r"<([^>]*)>", out)
        return not flags or "UP" not in flags.group(1).split(",")

    # -- cleanup
    def close(self):
        """Ends the processes left in our namespaces (by PID), removes
        the namespaces, veths and the bridge. Idempotent."""
        if self.closed:
            return
        self.closed = True
        for ns in self._made_ns:
            try:
                _remove_ns(ns)
            except (OSError, subprocess.SubprocessError):
                pass
        for name in reversed(self._made_links):
            try:
                if os.path.exists(f"/sys/class/net/{name}"):
                    _ip("link", "del", name, check=False)
            except (OSError, subprocess.SubprocessError):
                pass
        with _live_lock:
            if self in _live:
                _live.remove(self)

    def leftovers(self):
        """Names of ours still present on the host (empty after close)."""
        return [x for x in ours(namespaces() + links(), self.pid)
                if x.startswith(self.tag)]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<Network {self.tag} {self.subnet} {len(self.nodes)} nodes>"


__all__ = ["Network", "Node", "NetnsUnavailable", "check_available",
           "sweep_leftovers", "namespaces", "links", "ours", "ns_pids",
           "pid_alive",
           "add_cleanup", "remove_cleanup", "cleanup_all", "PREFIX"]
