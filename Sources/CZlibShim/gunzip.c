#include "CZlibShim.h"
// zlib needs one compiled translation unit to hang the link on; the API is used from Swift.
int czlib_shim_version_ok(void) { return zlibVersion()[0] == ZLIB_VERSION[0]; }
