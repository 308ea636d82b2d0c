"""Probe helpers (issue 33, resume-delivery): not product code.

A QEMU child with its serial console on pipes, a minimal QMP client and a
minimal gdb remote-protocol client, all over unix sockets, so that the probes
measure the three ways of delivering a payload to a resumed guest with
nothing but the standard library.
"""

import json
import os
import signal
import socket
import subprocess
import threading
import time

KDIR = "/root/.cache/tiny4412-harness/kernels/exynos4210-215bf1f6a2b3e551"
ZIMAGE = KDIR + "/arch/arm/boot/zImage"
DTB = KDIR + "/arch/arm/boot/dts/samsung/exynos4210-smdkv310.dtb"
WORK = "/tmp/rdprobe"
INITRAMFS = WORK + "/initramfs.cpio"
# harness/run/src/guest/qemu.rs kernel_cmdline + configs/profiles/exynos4210.toml,
# plus mem=960M: the top 64 MiB of the board's 1 GiB (0x7c000000) is left out
# of the kernel's RAM, a mailbox the host writes and /init reads via /dev/mem.
CMDLINE = (
    "console=ttySAC0,115200n8 rdinit=/init printk.devkmsg=on loglevel=5 "
    "rcupdate.rcu_expedited=1 panic=-1 vmalloc=832M cpuidle.off=1 "
    "pd_ignore_unused clk_ignore_unused cryptomgr.notests mem=960M"
)
MAILBOX = 0x7C000000


def base_argv(qmp, extra=()):
    """The harness's argv for the exynos4210 profile (qemu.rs argv)."""
    return [
        "qemu-system-arm", "-M", "smdkc210", "-smp", "2",
        "-kernel", ZIMAGE, "-dtb", DTB, "-initrd", INITRAMFS,
        "-append", CMDLINE, "-nodefaults", "-serial", "stdio",
        "-display", "none", "-nic", "none", "-no-reboot",
        "-qmp", f"unix:{qmp},server=on,wait=off", *extra,
    ]


class Guest:
    """QEMU with the serial console on our pipes; output kept, timestamped."""

    def __init__(self, argv, log):
        self.argv = argv
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(log, "wb"), start_new_session=True)
        self.out = bytearray()
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            b = self.proc.stdout.read1(65536)
            if not b:
                return
            with self.cond:
                self.out += b
                self.cond.notify_all()

    def wait_for(self, needle, timeout, start=0):
        """Seconds (monotonic) when `needle` appears after offset `start`."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while needle.encode() not in self.out[start:]:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{needle!r} not seen; console tail: {bytes(self.out[-400:])!r}")
                self.cond.wait(left)
            return time.monotonic()

    def mark(self):
        with self.cond:
            return len(self.out)

    def send(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def ask(self, cmd, needle, timeout=30):
        """Types `cmd`; returns (seconds until `needle`, console text after)."""
        m = self.mark()
        t = time.monotonic()
        self.send(cmd)
        got = self.wait_for(needle, timeout, m)
        return got - t, bytes(self.out[m:]).decode(errors="replace")

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def connect_unix(path, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            s.settimeout(60)  # a dropped packet must not hang the probe
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


class Qmp:
    def __init__(self, path):
        self.sock = connect_unix(path)
        self.f = self.sock.makefile("rwb")
        self.events = []
        json.loads(self.f.readline())  # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.f.write(json.dumps(msg).encode() + b"\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r:
                raise RuntimeError(f"{name}: {r['error']}")
            return r["return"]

    def hmp(self, line):
        return self.cmd("human-monitor-command", **{"command-line": line})

    def wait_migration(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.cmd("query-migrate").get("status")
            if st in ("completed", "failed", "cancelled"):
                return st
            time.sleep(0.002)
        raise TimeoutError("migration did not finish")

    def wait_status(self, want, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.cmd("query-status")["status"]
            if st == want:
                return st
            time.sleep(0.002)
        raise TimeoutError(f"status never {want}")

    def close(self):
        self.sock.close()


class Gdb:
    """The gdb remote serial protocol, no-ack mode not assumed."""

    def __init__(self, path):
        self.sock = connect_unix(path)
        self.buf = b""

    def _recv_packet(self, ack=True):
        while True:
            i = self.buf.find(b"$")
            j = self.buf.find(b"#", i + 1) if i >= 0 else -1
            if i >= 0 and j >= 0 and len(self.buf) >= j + 3:
                body = self.buf[i + 1:j]
                self.buf = self.buf[j + 3:]
                if ack:
                    self.sock.sendall(b"+")
                return body.decode(errors="replace")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("gdb stub closed")
            self.buf += chunk

    def packet(self, body):
        data = body.encode() if isinstance(body, str) else body
        csum = sum(data) & 0xFF
        self.sock.sendall(b"$" + data + b"#%02x" % csum)
        return self._recv_packet()

    def write_mem(self, addr, data, chunk):
        """`M` packets of `chunk` bytes each; returns the packet count."""
        n = 0
        for off in range(0, len(data), chunk):
            part = data[off:off + chunk]
            r = self.packet(b"M%x,%x:" % (addr + off, len(part)) + part.hex().encode())
            if r != "OK":
                raise RuntimeError(f"M at {addr + off:#x}: {r!r}")
            n += 1
        return n

    def drain(self, wait=0.2):
        """Packets QEMU sent unasked: a client that connects while the guest
        runs stops it, and QEMU then sends a stop reply (T02...) at once."""
        got = []
        self.sock.settimeout(wait)
        try:
            while True:
                got.append(self._recv_packet())
        except (TimeoutError, socket.timeout):
            pass
        finally:
            self.sock.settimeout(60)
        return got

    def write_mem_pipelined(self, addr, data, chunk):
        """All `M` packets sent before their answers are awaited: QEMU's
        system-mode stub handles the stream in order and never waits for our
        acks, so a packet costs its parsing, not a round trip. The answers
        are read by a thread meanwhile: each is two tiny writes on QEMU's
        side, and unread they fill the unix socket's buffer (its accounting
        is per message, about 1 KiB each), QEMU blocks writing them and
        stops reading ours: unread, 512 KiB stalled. Returns the count."""
        out = bytearray()
        n = 0
        for off in range(0, len(data), chunk):
            part = data[off:off + chunk]
            body = b"M%x,%x:" % (addr + off, len(part)) + part.hex().encode()
            out += b"$" + body + b"#%02x" % (sum(body) & 0xFF)
            n += 1
        answers = []

        def read():
            try:
                for _ in range(n):
                    # No "+" acks: sent from this thread they would land
                    # inside a packet being sent (2 of 258 lost so); QEMU's
                    # system-mode stub does not wait for them.
                    answers.append(self._recv_packet(ack=False))
            except Exception as e:  # noqa: BLE001 (reported below)
                answers.append(repr(e))

        t = threading.Thread(target=read)
        t.start()
        self.sock.sendall(out)
        t.join(60)
        bad = [a for a in answers if a != "OK"]
        if len(answers) != n or bad:
            raise RuntimeError(f"pipelined M: {len(answers)} answers of {n}, not OK: {bad[:3]}")
        return n

    def close(self):
        self.sock.close()


def median(xs):
    s = sorted(xs)
    return s[len(s) // 2]


def loadavg():
    return open("/proc/loadavg").read().split()[:3]
