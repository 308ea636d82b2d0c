#!/usr/bin/env python3
"""Probe (issue 33, resume-delivery): not product code.

Measures, on the exynos4210 profile's cached kernel with a tiny busybox
initramfs (mkinitramfs.sh), the bare boot, a snapshot (QMP stop + migrate to
a file), a resume (-incoming + -S) and three ways of delivering a per-run
payload to the resumed guest: (1) the gdb stub's `M` writes in physical
memory mode, (2) guest RAM from a shared memory-backend-file, (3) an SD
card's medium changed over QMP. Prints every raw number and writes them as
JSON to /tmp/rdprobe/results.json.

usage: measure.py [phase ...]   (phases: boot resume gdb shared sd; default all)
"""

import hashlib
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DTB, INITRAMFS, MAILBOX, WORK, ZIMAGE, Gdb, Guest, Qmp,  # noqa: E402
                    base_argv, loadavg, median)

N = 5
SNAP = WORK + "/snap.bin"
QMP = WORK + "/q.sock"
GDB = WORK + "/gdb.sock"
SIZES = [64 << 10, 512 << 10, 2 << 20]
# The largest `M` packet QEMU 7.2 takes: qSupported says PacketSize=1000
# (hex, 4096); the body must stay under 4095 characters, and
# "M7c000000,7f8:" is 14 of them, so 2040 bytes of data (4080 hex digits).
# A longer packet is dropped without a reply.
CHUNK = 2040
R = {"loadavg": {}}


def log(*a):
    print(*a, flush=True)


def echo_time(g, tag):
    """Seconds from typing a line until the guest's shell has evaluated it."""
    dt, _ = g.ask(f"echo {tag}-$((6*7))", f"{tag}-42")
    return dt


def phase_boot():
    boots, snaps, sizes, echoes = [], [], [], []
    for i in range(N):
        g = Guest(base_argv(QMP), f"{WORK}/boot{i}.err")
        try:
            boots.append(g.wait_for("PROBE-READY", 120) - g.t0)
            echoes.append(echo_time(g, "B"))
            q = Qmp(QMP)
            t = time.monotonic()
            q.cmd("stop")
            q.cmd("migrate", uri=f"exec:cat > {SNAP}")
            st = q.wait_migration()
            snaps.append(time.monotonic() - t)
            sizes.append(os.path.getsize(SNAP))
            assert st == "completed", st
        finally:
            g.kill()
        log(f"boot {i}: ready {boots[-1]:.3f} s, echo {echoes[-1]:.3f} s, "
            f"stop+migrate {snaps[-1]:.3f} s, {sizes[-1]} bytes")
    R["boot"] = {"ready_s": boots, "echo_s": echoes, "snapshot_s": snaps, "snapshot_bytes": sizes}


def resume(tag, extra=()):
    """A QEMU resumed from SNAP, held paused (-S); returns (guest, qmp, s)."""
    argv = base_argv(QMP, ["-incoming", f"exec:cat {SNAP}", "-S",
                           "-gdb", f"unix:{GDB},server=on,wait=off", *extra])
    g = Guest(argv, f"{WORK}/{tag}.err")
    q = Qmp(QMP)
    st = q.wait_migration()
    assert st == "completed", st
    q.wait_status("paused")
    return g, q, time.monotonic() - g.t0


def phase_resume():
    ready, answer = [], []
    for i in range(N):
        g, q, dt = resume(f"resume{i}")
        try:
            ready.append(dt)
            m = g.mark()
            t = time.monotonic()
            q.cmd("cont")
            g.send("echo R-$((6*7))")
            answer.append(g.wait_for("R-42", 30, m) - t)
        finally:
            g.kill()
        log(f"resume {i}: paused+completed {ready[-1]:.3f} s after spawn, cont->echo {answer[-1]:.3f} s")
    R["resume"] = {"ready_s": ready, "cont_to_echo_s": answer}


def verify_host(q, size, data):
    """QEMU's own view of guest-physical memory equals what was written."""
    dump = f"{WORK}/pmem.bin"
    q.cmd("pmemsave", val=MAILBOX, size=size, filename=dump)
    with open(dump, "rb") as f:
        assert f.read() == data, "pmemsave differs from the payload"
    return q.hmp(f"xp /4xw {MAILBOX:#x}").strip()


def verify_guest(g, size, data):
    """The resumed guest reads the first and last word through /dev/mem."""
    last = MAILBOX + size - 4
    _, out = g.ask(f"devmem {MAILBOX:#x} 32; devmem {last:#x} 32; echo V-$((6*7))", "V-42")
    answer = out.split("V-$((6*7))", 1)[1]  # past the tty's echo of the command
    words = [w for w in answer.split() if w.startswith("0x") and len(w) == 10]
    want = [f"0x{int.from_bytes(data[:4], 'little'):08X}", f"0x{int.from_bytes(data[-4:], 'little'):08X}"]
    assert words == want, (words, want)
    return words


def guest_read(g, size, data):
    """The whole payload read back in the guest by mbox (mmap of /dev/mem):
    seconds from typing the command to its answer, and whether it is equal."""
    dt, _ = g.ask(f"mbox {size} > /payload; echo K-$((6*7))", "K-42")
    _, out = g.ask("md5sum /payload; rm /payload; echo H-$((6*7))", "H-42")
    return dt, hashlib.md5(data).hexdigest() in out


def gdb_once(size, i, pipelined=False):
    data = os.urandom(size)
    g, q, _ = resume(f"gdb{size}-{i}")
    try:
        t0 = time.monotonic()
        d = Gdb(GDB)
        d.packet("qSupported:multiprocess+;xmlRegisters=arm")
        assert d.packet("Qqemu.PhyMemMode:1") == "OK"
        t1 = time.monotonic()
        write = d.write_mem_pipelined if pipelined else d.write_mem
        packets = write(MAILBOX, data, CHUNK)
        t2 = time.monotonic()
        # With multiprocess+ agreed (as gdb itself does), QEMU 7.2 answers a
        # bare "D" with E22 and wants the process: "D;1".
        assert d.packet("D;1") == "OK"
        d.close()
        t3 = time.monotonic()
        after_detach = q.cmd("query-status")["status"]
        xp = verify_host(q, size, data)
        d2 = Gdb(GDB)  # a second client after the detach
        unasked = d2.drain()
        status_second = q.cmd("query-status")["status"]
        second = d2.packet("qSupported")  # no multiprocess+ asked for this time
        # QEMU keeps multiprocess from the first client: a bare "D" still
        # gets E22 (7.2 never resets the flag on a new connection).
        bare_d = d2.packet("D")
        if bare_d != "OK":
            assert d2.packet("D;1") == "OK"
        d2.close()
        if q.cmd("query-status")["status"] != "running":
            q.cmd("cont")
        words = verify_guest(g, size, data)
        echo = echo_time(g, "G")
        read_s, md5_ok = guest_read(g, size, data)
    finally:
        g.kill()
    return {"connect_s": t1 - t0, "write_s": t2 - t1, "detach_s": t3 - t2, "total_s": t3 - t0,
            "packets": packets, "status_after_detach": after_detach, "xp": xp,
            "second_client_qSupported": second, "second_client_unasked": unasked,
            "status_with_second_client": status_second,
            "second_client_bare_D": bare_d, "guest_words": words, "echo_after_s": echo,
            "guest_read_s": read_s, "guest_md5_ok": md5_ok}


def phase_gdb():
    for key, pipelined in (("gdb", False), ("gdb_pipelined", True)):
        gdb_sizes(key, pipelined)


def gdb_sizes(key, pipelined):
    R[key] = {}
    for size in SIZES:
        runs = []
        for i in range(N):
            runs.append(gdb_once(size, i, pipelined))
            r = runs[-1]
            log(f"{key} {size >> 10} KiB #{i}: write {r['write_s']:.4f} s in {r['packets']} packets, "
                f"total {r['total_s']:.4f} s, after D: {r['status_after_detach']}, 2nd client: "
                f"{r['status_with_second_client']} {r['second_client_unasked']} bare D {r['second_client_bare_D']!r}, "
                f"guest {r['guest_words']}, mbox read {r['guest_read_s']:.3f} s equal={r['guest_md5_ok']}")
        R[key][str(size)] = runs
        log(f"{key} {size >> 10} KiB: median total {median([r['total_s'] for r in runs]):.4f} s")


def phase_shared():
    """Does smdkc210 put its RAM in the memory-backend? (QEMU 7.2)"""
    img = WORK + "/ram.img"
    subprocess.run(["truncate", "-s", "0", img], check=True)
    subprocess.run(["truncate", "-s", "1G", img], check=True)
    with open(img, "r+b") as f:  # a marker where the guest's 0x7c000000 would be
        f.seek(MAILBOX - 0x40000000)
        f.write(b"SHRD")
    argv = [a for a in base_argv(QMP) if a != "smdkc210"]
    i = argv.index("-M")
    argv[i + 1:i + 1] = ["smdkc210,memory-backend=ram"]
    argv += ["-object", f"memory-backend-file,id=ram,size=1G,mem-path={img},share=on", "-S"]
    g = Guest(argv, WORK + "/shared.err")
    try:
        q = Qmp(QMP)
        mtree = [ln.strip() for ln in q.hmp("info mtree -f").splitlines() if "40000000-" in ln]
        ramblocks = q.hmp("info ramblock")
        xp = q.hmp(f"xp /1xw {MAILBOX:#x}").strip()
        maps = [ln.split()[-1] for ln in open(f"/proc/{g.proc.pid}/maps") if "ram.img" in ln]
    finally:
        g.kill()
    log("shared: guest RAM at 0x40000000 is", mtree, "| xp of the marker:", xp, "| file mapped:", maps)
    log(ramblocks)
    R["shared"] = {"argv": argv, "mtree_0x40000000": mtree, "ramblock": ramblocks, "xp_marker": xp,
                   "file_mapped_by_qemu": maps}
    copy_costs()


def copy_costs():
    """What a private copy of a booted guest's 1 GiB RAM file would cost per run."""
    g = Guest(base_argv(QMP), WORK + "/ramdump.err")
    ram = WORK + "/ram-booted.bin"
    try:
        g.wait_for("PROBE-READY", 120)
        q = Qmp(QMP)
        q.cmd("stop")
        q.cmd("pmemsave", val=0x40000000, size=0x40000000, filename=ram + ".full")
    finally:
        g.kill()
    subprocess.run(["cp", "--sparse=always", ram + ".full", ram], check=True)
    os.unlink(ram + ".full")
    used = int(subprocess.run(["du", "-B1", ram], capture_output=True, text=True).stdout.split()[0])
    out = {"allocated_bytes": used}
    for name, dst in (("ext4", WORK + "/ram-copy.bin"), ("shm", "/dev/shm/rdprobe-ram-copy.bin")):
        ts = []
        for _ in range(N):
            t = time.monotonic()
            subprocess.run(["cp", "--sparse=always", ram, dst], check=True)
            ts.append(time.monotonic() - t)
            os.unlink(dst)
        out[name + "_copy_s"] = ts
        log(f"shared: private copy of the booted RAM file ({used >> 20} MiB allocated) on {name}: "
            f"median {median(ts):.3f} s {ts}")
    os.unlink(ram)
    R["shared"]["copy"] = out


def phase_sd():
    img = WORK + "/sd.img"
    imgs = []
    for size in SIZES:
        p = f"{WORK}/sd-{size}.img"
        with open(p, "wb") as f:
            f.write(os.urandom(size))
        imgs.append(p)
    with open(img, "wb") as f:
        f.write(b"\0" * (512 << 10))
    # The smdkv310 dtb enables sdhci_2 only, the third controller: index=2.
    g = Guest(base_argv(QMP, ["-drive", f"if=sd,index=2,id=sd0,format=raw,file={img}"]), WORK + "/sd.err")
    try:
        g.wait_for("PROBE-READY", 120)
        q = Qmp(QMP)
        block = q.cmd("query-block")
        dev = block[0]["device"] if block else None
        times = {}
        for size, p in zip(SIZES, imgs):
            ts = []
            for _ in range(N):
                t = time.monotonic()
                q.cmd("blockdev-change-medium", device=dev, filename=p, format="raw")
                ts.append(time.monotonic() - t)
            times[str(size)] = ts
            log(f"sd: blockdev-change-medium to {size >> 10} KiB image: median {median(ts) * 1000:.2f} ms {ts}")
        _, seen = g.ask("ls /sys/block /sys/class/mmc_host /dev/mmc* 2>&1; grep -i -E 'mmc|sdhci|block' "
                        "/proc/devices; dmesg | grep -i -E 'mmc|sdhci'; echo S-$((6*7))", "S-42")
    finally:
        g.kill()
    log("sd: the guest sees:", seen)
    R["sd"] = {"query_block": [b.get("device") for b in block], "change_s": times, "guest": seen}


def main():
    phases = sys.argv[1:] or ["boot", "resume", "gdb", "shared", "sd"]
    os.makedirs(WORK, exist_ok=True)
    for p in phases:
        R["loadavg"][p + "_before"] = loadavg()
        globals()["phase_" + p]()
        R["loadavg"][p + "_after"] = loadavg()
        log(p, "loadavg before/after:", R["loadavg"][p + "_before"], R["loadavg"][p + "_after"])
    R["kernel"], R["dtb"], R["initramfs"] = ZIMAGE, DTB, INITRAMFS
    out = f"{WORK}/results-{'-'.join(phases)}.json"
    with open(out, "w") as f:
        json.dump(R, f, indent=1)
    log("wrote", out)


if __name__ == "__main__":
    main()
