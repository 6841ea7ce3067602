/* Matrix transposition for cs_utils._fastops: dst (cols, rows) = src (rows, cols).T (+ bias).
 *
 *     dst[c * ldd + r] = src[r * lds + c] + (bias ? bias[c] : 0)
 *
 * A convolution transposes its input (channels first -> channels last) and its output
 * (pixels x filters -> filters x pixels). Done one number at a time this cost a sixth of
 * the time of the matrix products; here it runs near the speed of a copy.
 *
 * The matrix goes in 4 x 4 blocks, each transposed in SSE2 registers (every x86-64 CPU
 * has SSE2; elsewhere, ARM say, the block is transposed in plain C). The blocks are
 * visited in strips 4 wide along the longer side of the source: a strip reads 4 source
 * rows (or writes 4 destination rows) from start to end, which the CPU's prefetchers
 * follow, and never touches more than 4 lines that are a multiple of 4 KiB apart (image
 * planes often are): more such lines at once would evict each other from the L1 cache.
 * The ragged edges (rows or columns beyond a multiple of 4) are done number by number.
 */
#ifndef CS_UTILS_TRANSPOSE_H
#define CS_UTILS_TRANSPOSE_H

#include <stddef.h>

/* CS_TRANSPOSE_NO_SIMD forces the plain C blocks (the test suite builds it that way too). */
#if !defined(CS_TRANSPOSE_NO_SIMD) && (defined(__SSE2__) || defined(_M_X64))
#include <emmintrin.h>
#define CS_TRANSPOSE_SSE2 1
#endif

/* ---- one 4 x 4 block: d[j*ldd + i] = s[i*lds + j] (+ bias[j]) -------------------- */

static inline void cs_block_f32(const float *s, ptrdiff_t lds, float *d, ptrdiff_t ldd,
                                const float *bias)
{
#ifdef CS_TRANSPOSE_SSE2
    __m128 r0 = _mm_loadu_ps(s), r1 = _mm_loadu_ps(s + lds);
    __m128 r2 = _mm_loadu_ps(s + 2 * lds), r3 = _mm_loadu_ps(s + 3 * lds);
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    if (bias) {
        r0 = _mm_add_ps(r0, _mm_set1_ps(bias[0]));
        r1 = _mm_add_ps(r1, _mm_set1_ps(bias[1]));
        r2 = _mm_add_ps(r2, _mm_set1_ps(bias[2]));
        r3 = _mm_add_ps(r3, _mm_set1_ps(bias[3]));
    }
    _mm_storeu_ps(d, r0);
    _mm_storeu_ps(d + ldd, r1);
    _mm_storeu_ps(d + 2 * ldd, r2);
    _mm_storeu_ps(d + 3 * ldd, r3);
#else
    for (int j = 0; j < 4; j++)
        for (int i = 0; i < 4; i++)
            d[j * ldd + i] = bias ? s[i * lds + j] + bias[j] : s[i * lds + j];
#endif
}

static inline void cs_block_f64(const double *s, ptrdiff_t lds, double *d, ptrdiff_t ldd,
                                const double *bias)
{
#ifdef CS_TRANSPOSE_SSE2
    for (int i = 0; i < 4; i += 2) {      /* four 2 x 2 blocks */
        for (int j = 0; j < 4; j += 2) {
            __m128d a = _mm_loadu_pd(s + i * lds + j), b = _mm_loadu_pd(s + (i + 1) * lds + j);
            __m128d c0 = _mm_unpacklo_pd(a, b), c1 = _mm_unpackhi_pd(a, b);
            if (bias) {
                c0 = _mm_add_pd(c0, _mm_set1_pd(bias[j]));
                c1 = _mm_add_pd(c1, _mm_set1_pd(bias[j + 1]));
            }
            _mm_storeu_pd(d + j * ldd + i, c0);
            _mm_storeu_pd(d + (j + 1) * ldd + i, c1);
        }
    }
#else
    for (int j = 0; j < 4; j++)
        for (int i = 0; i < 4; i++)
            d[j * ldd + i] = bias ? s[i * lds + j] + bias[j] : s[i * lds + j];
#endif
}

/* ---- a whole matrix ---------------------------------------------------------------- */

#define CS_DEFINE_TRANSPOSE(NAME, T, BLOCK_FN)                                             \
static inline void NAME(const T *src, ptrdiff_t lds, T *dst, ptrdiff_t ldd,                \
                        ptrdiff_t rows, ptrdiff_t cols, const T *bias)                     \
{                                                                                          \
    ptrdiff_t r_end = rows - rows % 4, c_end = cols - cols % 4, r, c;                      \
    if (cols >= rows) { /* wide source: strips of 4 source rows */                         \
        for (r = 0; r < r_end; r += 4)                                                     \
            for (c = 0; c < c_end; c += 4)                                                 \
                BLOCK_FN(src + r * lds + c, lds, dst + c * ldd + r, ldd,                   \
                         bias ? bias + c : NULL);                                          \
    } else {            /* tall source: strips of 4 destination rows */                    \
        for (c = 0; c < c_end; c += 4)                                                     \
            for (r = 0; r < r_end; r += 4)                                                 \
                BLOCK_FN(src + r * lds + c, lds, dst + c * ldd + r, ldd,                   \
                         bias ? bias + c : NULL);                                          \
    }                                                                                      \
    for (c = 0; c < cols; c++)  /* the ragged edges */                                     \
        for (r = (c < c_end ? r_end : 0); r < rows; r++)                                   \
            dst[c * ldd + r] = bias ? src[r * lds + c] + bias[c] : src[r * lds + c];       \
}

CS_DEFINE_TRANSPOSE(cs_transpose_f32, float, cs_block_f32)
CS_DEFINE_TRANSPOSE(cs_transpose_f64, double, cs_block_f64)

#endif /* CS_UTILS_TRANSPOSE_H */
