/*
 * test_mma_host.cpp — the host stand-ins of mma.sync.m16n8k16 and ldmatrix.x4(.trans)
 * (tests/cuda/host/mma_sync.cpp), which test_attention_host trusts, checked on their own.
 *
 * One warp of 32 host threads (the block runtime) places random fp16/bf16 operands into
 * fragments with a transcription of the PTX ISA tables written here independently of
 * mma_sync.cpp (register-wise: register r of A holds row g + 8·(r % 2), columns
 * 2t + 8·(r / 2) + {0, 1}), runs the stand-in and scatters D back; D must match a plain
 * matrix product to fp32 rounding. A wrong table in either place permutes operands and
 * misses by O(1). So that the check is known to be able to fail, the same run with two A
 * registers swapped must miss. ldmatrix: every lane's registers from a padded smem tile,
 * with the row addresses the attention kernel uses, must equal the A fragment (.x4) and the
 * B fragment of a row-major K×N tile (.x4.trans) element for element. Cost: well under 1 s.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cuda_host.h"
#include "kernels.h"
#include "mma_sync.h"
#include "test.h"

namespace
{

uint64_t rng = 0x2545f4914f6cdd1dull;

float frand()
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

uint16_t to_bits(float v, rr_dtype dt)
{
    uint16_t h;
    rr_cuda_from_f32(&v, &h, 1, dt);
    return h;
}

float from_bits(uint16_t h, rr_dtype dt)
{
    float v;
    rr_cuda_to_f32(&h, &v, 1, dt);
    return v;
}

uint32_t pack(uint16_t lo, uint16_t hi)
{
    return (uint32_t)lo | (uint32_t)hi << 16;
}

/* N m16n8k16 sharing A through one stand-in call; swap_a swaps A registers 1 and 2 (a wrong
 * layout). Returns the worst |D − A·B − C| / (Σ|a·b| + |c|) over the N tiles. */
template <int N> double run_mma(rr_dtype dt, bool swap_a)
{
    static uint16_t A[16][16], B[N][16][8];
    static float C[N][16][8], D[N][16][8];
    for (int i = 0; i < 16; i++)
        for (int k = 0; k < 16; k++)
            A[i][k] = to_bits(frand(), dt);
    for (int x = 0; x < N; x++)
        for (int i = 0; i < 16; i++)
            for (int n = 0; n < 8; n++) {
                B[x][i][n] = to_bits(frand(), dt);
                C[x][i][n] = frand();
            }

    rr_host_run_grid(dim3(1), 32, 0, [&] {
        const int l = (int)threadIdx.x, g = l / 4, t = l % 4;
        uint32_t a[4], b[N][2];
        float d[N][4];
        for (int r = 0; r < 4; r++) {
            const int row = g + 8 * (r % 2), col = 2 * t + 8 * (r / 2);
            a[r] = pack(A[row][col], A[row][col + 1]);
        }
        if (swap_a) {
            const uint32_t x = a[1];
            a[1] = a[2], a[2] = x;
        }
        for (int x = 0; x < N; x++) {
            for (int r = 0; r < 2; r++)
                b[x][r] = pack(B[x][2 * t + 8 * r][g], B[x][2 * t + 8 * r + 1][g]);
            for (int e = 0; e < 4; e++)
                d[x][e] = C[x][g + 8 * (e / 2)][2 * t + e % 2];
        }
        rr_host_mma_16816_n(&d[0][0], a, &b[0][0], N, dt == RR_DTYPE_BF16);
        for (int x = 0; x < N; x++)
            for (int e = 0; e < 4; e++)
                D[x][g + 8 * (e / 2)][2 * t + e % 2] = d[x][e];
    });

    double worst = 0;
    for (int x = 0; x < N; x++)
        for (int i = 0; i < 16; i++)
            for (int n = 0; n < 8; n++) {
                double s = C[x][i][n], mag = fabs((double)C[x][i][n]);
                for (int k = 0; k < 16; k++) {
                    const double p = (double)from_bits(A[i][k], dt) * from_bits(B[x][k][n], dt);
                    s += p, mag += fabs(p);
                }
                const double rel = fabs(D[x][i][n] - s) / (mag > 0 ? mag : 1);
                if (rel > worst) worst = rel;
            }
    return worst;
}

/* ldmatrix.x4 and .x4.trans, two loads per call, from a 32 × 16 tile stored with a padded
 * row stride, addressed as attention.cu addresses Q and K (A fragments; the second load 16
 * rows down) and V (B fragments of a K×N = 16×16 tile, two n8 tiles; the second load 16
 * columns right is not there, so the trans case reads rows 16… instead). Returns the number
 * of registers that differ from the fragment tables. */
int run_ldmatrix()
{
    constexpr int LD = 24; /* 48-byte rows: 16-byte aligned, as the kernel's dh + 8 pad */
    alignas(16) static uint16_t tile[32 * LD];
    for (int i = 0; i < 32 * LD; i++)
        tile[i] = (uint16_t)(i * 7 + 3); /* distinct values: any misplacement shows */
    int wrong_by_lane[32] = {0};
    rr_host_run_grid(dim3(1), 32, 0, [&] {
        const int l = (int)threadIdx.x, g = l / 4, t = l % 4;
        const int stride = 16 * LD * (int)sizeof(uint16_t);
        uint32_t r[2][4];
        int wrong = 0;
        rr_host_ldmatrix_x4_n(&r[0][0], tile + (l & 15) * LD + (l >> 4) * 8, stride, 2, false);
        for (int i = 0; i < 2; i++)
            for (int q = 0; q < 4; q++) {
                const int row = 16 * i + g + 8 * (q % 2), col = 2 * t + 8 * (q / 2);
                wrong += r[i][q] != pack(tile[row * LD + col], tile[row * LD + col + 1]);
            }
        rr_host_ldmatrix_x4_n(&r[0][0], tile + (((l >> 3) & 1) * 8 + (l & 7)) * LD + (l >> 4) * 8,
                              stride, 2, true);
        for (int i = 0; i < 2; i++)
            for (int q = 0; q < 4; q++) {
                /* register q: n-tile q / 2, b register q % 2: k rows 2t + 8·(q % 2) + {0, 1}, col g
                 */
                const int k = 16 * i + 2 * t + 8 * (q % 2), n = 8 * (q / 2) + g;
                wrong += r[i][q] != pack(tile[k * LD + n], tile[(k + 1) * LD + n]);
            }
        wrong_by_lane[l] = wrong;
    });
    int bad = 0;
    for (int w : wrong_by_lane)
        bad += w;
    return bad;
}

} // namespace

int main()
{
    for (rr_dtype dt : {RR_DTYPE_F16, RR_DTYPE_BF16}) {
        const char *name = dt == RR_DTYPE_BF16 ? "bf16" : "fp16";
        double worst = 0;
        for (int rep = 0; rep < 20; rep++) {
            const double w = rep % 2 ? run_mma<8>(dt, false) : run_mma<1>(dt, false);
            if (w > worst) worst = w;
        }
        /* fp32 sum of 17 terms: a few units of 2^-24 relative to Σ|terms|. */
        CHECK_MSG(worst < 1e-6, "mma.sync %s stand-in vs matrix product: worst relative error %.3g",
                  name, worst);
        const double swapped = run_mma<8>(dt, true);
        CHECK_MSG(swapped > 1e-3,
                  "mma.sync %s with A registers 1 and 2 swapped still matched (%.3g)", name,
                  swapped);
        printf("  mma.sync %s: worst relative error %.3g, with a wrong layout %.3g\n", name, worst,
               swapped);
    }
    const int bad = run_ldmatrix();
    CHECK_MSG(bad == 0, "ldmatrix.x4 / .x4.trans: %d registers differ from the fragment tables",
              bad);
    return test_summary("test_mma_host");
}
