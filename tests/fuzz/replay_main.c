/*
 * replay_main.c — runs a libFuzzer target's LLVMFuzzerTestOneInput over every file of a corpus
 * directory (argv[1]), so each corpus replays as a ctest case in every build (also without clang).
 * Exits non-zero if the directory is missing or empty: a corpus that silently vanished must fail.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    DIR *d = opendir(argv[1]);
    if (!d) {
        perror(argv[1]);
        return 1;
    }
    struct dirent *e;
    unsigned n = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        struct stat st;
        if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
            fclose(f);
            continue;
        }
        uint8_t *buf = malloc((size_t)st.st_size + 1);
        size_t len = fread(buf, 1, (size_t)st.st_size, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, len);
        free(buf);
        n++;
    }
    closedir(d);
    printf("replayed %u inputs from %s\n", n, argv[1]);
    if (n == 0) {
        fprintf(stderr, "corpus %s is empty\n", argv[1]);
        return 1;
    }
    return 0;
}
