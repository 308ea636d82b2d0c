/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the guest's freestanding programs (insmod.c, inbox.c) share: ARM
 * EABI system calls without a C library, and a message on stderr. Built
 * into each (loader.rs keys their builds by this file too).
 */
#ifndef HARNESS_FREESTANDING_H
#define HARNESS_FREESTANDING_H

#define NR_exit 1
#define NR_write 4
#define NR_open 5

static long sys(long nr, long a, long b, long c, long d, long e, long f)
{
	register long r0 asm("r0") = a;
	register long r1 asm("r1") = b;
	register long r2 asm("r2") = c;
	register long r3 asm("r3") = d;
	register long r4 asm("r4") = e;
	register long r5 asm("r5") = f;
	register long r7 asm("r7") = nr;

	asm volatile("svc #0" : "+r"(r0) : "r"(r1), "r"(r2), "r"(r3), "r"(r4), "r"(r5), "r"(r7) : "memory");
	return r0;
}

static unsigned long len(const char *s)
{
	unsigned long n = 0;

	while (s[n])
		n++;
	return n;
}

static void say(const char *s)
{
	sys(NR_write, 2, (long)s, len(s), 0, 0, 0);
}

/* The kernel starts a static executable with argc at sp, argv after it:
 * _start hands sp to start_c. */
asm(".text\n.arm\n.global _start\n.type _start, %function\n_start:\n\tmov r0, sp\n\tbl start_c\n");

#endif
