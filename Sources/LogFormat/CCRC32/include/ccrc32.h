// CRC-32 (ISO-HDLC, zlib's `crc32`) over whole 16-byte blocks with the carry-less multiply (PCLMULQDQ), for
// `Checksum.crc32` in LogFormat. The same checksum as zlib's, only faster: the caller finishes the bytes this does
// not take with zlib.
#ifndef AUDIT_CCRC32_H
#define AUDIT_CCRC32_H
#include <stddef.h>
#include <stdint.h>

/// Continues `*crc` (a finished CRC-32 value, as zlib's `crc32` takes and returns) over the first bytes of
/// `bytes[0..<count]`, a multiple of 16 of them, and returns how many it took: 0 when `count` is under 64 or the
/// processor lacks PCLMULQDQ and SSE4.1 (or is not x86-64), else `count` rounded down to a multiple of 16.
size_t ccrc32_fold(uint32_t *crc, const uint8_t *bytes, size_t count);

#endif
