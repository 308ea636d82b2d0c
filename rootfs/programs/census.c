// SPDX-License-Identifier: GPL-2.0
/*
 * census [ROOT [BEFORE]]: what the kernel lists as registered, one `KIND TEXT` line
 * an entry, exactly as steps.sh's harness_census_lists and
 * harness_census_trees print it (a test runs both on one tree and compares):
 * the QEMU guest's census takes this instead of the shell functions, which
 * took 1.3 s of emulated time a census (the shell reads a byte a system
 * call and forks for each pipe), this 0.3 s. A board without it runs the
 * shell functions. ROOT stands for / (the host-side tests' stand-ins).
 *
 * With BEFORE (an earlier census's file), it also tells whether this one
 * is the same, byte for byte: exit 0 if so, 3 if not (or if its own output
 * is no file it can read back), so that steps.sh's second census needs no
 * cmp (a fork and an exec, 30-40 ms of emulated time each).
 *
 * Static, with the cross compiler's C library.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *root = "";

/* A line of `path` at a time into `line` (its newline removed); 0 at the
 * end. A last line without a newline is not one (as the shell's `read`). */
static int next_line(FILE *f, char *line, size_t size)
{
	size_t n;

	if (!fgets(line, size, f))
		return 0;
	n = strlen(line);
	if (n == 0 || line[n - 1] != '\n')
		return 0;
	line[n - 1] = 0;
	return 1;
}

static FILE *open_under(const char *path)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s%s", root, path);
	return fopen(p, "r");
}

/* The shell's `read -r a b`: a is the first field, b the rest, both
 * without the blanks around them. */
static void fields(char *line, char **a, char **b)
{
	char *end;

	while (*line == ' ' || *line == '\t')
		line++;
	*a = line;
	while (*line && *line != ' ' && *line != '\t')
		line++;
	if (*line)
		*line++ = 0;
	while (*line == ' ' || *line == '\t')
		line++;
	*b = line;
	end = line + strlen(line);
	while (end > line && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = 0;
}

static void devices(void)
{
	char line[1024], *a, *b;
	const char *kind = NULL;
	FILE *f = open_under("/proc/devices");

	if (!f)
		return;
	while (next_line(f, line, sizeof(line))) {
		size_t n;

		fields(line, &a, &b);
		n = strlen(a);
		if (!strcmp(a, "Character"))
			kind = "chrdev";
		else if (!strcmp(a, "Block"))
			kind = "blkdev";
		else if (n && a[n - 1] >= '0' && a[n - 1] <= '9' && kind)
			printf("%s %s %s\n", kind, a, b);
	}
	fclose(f);
}

static void misc(void)
{
	char line[1024], *a, *b;
	FILE *f = open_under("/proc/misc");

	if (!f)
		return;
	while (next_line(f, line, sizeof(line))) {
		fields(line, &a, &b);
		printf("misc %s %s\n", a, b);
	}
	fclose(f);
}

/* steps.sh's sed on /proc/interrupts: a line `  N:` with its counts (the
 * spaces and digits after the colon) becomes `irq N `, each run of spaces
 * one space, and only those lines are printed. */
static void interrupts(void)
{
	char line[4096], out[4200], *p, *q;
	FILE *f = open_under("/proc/interrupts");

	if (!f)
		return;
	while (next_line(f, line, sizeof(line))) {
		p = line;
		while (*p == ' ')
			p++;
		q = p;
		while (*q >= '0' && *q <= '9')
			q++;
		if (q == p || *q != ':')
			continue;
		*q++ = 0;
		while (*q == ' ' || (*q >= '0' && *q <= '9'))
			q++;
		snprintf(out, sizeof(out), "irq %s %s", p, q);
		for (p = q = out; *p; p++)
			if (*p != ' ' || q == out || q[-1] != ' ')
				*q++ = *p;
		*q = 0;
		printf("%s\n", out);
	}
	fclose(f);
}

/* steps.sh's sed on debug objects' stats: `warnings : N` as `odebug N`. */
static void odebug(void)
{
	char line[1024], *p, *digits;
	FILE *f = open_under("/sys/kernel/debug/debug_objects/stats");

	if (!f)
		return;
	while (next_line(f, line, sizeof(line))) {
		if (strncmp(line, "warnings", 8))
			continue;
		p = line + 8;
		while (*p == ' ')
			p++;
		if (*p++ != ':')
			continue;
		while (*p == ' ')
			p++;
		digits = p;
		while (*p >= '0' && *p <= '9')
			p++;
		if (p > digits && !*p)
			printf("odebug %s\n", digits);
	}
	fclose(f);
}

/* debugfs's gpio list: each chip's line, and each requested pin as
 * `gpio gpio-N (WORDS)`, its words of `(name|consumer)` rejoined. */
static void gpio(void)
{
	char line[1024], *pin, *open, *close, *word, *sp;
	FILE *f = open_under("/sys/kernel/debug/gpio");

	if (!f)
		return;
	while (next_line(f, line, sizeof(line))) {
		if (!strncmp(line, "gpiochip", 8)) {
			printf("gpiochip %s\n", line);
			continue;
		}
		pin = strstr(line, "gpio-");
		if (!pin || !strchr(pin + 5, '('))
			continue;
		pin += 5;
		open = strchr(pin, '(') + 1;
		close = strchr(open, ')');
		if (close)
			*close = 0;
		sp = strchr(pin, ' ');
		printf("gpio gpio-%.*s (", sp ? (int)(sp - pin) : (int)strlen(pin), pin);
		for (word = strtok(open, " \t\n"), sp = ""; word; word = strtok(NULL, " \t\n"), sp = " ")
			printf("%s%s", sp, word);
		printf(")\n");
	}
	fclose(f);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in `dir` (under the root) as the shell's `*` matches them:
 * no dot files, in strcmp order; NULL if it is no directory. */
static char **names(const char *dir, size_t *count)
{
	char p[4096], **v = NULL;
	struct dirent *e;
	size_t n = 0, cap = 0;
	DIR *d;

	snprintf(p, sizeof(p), "%s%s", root, dir);
	d = opendir(p);
	if (!d)
		return NULL;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				exit(12);
		}
		v[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(v, n, sizeof(*v), by_name);
	*count = n;
	return v;
}

static void release(char **v, size_t n)
{
	while (n)
		free(v[--n]);
	free(v);
}

/* A list of strings. */
struct list {
	char **v;
	size_t n, cap;
};

static void add(struct list *l, const char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v)
			exit(12);
	}
	l->v[l->n++] = strdup(s);
}

/* Each `dir/NAME`, or with `sub` each `dir/NAME/SUB/NAME2` (`sub` ""
 * for `dir/NAME/NAME2`; NAME a directory), printed after `prefix` as NAME,
 * or NAME/NAME2 without SUB, unless `skip` says so of it (given NAME too);
 * in the order the shell sorts a pattern's matches: their whole paths, by
 * strcmp. */
static void each(const char *dir, const char *sub, const char *prefix, int (*skip)(const char *rel, const char *first))
{
	size_t n = 0, m, i, k;
	char **v = names(dir, &n), **w, path[4096], rel[4096], *cut;
	struct list all = { 0 };

	if (!v)
		return;
	for (i = 0; i < n; i++) {
		if (!sub) {
			if (!skip || !skip(v[i], v[i]))
				printf("%s%s\n", prefix, v[i]);
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s%s%s", dir, v[i], *sub ? "/" : "", sub);
		m = 0;
		w = names(path, &m);
		if (!w)
			continue;
		for (k = 0; k < m; k++) {
			snprintf(rel, sizeof(rel), "%s/%s%s%s", v[i], sub, *sub ? "/" : "", w[k]);
			add(&all, rel);
		}
		release(w, m);
	}
	release(v, n);
	qsort(all.v, all.n, sizeof(*all.v), by_name);
	for (i = 0; i < all.n; i++) {
		/* NAME/[SUB/]NAME2: shown as NAME/NAME2, with NAME. */
		cut = strchr(all.v[i], '/');
		*cut = 0;
		snprintf(path, sizeof(path), "%s", all.v[i]);
		snprintf(rel, sizeof(rel), "%s/%s", all.v[i], cut + 1 + (*sub ? strlen(sub) + 1 : 0));
		if (!skip || !skip(rel, path))
			printf("%s%s\n", prefix, rel);
	}
	release(all.v, all.n);
}

/* Under /dev/fd: the shell's own descriptors (steps.sh skips them). */
static int skip_fd(const char *rel, const char *first)
{
	return !strcmp(first, "fd") && strchr(rel, '/');
}

/* /proc's pids, and the links to the reader's own. */
static int skip_pid(const char *rel, const char *first)
{
	(void)first;
	return (rel[0] >= '0' && rel[0] <= '9') || !strcmp(rel, "self") || !strcmp(rel, "thread-self");
}

/* steps.sh's harness_census_trees, pattern by pattern. */
static const struct pattern {
	const char *dir, *sub, *prefix;
	int (*skip)(const char *rel, const char *first);
} trees[] = {
	{ "/sys/class", NULL, "class ", NULL },
	{ "/sys/class", "", "device ", NULL },
	{ "/dev", NULL, "dev ", NULL },
	{ "/dev", "", "dev ", skip_fd },
	{ "/proc", NULL, "proc ", skip_pid },
	{ "/proc/driver", NULL, "proc driver/", NULL },
	{ "/sys/kernel/debug", NULL, "debugfs ", NULL },
	{ "/sys/bus/platform/devices", NULL, "bus-device platform/", NULL },
	{ "/sys/bus", "drivers", "driver ", NULL },
};

/* Whether what this census wrote to stdout (a regular file, opened anew
 * to read it back: the shell's `>` opened it write-only) is `before`'s
 * bytes: 0 if so, 3 if not or unknown. */
static int same_as(const char *before)
{
	char a[4096], b[4096];
	struct stat st;
	FILE *f = fopen(before, "r");
	off_t at = 0;
	size_t n;
	int out;

	if (!f)
		return 3;
	out = open("/proc/self/fd/1", O_RDONLY);
	if (out < 0 || fstat(out, &st) || !S_ISREG(st.st_mode)) {
		if (out >= 0)
			close(out);
		fclose(f);
		return 3;
	}
	for (;;) {
		ssize_t m = pread(out, a, sizeof(a), at);

		if (m < 0)
			break;
		/* At the census's end, one byte asked of `before`: it must end too. */
		n = fread(b, 1, m ? (size_t)m : 1, f);
		if (m == 0) {
			close(out);
			fclose(f);
			return n ? 3 : 0;
		}
		if (n != (size_t)m || memcmp(a, b, n))
			break;
		at += m;
	}
	close(out);
	fclose(f);
	return 3;
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc > 1)
		root = argv[1];
	devices();
	misc();
	interrupts();
	odebug();
	gpio();
	for (i = 0; i < sizeof(trees) / sizeof(trees[0]); i++)
		each(trees[i].dir, trees[i].sub, trees[i].prefix, trees[i].skip);
	if (fflush(stdout))
		return 1;
	return argc > 2 ? same_as(argv[2]) : 0;
}
