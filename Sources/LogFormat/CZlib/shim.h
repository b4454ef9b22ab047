// zlib's deflateInit2 and inflateInit2 are macros that Swift cannot call; these wrappers expose them.
#ifndef AUDIT_CZLIB_SHIM_H
#define AUDIT_CZLIB_SHIM_H
#include <zlib.h>

static inline int czlib_deflateInit2(z_streamp strm, int level, int method, int windowBits, int memLevel, int strategy) {
    return deflateInit2(strm, level, method, windowBits, memLevel, strategy);
}

static inline int czlib_inflateInit2(z_streamp strm, int windowBits) {
    return inflateInit2(strm, windowBits);
}
#endif
