#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_main.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
// libFuzzer's driver. Plain builds leave it weak: absent unless the executable is linked with
// -sanitize=fuzzer, and then the files given are replayed. The sanitizer build
// (tools/sanitizer-build.sh) puts libFuzzer's no-main archive on every link line; a strong
// reference is what pulls the driver out of it, into this executable alone.
#ifdef DF_FUZZ_DRIVER
#define DRIVER_LINKAGE
#else
#define DRIVER_LINKAGE __attribute__((weak))
#endif
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *, size_t)) DRIVER_LINKAGE;

int dragonfly_fuzz_linked(void) { return LLVMFuzzerRunDriver != NULL; }

static int replay(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return 1; }
    size_t cap = 1 << 16, size = 0;
    uint8_t *data = malloc(cap);
    size_t n;
    while (data && (n = fread(data + size, 1, cap - size, f)) > 0) {
        size += n;
        if (size == cap) { cap *= 2; data = realloc(data, cap); }
    }
    fclose(f);
    if (!data) return 1;
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

// SwiftPM links executables with main = <module>_main.
int DragonflyFuzz_main(int argc, char **argv) {
    // `dragonfly-fuzz TARGET [libFuzzer flags and corpus dirs…]`
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: dragonfly-fuzz h2|grpc|http1|config|taskid [libFuzzer options] [corpus dirs or files]\n");
        return 2;
    }
    setenv("DF_FUZZ_TARGET", argv[1], 1);
    argv[1] = argv[0];
    argc -= 1;
    argv += 1;
    if (LLVMFuzzerRunDriver) return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput);
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-') failed |= replay(argv[i]);
    }
    return failed;
}
