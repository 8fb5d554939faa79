#include <zlib.h>
#include <stddef.h>
#include <stdint.h>

/// Whether this CPU can run `czlib_crc32_fold` (x86-64 with PCLMULQDQ and SSE4.1).
int czlib_crc32_fold_available(void);

/// CRC-32/IEEE register update over `len` bytes with carry-less multiplication: `len` must
/// be a multiple of 16 and at least 64, and `crc` is the register (the CRC value with its
/// bits inverted, as zlib keeps it inside `crc32`). Returns the register after the bytes.
uint32_t czlib_crc32_fold(uint32_t crc, const unsigned char *buf, size_t len);
