// CRC-32 by folding with the carry-less multiply: "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ
// Instruction" (Gopal, Ozturk, Guilford et al., Intel, 2009), in its bit-reflected form. Four 128-bit lanes are
// folded 64 bytes at a time, then into one lane, then 16 bytes at a time; the last 128 bits are reduced to 64, then
// to 32 by Barrett reduction. The constants are x^n mod P for the polynomial P = 0x104C11DB7, bit-reflected and
// shifted left by one (n = 4*128+32, 4*128-32, 128+32, 128-32, 64), the reflected P and floor(x^64 / P):
// `CRC32Tests` holds this to zlib's `crc32` for every length to 1,100 bytes and random data and starting values.
#include "ccrc32.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

static int ccrc32_supported = -1;

static int ccrc32_check(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (c & bit_PCLMUL) != 0 && (c & bit_SSE4_1) != 0;
}

__attribute__((target("pclmul,sse4.1")))
static uint32_t ccrc32_fold_blocks(uint32_t state, const uint8_t *p, size_t n) {
    const __m128i k1k2 = _mm_set_epi64x(0x1c6e41596, 0x154442bd4);
    const __m128i k3k4 = _mm_set_epi64x(0x0ccaa009e, 0x1751997d0);
    const __m128i k5 = _mm_set_epi64x(0, 0x163cd6124);
    const __m128i poly = _mm_set_epi64x(0x1f7011641, 0x1db710641);
    const __m128i low32 = _mm_setr_epi32(~0, 0, ~0, 0);

    __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_cvtsi32_si128((int)state));
    __m128i b = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i c = _mm_loadu_si128((const __m128i *)(p + 32));
    __m128i d = _mm_loadu_si128((const __m128i *)(p + 48));
    p += 64;
    n -= 64;
    while (n >= 64) {
        __m128i a0 = _mm_clmulepi64_si128(a, k1k2, 0x00), a1 = _mm_clmulepi64_si128(a, k1k2, 0x11);
        __m128i b0 = _mm_clmulepi64_si128(b, k1k2, 0x00), b1 = _mm_clmulepi64_si128(b, k1k2, 0x11);
        __m128i c0 = _mm_clmulepi64_si128(c, k1k2, 0x00), c1 = _mm_clmulepi64_si128(c, k1k2, 0x11);
        __m128i d0 = _mm_clmulepi64_si128(d, k1k2, 0x00), d1 = _mm_clmulepi64_si128(d, k1k2, 0x11);
        a = _mm_xor_si128(_mm_xor_si128(a0, a1), _mm_loadu_si128((const __m128i *)p));
        b = _mm_xor_si128(_mm_xor_si128(b0, b1), _mm_loadu_si128((const __m128i *)(p + 16)));
        c = _mm_xor_si128(_mm_xor_si128(c0, c1), _mm_loadu_si128((const __m128i *)(p + 32)));
        d = _mm_xor_si128(_mm_xor_si128(d0, d1), _mm_loadu_si128((const __m128i *)(p + 48)));
        p += 64;
        n -= 64;
    }
    // The four lanes into one, then 16 bytes at a time.
    a = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(a, k3k4, 0x00), _mm_clmulepi64_si128(a, k3k4, 0x11)), b);
    a = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(a, k3k4, 0x00), _mm_clmulepi64_si128(a, k3k4, 0x11)), c);
    a = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(a, k3k4, 0x00), _mm_clmulepi64_si128(a, k3k4, 0x11)), d);
    while (n >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)p);
        a = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(a, k3k4, 0x00), _mm_clmulepi64_si128(a, k3k4, 0x11)), x);
        p += 16;
        n -= 16;
    }
    // 128 bits to 64, then Barrett reduction to 32.
    __m128i t = _mm_clmulepi64_si128(a, k3k4, 0x10);
    a = _mm_xor_si128(_mm_srli_si128(a, 8), t);
    t = _mm_srli_si128(a, 4);
    a = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(a, low32), k5, 0x00), t);
    t = _mm_clmulepi64_si128(_mm_and_si128(a, low32), poly, 0x10);
    t = _mm_clmulepi64_si128(_mm_and_si128(t, low32), poly, 0x00);
    a = _mm_xor_si128(a, t);
    return (uint32_t)_mm_extract_epi32(a, 1);
}

size_t ccrc32_fold(uint32_t *crc, const uint8_t *bytes, size_t count) {
    if (count < 64) return 0;
    // Threads that race here compute the same answer; the atomics keep the race defined.
    int supported = __atomic_load_n(&ccrc32_supported, __ATOMIC_RELAXED);
    if (supported < 0) {
        supported = ccrc32_check();
        __atomic_store_n(&ccrc32_supported, supported, __ATOMIC_RELAXED);
    }
    if (!supported) return 0;
    size_t n = count & ~(size_t)15;
    *crc = ~ccrc32_fold_blocks(~*crc, bytes, n);
    return n;
}
#else
size_t ccrc32_fold(uint32_t *crc, const uint8_t *bytes, size_t count) {
    (void)crc;
    (void)bytes;
    (void)count;
    return 0;
}
#endif
