#!/usr/bin/env python3
"""Probe (issue 33, resume-delivery): not product code.

The gdb stub's corner cases that the delivery design depends on, each on a
guest resumed from measure.py's snapshot (run `measure.py boot` first):
binary `X` writes, the largest `M` packet, a client that closes without
detaching, `cont` after a detach, moving the stub to another socket over the
monitor (for `check --gdb`), and what busybox devmem costs a word in the guest.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import MAILBOX, WORK, Gdb  # noqa: E402
import measure  # noqa: E402


def log(*a):
    print(*a, flush=True)


def packet_limits():
    g, q, _ = measure.resume("x-limits")
    try:
        d = Gdb(measure.GDB)
        log("qSupported:", d.packet("qSupported:multiprocess+"))
        d.packet("Qqemu.PhyMemMode:1")
        log("X (binary write) answer:", repr(d.packet(b"X7c000000,4:abcd")), "(empty: not supported)")
        for n in (2040, 2041):
            body = b"M%x,%x:" % (MAILBOX, n) + b"ab" * n
            d.sock.settimeout(2)
            try:
                r = d.packet(body)
            except (TimeoutError, OSError) as e:
                r = f"no answer within 2 s ({type(e).__name__}): dropped"
            log(f"M with {n} bytes ({len(body)} characters of body):", r)
            if not r.startswith("OK"):
                break
    finally:
        g.kill()


def close_without_detach():
    g, q, _ = measure.resume("x-close")
    try:
        d = Gdb(measure.GDB)
        d.packet("qSupported:multiprocess+")
        d.packet("Qqemu.PhyMemMode:1")
        d.write_mem(MAILBOX, b"\x11" * 4096, measure.CHUNK)
        d.close()
        time.sleep(0.2)
        log("status after a close without D:", q.cmd("query-status")["status"])
        log("QMP cont:", q.cmd("cont"), "->", q.cmd("query-status")["status"])
        log("cont on a running guest:", q.cmd("cont"))
        log("guest answers after close+cont in", f"{measure.echo_time(g, 'C'):.3f} s")
    finally:
        g.kill()


def move_stub_and_devmem():
    g, q, _ = measure.resume("x-move")
    try:
        d = Gdb(measure.GDB)
        d.packet("qSupported:multiprocess+")
        d.packet("Qqemu.PhyMemMode:1")
        d.write_mem(MAILBOX, bytes(range(256)) * 16, measure.CHUNK)
        log("D;1:", d.packet("D;1"), "->", q.cmd("query-status")["status"])
        d.close()
        other = WORK + "/gdb-user.sock"
        if os.path.exists(other):
            os.unlink(other)  # a stale socket of an earlier run would pass for the new one
        spec = f"unix:{other},server=on,wait=off"
        log("HMP gdbserver:", repr(q.hmp(f"gdbserver {spec}")))
        if not os.path.exists(other):
            log("HMP gdbserver none:", repr(q.hmp("gdbserver none")))
            log("HMP gdbserver again:", repr(q.hmp(f"gdbserver {spec}")))
        if not os.path.exists(other):
            log("the stub cannot move: the old socket stays;", "connecting there instead")
            other = measure.GDB
        d2 = Gdb(other)
        log("a client on the new socket: unasked", d2.drain(), "status", q.cmd("query-status")["status"],
            "qSupported", d2.packet("qSupported:multiprocess+"))
        log("  register read works:", d2.packet("g")[:24] + "...")
        log("  D;1:", d2.packet("D;1"), "->", q.cmd("query-status")["status"])
        d2.close()
        loop = ("time sh -c 'i=0; while [ $i -lt 256 ]; do devmem 0x7c000000 32 >/dev/null; "
                "i=$((i+1)); done'; echo M-$((6*7))")
        dt, out = g.ask(loop, "M-42", timeout=120)
        log(f"guest: 256 busybox devmem reads took {dt:.3f} s wall;", out.strip().splitlines()[-2:])
    finally:
        g.kill()


if __name__ == "__main__":
    for f in (packet_limits, close_without_detach, move_stub_and_devmem):
        log("==", f.__name__)
        f()
