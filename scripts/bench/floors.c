// Lower bounds for a scrape of a multiprocess directory on this machine, without our code:
// what the least possible work on the same files costs. BENCHMARKS.md ("Floors") quotes it.
//
//   clang -O2 -o floors scripts/bench/floors.c && ./floors DIR [ROUNDS]
//
// 1. copy:   pread every *.db file, used bytes only, through one 64 KiB buffer (what the
//            kernel must copy for a reader that never maps the files).
// 2. walk:   1, plus the least per-entry work a merge must do: step from entry to entry by
//            the key length (prometheus_client's layout) and add up the values.
// 3. gather: the files mapped once, ahead of the rounds (as a server keeping mappings
//            would); each round reads only the value slots, at offsets found ahead too.
// Medians of ROUNDS rounds (default 9), in milliseconds.
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *xs, int n) {
    qsort(xs, n, sizeof *xs, compare_doubles);
    return n % 2 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
}

static uint32_t load32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static double load_double(const unsigned char *p) { double v; memcpy(&v, p, 8); return v; }

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: floors DIR [ROUNDS]\n"); return 2; }
    int rounds = argc > 2 ? atoi(argv[2]) : 9;
    if (rounds < 1) rounds = 1;
    DIR *dir = opendir(argv[1]);
    if (!dir) { perror(argv[1]); return 1; }
    char *paths[65536];
    int files = 0;
    struct dirent *e;
    while ((e = readdir(dir)) && files < 65536) {
        size_t len = strlen(e->d_name);
        if (len < 3 || strcmp(e->d_name + len - 3, ".db") != 0) continue;
        paths[files] = malloc(strlen(argv[1]) + len + 2);
        sprintf(paths[files], "%s/%s", argv[1], e->d_name);
        files++;
    }
    closedir(dir);

    enum { chunk = 1 << 16 };
    static unsigned char buffer[chunk + 65536];
    double *copy = calloc(rounds, sizeof(double)), *walk = calloc(rounds, sizeof(double)),
           *gather = calloc(rounds, sizeof(double));
    long long bytes = 0, entries = 0;
    double sink = 0;

    for (int r = 0; r < rounds; r++) {
        for (int pass = 0; pass < 2; pass++) {
            double start = now_ms();
            long long b = 0, n = 0;
            for (int f = 0; f < files; f++) {
                int fd = open(paths[f], O_RDONLY);
                if (fd < 0) continue;
                unsigned char header[8];
                if (pread(fd, header, 8, 0) != 8) { close(fd); continue; }
                uint32_t used = load32(header);
                // `pos`: file offset of buffer[0]; `at`: next entry's offset in the file.
                uint32_t pos = 0, at = 8;
                while (pos < used) {
                    size_t want = used - pos < chunk ? used - pos : chunk;
                    ssize_t got = pread(fd, buffer, want, pos);
                    if (got <= 0) break;
                    b += got;
                    uint32_t end = pos + (uint32_t)got;
                    if (pass == 0) { pos = end; continue; }
                    while (at + 4 <= end) {
                        uint32_t length = load32(buffer + (at - pos));
                        uint32_t value = at + 4 + length + (8 - (length + 4) % 8);
                        if (value + 16 > end) break;
                        sink += load_double(buffer + (value - pos));
                        n++;
                        at = value + 16;
                    }
                    if (end >= used || at <= pos) break; // done, or an entry larger than the buffer
                    pos = at; // read on from the first entry not yet whole
                }
                close(fd);
            }
            (pass == 0 ? copy : walk)[r] = now_ms() - start;
            if (pass == 0) bytes = b; else entries = n;
        }
    }

    // Mappings and value offsets made once, outside the timed rounds.
    const unsigned char **bases = calloc(files, sizeof *bases);
    uint32_t **offsets = calloc(files, sizeof *offsets);
    long long *counts = calloc(files, sizeof *counts);
    for (int f = 0; f < files; f++) {
        int fd = open(paths[f], O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < 8) { if (fd >= 0) close(fd); continue; }
        bases[f] = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
        close(fd);
        if (bases[f] == MAP_FAILED) { bases[f] = NULL; continue; }
        uint32_t used = load32(bases[f]);
        if (used > st.st_size) used = (uint32_t)st.st_size;
        offsets[f] = malloc(sizeof(uint32_t) * (used / 24 + 1));
        for (uint32_t at = 8; at + 4 <= used;) {
            uint32_t length = load32(bases[f] + at);
            uint32_t value = at + 4 + length + (8 - (length + 4) % 8);
            if (value + 16 > used) break;
            offsets[f][counts[f]++] = value;
            at = value + 16;
        }
    }
    for (int r = 0; r < rounds; r++) {
        double start = now_ms();
        for (int f = 0; f < files; f++)
            for (long long i = 0; i < counts[f]; i++) sink += load_double(bases[f] + offsets[f][i]);
        gather[r] = now_ms() - start;
    }

    printf("{\"files\": %d, \"bytes\": %lld, \"entries\": %lld, \"rounds\": %d, "
           "\"copy_ms\": %.2f, \"walk_ms\": %.2f, \"gather_ms\": %.2f, \"sink\": %g}\n",
           files, bytes, entries, rounds, median(copy, rounds), median(walk, rounds), median(gather, rounds), sink);
    return 0;
}
