// The entry point of `dragonfly-fuzz` lives in C: libFuzzer's driver when the binary is
// built with -sanitize=fuzzer, otherwise a replayer that runs each file given once.
int dragonfly_fuzz_linked(void);
