#!/usr/bin/env python3
"""attention.py — numpy emulation of cuda/attention.cu's algorithm (not a GPU result): tiles of
64 query rows, key blocks of 32, online softmax with exp2, P rounded to fp16, fp32 O, against
a plain softmax reference on the shapes of tests/cuda/test_cuda_kernels.c.
Usage: .venv/bin/python bench/gpu/emulate/attention.py
"""
import numpy as np
BQ, BK = 64, 32
def tiles(cu, cls):
    t=[]
    for s in range(len(cu)-1):
        b, L = cu[s], cu[s+1]-cu[s]
        if cls: t.append((b, L, b, 1, s)); continue
        for q in range(0, L, BQ): t.append((b, L, b+q, min(BQ, L-q), b+q))
    return t
def kernel(qkv, bias, tl, n_head, dh, n_out):
    d = n_head*dh; ctx = np.full((n_out, d), np.nan, np.float32)
    sl2 = np.float32(1.4426950408889634/np.sqrt(dh))
    for (kvb, kvl, qb, qc, orow) in tl:
        for h in range(n_head):
            Q = np.zeros((BQ, dh), np.float16)
            Q[:qc] = (qkv[qb:qb+qc, h*dh:(h+1)*dh].astype(np.float32) + bias[h*dh:(h+1)*dh]).astype(np.float16)
            m = np.full(BQ, -np.inf, np.float32); l = np.zeros(BQ, np.float32); O = np.zeros((BQ, dh), np.float32)
            for kb in range(0, kvl, BK):
                K = np.zeros((BK, dh), np.float16); V = np.zeros((BK, dh), np.float16)
                n = min(BK, kvl-kb)
                K[:n] = (qkv[kvb+kb:kvb+kb+n, d+h*dh:d+(h+1)*dh].astype(np.float32) + bias[d+h*dh:d+(h+1)*dh]).astype(np.float16)
                V[:n] = (qkv[kvb+kb:kvb+kb+n, 2*d+h*dh:2*d+(h+1)*dh].astype(np.float32) + bias[2*d+h*dh:2*d+(h+1)*dh]).astype(np.float16)
                S = Q.astype(np.float32) @ K.astype(np.float32).T
                sv = S*sl2; sv[:, n:] = -np.inf
                mn = np.maximum(m, sv.max(1)); alpha = np.exp2(m-mn)
                p = np.exp2(sv - mn[:, None]); l = l*alpha + p.sum(1); m = mn
                O = O*alpha[:, None] + p.astype(np.float16).astype(np.float32) @ V.astype(np.float32)
            ctx[orow:orow+qc, h*dh:(h+1)*dh] = (O[:qc]/l[:qc, None]).astype(np.float16)
    return ctx
def ref(qkvb, cu, n_head, dh, q_rows):
    d = n_head*dh; rows = q_rows if q_rows is not None else range(cu[-1])
    out = np.zeros((len(list(rows)), d))
    rows = q_rows if q_rows is not None else range(cu[-1])
    for i, t in enumerate(rows):
        s = np.searchsorted(cu, t, side='right')-1
        K = qkvb[cu[s]:cu[s+1], d:2*d]; V = qkvb[cu[s]:cu[s+1], 2*d:]
        for h in range(n_head):
            sc = K[:, h*dh:(h+1)*dh] @ qkvb[t, h*dh:(h+1)*dh] / np.sqrt(dh)
            p = np.exp(sc-sc.max()); p /= p.sum(); out[i, h*dh:(h+1)*dh] = p @ V[:, h*dh:(h+1)*dh]
    return out
rng = np.random.default_rng(1)
for lens in ([1], [7], [65], [512], [3,130,1,64,77,200,33]):
    for n_head, dh in ((12,32),(4,64)):
        cu = np.concatenate([[0], np.cumsum(lens)]); n = cu[-1]; d = n_head*dh
        qkv = rng.uniform(-1,1,(n,3*d)).astype(np.float16); bias = rng.uniform(-.5,.5,3*d).astype(np.float32)
        qkvb = (qkv.astype(np.float32)+bias).astype(np.float16).astype(np.float64)
        for cls in (0,1):
            tl = tiles(cu, cls); n_out = len(lens) if cls else n
            g = kernel(qkv, bias, tl, n_head, dh, n_out)
            r = ref(qkvb, cu, n_head, dh, cu[:-1] if cls else None)
            print(lens if len(lens)<3 else 'uneven', n_head, dh, 'cls' if cls else 'all', 'max err %.2e' % np.abs(g-r).max(), 'nan' if np.isnan(g).any() else '')
