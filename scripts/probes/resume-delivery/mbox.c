/* Probe (issue 33, resume-delivery): not product code.
 * The guest's side of the mailbox: copies LEN bytes of guest-physical memory
 * at 0x7c000000 (above the kernel's mem=960M) to stdout through mmap of
 * /dev/mem; read() of /dev/mem stops at the end of lowmem on ARM.
 * usage: mbox LEN > FILE */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	size_t len = argc > 1 ? strtoul(argv[1], NULL, 0) : 0, done = 0;
	int fd = open("/dev/mem", O_RDONLY | O_SYNC);
	if (fd < 0 || len == 0 || len > (64u << 20)) {
		perror("mbox: /dev/mem or LEN");
		return 1;
	}
	const char *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0x7c000000);
	if (p == MAP_FAILED) {
		perror("mbox: mmap");
		return 1;
	}
	while (done < len) {
		ssize_t n = write(1, p + done, len - done);
		if (n <= 0) {
			perror("mbox: write");
			return 1;
		}
		done += (size_t)n;
	}
	return 0;
}
