"""Small data-plane operations in the appliance's namespace: nft, conntrack, sysctls, GARP."""

from __future__ import annotations

import ctypes
import logging
import socket
import struct
import subprocess
import threading
from pathlib import Path

LOG = logging.getLogger(__name__)


class NftError(RuntimeError):
    """nft refused a transaction (nothing of it was applied)."""


def nft_apply(text: str) -> None:
    """Run ``text`` as one nft transaction: all of it or none of it."""
    result = subprocess.run(
        ["nft", "-f", "-"], input=text, capture_output=True, text=True, timeout=30
    )
    if result.returncode != 0:
        raise NftError(f"nft -f failed: {result.stderr.strip()}")


class _LibNftables:
    """libnftables in this process: the nft transaction without spawning ``nft`` (~10 ms
    of fork, exec and start-up on a loaded box). One context, used under a lock."""

    def __init__(self) -> None:
        lib = ctypes.CDLL("libnftables.so.1")
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        for name in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
            getattr(lib, name).restype = ctypes.c_int
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        for name in ("nft_ctx_get_error_buffer", "nft_ctx_get_output_buffer"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
            getattr(lib, name).restype = ctypes.c_char_p
        ctx = lib.nft_ctx_new(0)  # NFT_CTX_DEFAULT
        if not ctx:
            raise OSError("nft_ctx_new failed")
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        self.lib, self.ctx, self.lock = lib, ctx, threading.Lock()

    def run(self, text: str) -> None:
        with self.lock:
            rc = self.lib.nft_run_cmd_from_buffer(self.ctx, text.encode())
            err = self.lib.nft_ctx_get_error_buffer(self.ctx) or b""  # read: emptied for the next
            self.lib.nft_ctx_get_output_buffer(self.ctx)
        if rc != 0:
            raise NftError(f"nft -f failed: {err.decode(errors='replace').strip()}")


_LIBNFT: list[_LibNftables | None] = []


def nft_apply_small(text: str) -> None:
    """Run ``text`` (a few element operations) as one nft transaction, in this process when
    libnftables can be loaded, else by ``nft -f``: all of it or none of it."""
    lib = _libnft()
    if lib is None:
        nft_apply(text)
    else:
        lib.run(text)


def _libnft() -> _LibNftables | None:
    """The process's libnftables context (None if the library cannot be loaded)."""
    if not _LIBNFT:
        try:
            _LIBNFT.append(_LibNftables())
        except (OSError, AttributeError) as exc:
            LOG.warning("libnftables not usable (%s): running nft", exc)
            _LIBNFT.append(None)
    return _LIBNFT[0]


class NftRun:
    """One nft transaction started by :func:`nft_start`: in libnftables on a thread of this
    process (ctypes lets go of the GIL for the call, so Python runs meanwhile; no ``nft`` to
    fork, exec and start), or in an ``nft -f`` process when the library cannot be loaded."""

    def __init__(self, text: str) -> None:
        self.error: NftError | None = None
        self.proc: subprocess.Popen[str] | None = None
        self.thread: threading.Thread | None = None
        lib = _libnft()
        if lib is None:
            self.proc = _nft_spawn(text)
            return
        self.thread = threading.Thread(target=self._run, args=(lib, text), name="nft",
                                       daemon=True)  # fmt: skip
        self.thread.start()

    def _run(self, lib: _LibNftables, text: str) -> None:
        try:
            lib.run(text)
        except NftError as exc:
            self.error = exc

    def wait(self) -> None:
        if self.proc is not None:
            _nft_wait_process(self.proc)
            return
        assert self.thread is not None
        self.thread.join(timeout=30)
        if self.thread.is_alive():
            raise NftError("nft transaction timed out")
        if self.error is not None:
            raise self.error


def nft_start(text: str) -> NftRun:
    """Start ``text`` as one nft transaction; :func:`nft_wait` for its outcome."""
    return NftRun(text)


def nft_wait(run: NftRun) -> None:
    """Wait for a transaction from :func:`nft_start`; raise NftError if nft refused it."""
    run.wait()


def _nft_spawn(text: str) -> subprocess.Popen[str]:
    pipe = subprocess.PIPE
    proc = subprocess.Popen(
        ["nft", "-f", "-"], stdin=pipe, stdout=subprocess.DEVNULL, stderr=pipe, text=True
    )
    assert proc.stdin is not None and proc.stderr is not None
    try:
        proc.stdin.write(text)
        proc.stdin.close()
    except BrokenPipeError:  # nft exited early: its stderr says why
        pass
    proc.stdin = None  # written and closed: communicate() only reads
    return proc


def _nft_wait_process(proc: subprocess.Popen[str]) -> None:
    try:
        _, err = proc.communicate(timeout=30)  # select() on stderr: no polling with sleeps
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise NftError("nft -f timed out") from None
    if proc.returncode != 0:
        raise NftError(f"nft -f failed: {err.strip()}")


def nft_ruleset() -> str:
    """The live ruleset of this namespace, as text."""
    return subprocess.run(
        ["nft", "list", "ruleset"], capture_output=True, text=True, timeout=30, check=True
    ).stdout


def enable_forwarding() -> None:
    """Route IPv4 and IPv6 (per-namespace sysctls)."""
    for path in ("/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"):
        p = Path(path)
        if p.read_text().strip() != "1":
            p.write_text("1\n")


CONNTRACK_BATCH = 8  # addresses flushed side by side: at most twice as many processes at once


def flush_conntrack(addresses: list[str], batch: int = CONNTRACK_BATCH) -> None:
    """Drop the conntrack entries of ``addresses`` in either direction (removed floating IPs).

    The deletions run side by side in bounded batches (``batch`` addresses, two ``conntrack
    -D`` each: every one walks the whole table), never one process pair per address at once:
    removing a thousand floating IPs must not fork two thousand processes on a small box.
    When the kernel's table is readable (``/proc/net/nf_conntrack``, this namespace's) and
    shows no entry with an IPv4 address of ``addresses``, there is nothing to delete and
    nothing is spawned.
    """
    addresses = _maybe_tracked(addresses)
    for start in range(0, len(addresses), max(1, batch)):
        _flush_batch(addresses[start : start + max(1, batch)])


def _flush_batch(addresses: list[str]) -> None:
    procs = [
        subprocess.Popen(["conntrack", "-D", flag, address], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
        for address in addresses
        for flag in ("--orig-dst", "--reply-dst")
    ]  # fmt: skip
    for proc in procs:
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if proc.returncode not in (0, 1):  # 1: nothing matched, not an error
            LOG.warning("%s: %s", " ".join(map(str, proc.args)), err.strip())  # type: ignore[arg-type]


def send_garp(ifname: str, mac: str, addresses: list[str]) -> None:
    """Broadcast one gratuitous ARP request per address, announcing it at ``mac`` on ``ifname``.

    The requests are sent before this returns; the packet socket is closed in the background
    (closing one waits for the kernel's RCU grace period: milliseconds on a loaded box).
    """
    hw = bytes.fromhex(mac.replace(":", ""))
    head = b"\xff" * 6 + hw + struct.pack("!H", 0x0806) + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    try:
        sock.bind((ifname, 0))
        for address in addresses:
            ip = socket.inet_aton(address)
            sock.send(head + hw + ip + b"\x00" * 6 + ip)
    finally:
        threading.Thread(target=sock.close, name="garp-close", daemon=True).start()


def _maybe_tracked(addresses: list[str]) -> list[str]:
    """``addresses`` less the IPv4 ones no conntrack entry mentions (all of them if unsure)."""
    try:
        table = Path("/proc/net/nf_conntrack").read_text()
    except OSError:
        return addresses
    # IPv4 entries show ``src=a.b.c.d dst=...``; IPv6 ones a format of their own: always ask.
    return [a for a in addresses if ":" in a or f"={a} " in table]
