// SPDX-License-Identifier: GPL-2.0
/*
 * insmod FILE [OPTION...]: loads a module with one init_module(2), as the
 * board's busybox does on Linux 3.5.
 *
 * busybox's insmod tries finit_module(2) first and, when that fails for any
 * reason, calls init_module(2) with the same file: on 6.x a module whose
 * init fails has its init run twice. Linux 3.5 has no finit_module
 * (ENOSYS), so on the board init_module is the only call and init runs
 * once. The QEMU guest loads with this instead (HARNESS_INSMOD, steps.sh);
 * its messages and exit status are busybox's (the status is the errno, the
 * message busybox's moderror() over glibc's strerror()).
 *
 * Freestanding (no C library: the cross compiler alone builds it, and the
 * guest gets a few KiB): ARM EABI system calls, argv from the stack.
 */
#include "freestanding.h"

#define NR_mmap2 192
#define NR_fstat64 197
#define NR_init_module 128
#define O_RDONLY_CLOEXEC 02000000
#define PROT_READ 1
#define MAP_PRIVATE 2

/* busybox's moderror(), then glibc's strerror() for the errors a load gives. */
static const char *moderror(long err)
{
	switch (err) {
	case 8: return "invalid module format";
	case 2: return "unknown symbol in module, or unknown parameter";
	case 3: return "unknown symbol in module";
	case 22: return "invalid module parameters";
	case 17: return "module already loaded";
	case 1: return "Operation not permitted";
	case 5: return "Input/output error";
	case 6: return "No such device or address";
	case 11: return "Resource temporarily unavailable";
	case 12: return "Cannot allocate memory";
	case 13: return "Permission denied";
	case 14: return "Bad address";
	case 16: return "Device or resource busy";
	case 19: return "No such device";
	case 24: return "Too many open files";
	case 28: return "No space left on device";
	case 34: return "Numerical result out of range";
	case 38: return "Function not implemented";
	case 95: return "Operation not supported";
	case 110: return "Connection timed out";
	default: return 0;
	}
}

static void fail(const char *what, const char *file, long err)
{
	static const long tens[] = { 1000, 100, 10, 1 };
	const char *why = moderror(err);
	char num[6];
	int i, n = 0;

	say("insmod: ");
	say(what);
	say(" '");
	say(file);
	say("': ");
	if (why) {
		say(why);
	} else {
		/* An errno is below 4096; no division (no libgcc). */
		for (i = 0; i < 4; i++) {
			char d = '0';

			while (err >= tens[i]) {
				err -= tens[i];
				d++;
			}
			if (n || d != '0' || i == 3)
				num[n++] = d;
		}
		num[n] = 0;
		say("Unknown error ");
		say(num);
	}
	say("\n");
}

/* struct stat64 on 32-bit ARM EABI: st_size is the 64-bit field at 48. */
struct stat64_arm {
	unsigned char pad[48];
	long long size;
	unsigned char rest[48];
};

/* busybox joins the options with a space after each. */
static char options[4096];

static long load(int argc, char **argv)
{
	struct stat64_arm st;
	unsigned long n = 0, l;
	long fd, image, rc;
	int i;

	if (argc < 2) {
		say("Usage: insmod FILE [SYMBOL=VALUE]...\n");
		return 1;
	}
	for (i = 2; i < argc; i++) {
		l = len(argv[i]);
		if (n + l + 2 > sizeof(options)) {
			say("insmod: options too long\n");
			return 7;
		}
		for (unsigned long k = 0; k < l; k++)
			options[n++] = argv[i][k];
		options[n++] = ' ';
	}
	fd = sys(NR_open, (long)argv[1], O_RDONLY_CLOEXEC, 0, 0, 0, 0);
	if (fd < 0) {
		fail("can't open", argv[1], -fd);
		return 1;
	}
	rc = sys(NR_fstat64, fd, (long)&st, 0, 0, 0, 0);
	if (rc < 0) {
		fail("can't read", argv[1], -rc);
		return 1;
	}
	image = sys(NR_mmap2, 0, (long)st.size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (image < 0 && image > -4096) {
		fail("can't read", argv[1], -image);
		return 1;
	}
	rc = sys(NR_init_module, image, (long)st.size, (long)options, 0, 0, 0);
	if (rc < 0) {
		fail("can't insert", argv[1], -rc);
		return -rc;
	}
	return 0;
}

void __attribute__((used)) start_c(long *sp)
{
	sys(NR_exit, load((int)sp[0], (char **)(sp + 1)), 0, 0, 0, 0, 0);
}
