// SPDX-License-Identifier: GPL-2.0
/*
 * inbox ADDR SIZE: waits for the harness to write a run into the resumed
 * guest's inbox, then copies it to standard output.
 *
 * The inbox is physical memory above the kernel's `mem=`, which the kernel
 * never uses; the host writes it through QEMU's gdb stub while the guest is
 * held (guest/inbox.rs, which owns the layout below). This program is what
 * the snapshot's guest runs when the snapshot is taken: it polls the header
 * until a run is there, checks the payload's length and CRC-32, and only
 * then writes the payload (a newc cpio) out. Exit 1, and nothing written,
 * for a payload that fails its checks.
 *
 * Layout (little-endian): magic "HRNSINBX" at 0, version 1 at 8, the
 * payload's length at 12, its CRC-32 (IEEE, as zlib's) at 16; the payload
 * at 4096.
 *
 * Freestanding (no C library: the cross compiler alone builds it), as
 * insmod.c: ARM EABI system calls, argv from the stack, no division.
 */
#include "freestanding.h"

#define NR_nanosleep 162
#define NR_mmap2 192
#define O_RDONLY_SYNC 04010000
#define PROT_READ 1
#define MAP_SHARED 1
#define PAYLOAD 4096
#define VERSION 1

/* A hexadecimal number, with or without 0x; 0 for anything else. */
static unsigned long hex(const char *s)
{
	unsigned long v = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	for (; *s; s++) {
		unsigned int d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			return 0;
		v = v << 4 | d;
	}
	return v;
}

static unsigned int le32(const volatile unsigned char *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (unsigned int)p[3] << 24;
}

static const char magic[8] = { 'H', 'R', 'N', 'S', 'I', 'N', 'B', 'X' };

static int arrived(const volatile unsigned char *h)
{
	int i;

	for (i = 0; i < 8; i++)
		if (h[i] != magic[i])
			return 0;
	return 1;
}

static unsigned int crc32(const volatile unsigned char *p, unsigned long n)
{
	static unsigned int table[256];
	unsigned int c = 0xffffffff;
	unsigned int i, k;

	for (i = 0; i < 256; i++) {
		unsigned int t = i;

		for (k = 0; k < 8; k++)
			t = t & 1 ? 0xedb88320 ^ t >> 1 : t >> 1;
		table[i] = t;
	}
	while (n--)
		c = table[(c ^ *p++) & 0xff] ^ c >> 8;
	return ~c;
}

static long map(long fd, unsigned long addr, unsigned long size)
{
	return sys(NR_mmap2, 0, size, PROT_READ, MAP_SHARED, fd, addr >> 12);
}

static int wait_and_copy(unsigned long addr, unsigned long size)
{
	/* 2 ms of the guest's time between looks: the run starts that soon. */
	static const long pause[2] = { 0, 2000000 };
	const volatile unsigned char *h, *all;
	unsigned long n, done = 0;
	long fd, w;

	fd = sys(NR_open, (long)"/dev/mem", O_RDONLY_SYNC, 0, 0, 0, 0);
	if (fd < 0) {
		say("inbox: cannot open /dev/mem (the kernel needs CONFIG_DEVMEM)\n");
		return 1;
	}
	h = (const volatile unsigned char *)map(fd, addr, PAYLOAD);
	if ((long)h < 0 && (long)h > -4096) {
		say("inbox: cannot map the inbox from /dev/mem\n");
		return 1;
	}
	while (!arrived(h))
		sys(NR_nanosleep, (long)pause, 0, 0, 0, 0, 0);
	n = le32(h + 12);
	if (le32(h + 8) != VERSION || n > size - PAYLOAD) {
		say("inbox: the header's version or length is not this program's\n");
		return 1;
	}
	all = (const volatile unsigned char *)map(fd, addr, PAYLOAD + n);
	if ((long)all < 0 && (long)all > -4096) {
		say("inbox: cannot map the payload from /dev/mem\n");
		return 1;
	}
	if (crc32(all + PAYLOAD, n) != le32(h + 16)) {
		say("inbox: the payload's CRC-32 is not the header's\n");
		return 1;
	}
	while (done < n) {
		w = sys(NR_write, 1, (long)(all + PAYLOAD + done), n - done, 0, 0, 0);
		if (w <= 0) {
			say("inbox: cannot write the payload out\n");
			return 1;
		}
		done += w;
	}
	return 0;
}

void __attribute__((used)) start_c(long *sp)
{
	unsigned long addr, size;
	char **argv = (char **)(sp + 1);

	if (sp[0] != 3) {
		say("Usage: inbox ADDR SIZE\n");
		sys(NR_exit, 2, 0, 0, 0, 0, 0);
	}
	addr = hex(argv[1]);
	size = hex(argv[2]);
	if (!addr || (addr & 0xfff) || size <= PAYLOAD) {
		say("inbox: ADDR must be page-aligned and SIZE above one page (hexadecimal)\n");
		sys(NR_exit, 2, 0, 0, 0, 0, 0);
	}
	sys(NR_exit, wait_and_copy(addr, size), 0, 0, 0, 0, 0);
}
