/*
 * fake_cudart.cpp — a CUDA runtime for a machine without a GPU: the entry points that
 * src/engine/engine_cuda.cu, the launchers of cuda/ and the device tests call, defined with
 * the toolkit's own declarations (cuda_runtime_api.h) over host memory, so those files run
 * unchanged on the CPU (test_cuda_kernels_host, test_cuda_model_host). Kernels run through
 * the block runtime (runtime.cpp); cuBLAS is fake_cublas.cpp. libcudart is not linked.
 *
 * What it models, and what each part catches:
 *   - Device memory: each cudaMalloc is its own allocation of exactly the requested size
 *     (256-byte aligned, as on a device), filled with 0xff bytes (NaN in fp32, fp16 and bf16; -1 as
 * an integer), as device memory is not cleared. Under ASan a kernel, copy or GEMM that touches a
 * byte past an allocation is reported like compute-sanitizer's memcheck would; a read of memory no
 *     one wrote shows up as NaN. A registry of allocations (device and pinned) checks every
 *     copy and memset: the pointers' kinds must match the cudaMemcpyKind and each range
 *     must lie inside one allocation, else the process aborts naming the call. cudaFree of
 *     a pointer the registry does not hold aborts too (a double free or a host pointer).
 *   - Streams: each stream is a FIFO of work. Work runs only when a synchronization covers
 *     it (cudaStreamSynchronize, cudaDeviceSynchronize, blocking copies, cudaFree, event
 *     waits), never at the call, so host code that reads a result before synchronizing, or
 *     rewrites pinned staging that an async copy has not read yet, sees the wrong bytes,
 *     as it could on a device. Async copies from pageable memory take the source at the
 *     call (the driver stages it); copies to pageable memory complete at the call. The
 *     legacy default stream (0) waits for blocking streams and they for it; streams made
 *     with cudaStreamNonBlocking do not (so a missing cudaDeviceSynchronize between work
 *     on stream 0 and a non-blocking stream leaves that work unrun).
 *   - Graphs: while a stream captures, every launch, copy, memset and cuBLAS call on it is
 *     recorded with its arguments as given at capture time (pointers, sizes, scalars by
 *     value) and runs only at cudaGraphLaunch, in order. A graph that depends on a host
 *     value changing between replays computes with the captured one, as on a device. A
 *     synchronizing or allocating call during a capture (cudaMalloc, cudaMemcpy,
 *     cudaStreamSynchronize, ...) fails with cudaErrorStreamCaptureUnsupported and
 *     invalidates the capture (cudaStreamEndCapture then fails), as the runtime does in
 *     global and thread-local capture modes. Copies to or from pageable memory cannot be
 *     captured.
 *   - Events: recorded into the stream's FIFO; synchronize runs the stream up to them.
 *   - One device, an H200-like sm_90 (cudaGetDeviceProperties).
 * Not modelled: concurrency between streams (work of two streams never overlaps here),
 * events inside a capture (cross-stream capture aborts), kernels reading host memory
 * (a kernel given a pageable host pointer reads it without complaint; ASan still checks
 * its bounds). One host thread drives the runtime (the engine's contract); the kernels'
 * worker threads never call it.
 */
#include "fake_cuda.h"

#include "cuda_host.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <vector>

struct CUgraph_st {
    std::vector<std::function<void()>> nodes;
};

struct CUgraphExec_st {
    std::vector<std::function<void()>> nodes;
};

struct CUstream_st {
    unsigned flags = 0;
    std::deque<std::function<void()>> q;
    CUgraph_st *capture = nullptr; /* non-null while capturing */
    bool invalidated = false;      /* an unsupported call broke the capture */
};

/* An event's state outlives the event (work recorded before cudaEventDestroy still runs). */
struct rr_event_state {
    bool pending = false;
    CUstream_st *stream = nullptr;
    std::chrono::steady_clock::time_point at;
};
struct CUevent_st {
    std::shared_ptr<rr_event_state> s = std::make_shared<rr_event_state>();
};

namespace
{

enum Kind { DEVICE, PINNED };
struct Alloc {
    size_t bytes;
    Kind kind;
};

std::map<uintptr_t, Alloc> allocs;
CUstream_st legacy;
std::vector<CUstream_st *> streams; /* created, not destroyed, in creation order */
std::set<CUgraph_st *> graphs;
std::set<CUgraphExec_st *> execs;
int device = 0;

[[noreturn]] __attribute__((format(printf, 1, 2))) void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fake CUDA runtime: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* The allocation holding p, or end(). */
std::map<uintptr_t, Alloc>::iterator holder(const void *p)
{
    const uintptr_t a = (uintptr_t)p;
    auto it = allocs.upper_bound(a);
    if (it == allocs.begin()) return allocs.end();
    --it;
    return a < it->first + (it->second.bytes ? it->second.bytes : 1) ? it : allocs.end();
}

/* Which side of a copy p is: DEVICE, PINNED, or -1 for plain (pageable) host memory; a
 * range that starts in an allocation must end in it. */
int side(const void *p, size_t n, const char *what)
{
    auto it = holder(p);
    if (it == allocs.end()) return -1;
    if ((uintptr_t)p + n > it->first + it->second.bytes)
        die("%s: %p + %zu bytes runs past the end of its allocation", what, p, n);
    return it->second.kind;
}

CUstream_st *resolve(cudaStream_t s)
{
    if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return &legacy;
    for (CUstream_st *t : streams)
        if (t == s) return t;
    return nullptr;
}

void drain(CUstream_st *s)
{
    while (!s->q.empty()) {
        std::function<void()> w = std::move(s->q.front());
        s->q.pop_front();
        w();
    }
}

void drain_all()
{
    for (bool again = true; again;) {
        again = false;
        drain(&legacy);
        for (CUstream_st *s : streams) {
            again |= !s->q.empty();
            drain(s);
        }
    }
}

bool blocking(const CUstream_st *s)
{
    return s == &legacy || !(s->flags & cudaStreamNonBlocking);
}

/* The legacy stream and blocking streams wait for each other. */
void order_with_legacy(CUstream_st *s)
{
    if (s == &legacy) {
        for (CUstream_st *t : streams)
            if (blocking(t)) drain(t);
    } else if (blocking(s)) {
        drain(&legacy);
    }
}

bool any_capture()
{
    for (CUstream_st *s : streams)
        if (s->capture) return true;
    return false;
}

/* A call that may not run while a capture is open: it fails and breaks the capture. */
bool refused_in_capture(const char *what)
{
    if (!any_capture()) return false;
    fprintf(stderr, "fake CUDA runtime: %s during a stream capture: not permitted\n", what);
    for (CUstream_st *s : streams)
        if (s->capture) s->invalidated = true;
    return true;
}

void *new_alloc(size_t bytes, Kind kind)
{
    /* 256-byte aligned like cudaMalloc's, and still exactly `bytes` long for ASan. */
    void *p = nullptr;
    if (posix_memalign(&p, 256, bytes ? bytes : 1) != 0) return nullptr;
    memset(p, 0xff, bytes);
    allocs[(uintptr_t)p] = Alloc{bytes, kind};
    return p;
}

cudaError_t free_alloc(void *p, Kind kind, const char *what)
{
    if (!p) return cudaSuccess;
    if (refused_in_capture(what)) return cudaErrorStreamCaptureUnsupported;
    drain_all(); /* cudaFree synchronizes the device */
    auto it = allocs.find((uintptr_t)p);
    if (it == allocs.end() || it->second.kind != kind)
        die("%s(%p): not an allocation of this kind that is still live", what, p);
    allocs.erase(it);
    free(p);
    return cudaSuccess;
}

void submit_kernel(cudaStream_t stream, std::function<void()> work)
{
    if (rr_fake_enqueue(stream, std::move(work)) != cudaSuccess)
        die("kernel launched on stream %p, which does not exist", (void *)stream);
}

/* Launches of the host-built kernels go through the stream queues. */
struct install {
    install()
    {
        rr_host_submit_via = submit_kernel;
    }
} installed;

/* Copy of n bytes with kind checks; runs at once (the caller decides when). */
void check_copy(void *dst, const void *src, size_t n, cudaMemcpyKind kind, const char *what,
                int *ds, int *ss)
{
    *ds = side(dst, n, what);
    *ss = side(src, n, what);
    const bool dd = *ds == DEVICE, sd = *ss == DEVICE;
    bool ok;
    switch (kind) {
    case cudaMemcpyHostToHost:
        ok = !dd && !sd;
        break;
    case cudaMemcpyHostToDevice:
        ok = dd && !sd;
        break;
    case cudaMemcpyDeviceToHost:
        ok = !dd && sd;
        break;
    case cudaMemcpyDeviceToDevice:
        ok = dd && sd;
        break;
    case cudaMemcpyDefault:
        ok = true;
        break;
    default:
        ok = false;
    }
    if (!ok) {
        fprintf(stderr,
                "fake CUDA runtime: %s(dst %p [%s], src %p [%s], %zu bytes, kind %d): the "
                "pointers do not match the cudaMemcpyKind\n",
                what, dst, dd ? "device" : "host", src, sd ? "device" : "host", n, (int)kind);
        abort();
    }
}

} // namespace

void rr_fake_require_device(const void *p, size_t bytes, const char *what)
{
    auto it = holder(p);
    if (it == allocs.end() || it->second.kind != DEVICE)
        die("%s: %p (%zu bytes) is not in a live device allocation", what, p, bytes);
    if ((uintptr_t)p + bytes > it->first + it->second.bytes)
        die("%s: %p + %zu bytes runs past the end of its device allocation", what, p, bytes);
}

cudaError_t rr_fake_enqueue(cudaStream_t stream, std::function<void()> work)
{
    CUstream_st *s = resolve(stream);
    if (!s) return cudaErrorInvalidResourceHandle;
    if (s->capture) {
        s->capture->nodes.push_back(std::move(work));
        return cudaSuccess;
    }
    order_with_legacy(s);
    s->q.push_back(std::move(work));
    return cudaSuccess;
}

extern "C" {

/* ---- device ------------------------------------------------------------------------- */

cudaError_t cudaGetDeviceCount(int *count)
{
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int d)
{
    if (d != 0) return cudaErrorInvalidDevice;
    device = d;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *d)
{
    *d = device;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d)
{
    if (d != 0) return cudaErrorInvalidDevice;
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "host emulation of an H200 (sm_90)");
    p->major = 9, p->minor = 0;
    p->totalGlobalMem = (size_t)141 << 30;
    p->sharedMemPerBlock = 48 << 10;
    p->sharedMemPerBlockOptin = 227 << 10;
    p->sharedMemPerMultiprocessor = 228 << 10;
    p->regsPerBlock = p->regsPerMultiprocessor = 65536;
    p->warpSize = 32;
    p->maxThreadsPerBlock = 1024;
    p->maxThreadsPerMultiProcessor = 2048;
    p->maxThreadsDim[0] = p->maxThreadsDim[1] = 1024, p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 0x7fffffff, p->maxGridSize[1] = p->maxGridSize[2] = 65535;
    p->multiProcessorCount = 132;
    p->l2CacheSize = 60 << 20;
    p->memoryBusWidth = 6144;
    p->unifiedAddressing = 1;
    p->concurrentKernels = 1;
    p->asyncEngineCount = 2;
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void)
{
    if (refused_in_capture("cudaDeviceSynchronize")) return cudaErrorStreamCaptureUnsupported;
    drain_all();
    return cudaSuccess;
}

const char *cudaGetErrorName(cudaError_t e)
{
    switch (e) {
#define RR_NAME(x)                                                                                 \
    case x:                                                                                        \
        return #x;
        RR_NAME(cudaSuccess)
        RR_NAME(cudaErrorInvalidValue)
        RR_NAME(cudaErrorMemoryAllocation)
        RR_NAME(cudaErrorInvalidConfiguration)
        RR_NAME(cudaErrorInvalidDevice)
        RR_NAME(cudaErrorInvalidResourceHandle)
        RR_NAME(cudaErrorNotReady)
        RR_NAME(cudaErrorIllegalState)
        RR_NAME(cudaErrorLaunchFailure)
        RR_NAME(cudaErrorStreamCaptureUnsupported)
        RR_NAME(cudaErrorStreamCaptureInvalidated)
        RR_NAME(cudaErrorStreamCaptureUnmatched)
        RR_NAME(cudaErrorNotSupported)
#undef RR_NAME
    default:
        return "cudaErrorUnknown";
    }
}

const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess:
        return "no error";
    case cudaErrorInvalidValue:
        return "invalid argument";
    case cudaErrorMemoryAllocation:
        return "out of memory";
    case cudaErrorInvalidConfiguration:
        return "invalid configuration argument";
    case cudaErrorInvalidDevice:
        return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle:
        return "invalid resource handle";
    case cudaErrorNotReady:
        return "device not ready";
    case cudaErrorIllegalState:
        return "the operation cannot be performed in the present state";
    case cudaErrorLaunchFailure:
        return "unspecified launch failure";
    case cudaErrorStreamCaptureUnsupported:
        return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
        return "operation failed due to a previous error during capture";
    default:
        return cudaGetErrorName(e);
    }
}

/* ---- memory ------------------------------------------------------------------------- */

cudaError_t cudaMalloc(void **p, size_t bytes)
{
    *p = nullptr;
    if (refused_in_capture("cudaMalloc")) return cudaErrorStreamCaptureUnsupported;
    if (bytes == 0) return cudaSuccess;
    *p = new_alloc(bytes, DEVICE);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaFree(void *p)
{
    return free_alloc(p, DEVICE, "cudaFree");
}

cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned int flags)
{
    (void)flags;
    *p = nullptr;
    if (refused_in_capture("cudaHostAlloc")) return cudaErrorStreamCaptureUnsupported;
    *p = new_alloc(bytes, PINNED);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaMallocHost(void **p, size_t bytes)
{
    return cudaHostAlloc(p, bytes, cudaHostAllocDefault);
}

cudaError_t cudaFreeHost(void *p)
{
    return free_alloc(p, PINNED, "cudaFreeHost");
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind)
{
    int ds, ss;
    check_copy(dst, src, n, kind, "cudaMemcpy", &ds, &ss);
    if (refused_in_capture("cudaMemcpy")) return cudaErrorStreamCaptureUnsupported;
    /* On the legacy stream, behind its work (and so behind blocking streams' work). */
    order_with_legacy(&legacy);
    drain(&legacy);
    memmove(dst, src, n);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind,
                            cudaStream_t stream)
{
    int ds, ss;
    check_copy(dst, src, n, kind, "cudaMemcpyAsync", &ds, &ss);
    CUstream_st *s = resolve(stream);
    if (!s) return cudaErrorInvalidResourceHandle;
    if ((ds < 0 || ss < 0) && s->capture) {
        fprintf(stderr, "fake CUDA runtime: cudaMemcpyAsync with pageable host memory during a "
                        "capture: not permitted\n");
        s->invalidated = true;
        return cudaErrorStreamCaptureUnsupported;
    }
    if (ss < 0 && ds >= 0) {
        /* From pageable memory: the driver stages the source at the call. */
        auto staged = std::make_shared<std::vector<unsigned char>>((const unsigned char *)src,
                                                                   (const unsigned char *)src + n);
        return rr_fake_enqueue(stream,
                               [dst, staged] { memcpy(dst, staged->data(), staged->size()); });
    }
    if (ds < 0) {
        /* To pageable memory (or host to host): complete at return. */
        order_with_legacy(s);
        drain(s);
        memmove(dst, src, n);
        return cudaSuccess;
    }
    return rr_fake_enqueue(stream, [dst, src, n] { memmove(dst, src, n); });
}

cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t stream)
{
    rr_fake_require_device(p, n, "cudaMemset");
    return rr_fake_enqueue(stream, [p, v, n] { memset(p, v, n); });
}

cudaError_t cudaMemset(void *p, int v, size_t n)
{
    /* Asynchronous to the host for device memory, on the legacy stream. */
    if (refused_in_capture("cudaMemset")) return cudaErrorStreamCaptureUnsupported;
    return cudaMemsetAsync(p, v, n, 0);
}

/* ---- streams ------------------------------------------------------------------------ */

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *out, unsigned int flags)
{
    CUstream_st *s = new CUstream_st;
    s->flags = flags;
    streams.push_back(s);
    *out = s;
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *out)
{
    return cudaStreamCreateWithFlags(out, cudaStreamDefault);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    CUstream_st *s = resolve(stream);
    if (!s || s == &legacy) return cudaErrorInvalidResourceHandle;
    if (s->capture) return cudaErrorIllegalState;
    drain(s); /* its work still completes */
    for (size_t i = 0; i < streams.size(); i++)
        if (streams[i] == s) streams.erase(streams.begin() + (long)i);
    delete s;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    CUstream_st *s = resolve(stream);
    if (!s) return cudaErrorInvalidResourceHandle;
    if (refused_in_capture("cudaStreamSynchronize")) return cudaErrorStreamCaptureUnsupported;
    order_with_legacy(s);
    drain(s);
    return cudaSuccess;
}

cudaError_t cudaStreamQuery(cudaStream_t stream)
{
    /* Work only runs when waited for; a query waits, so polling loops terminate. */
    return cudaStreamSynchronize(stream);
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode)
{
    (void)mode; /* global and thread-local behave alike with one host thread */
    CUstream_st *s = resolve(stream);
    if (!s) return cudaErrorInvalidResourceHandle;
    if (s == &legacy) return cudaErrorStreamCaptureUnsupported;
    if (s->capture) return cudaErrorIllegalState;
    s->capture = new CUgraph_st;
    s->invalidated = false;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph)
{
    CUstream_st *s = resolve(stream);
    *graph = nullptr;
    if (!s) return cudaErrorInvalidResourceHandle;
    if (!s->capture) return cudaErrorIllegalState;
    CUgraph_st *g = s->capture;
    s->capture = nullptr;
    if (s->invalidated) {
        delete g;
        return cudaErrorStreamCaptureInvalidated;
    }
    graphs.insert(g);
    *graph = g;
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus *status)
{
    CUstream_st *s = resolve(stream);
    if (!s) return cudaErrorInvalidResourceHandle;
    *status = !s->capture      ? cudaStreamCaptureStatusNone
              : s->invalidated ? cudaStreamCaptureStatusInvalidated
                               : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

/* ---- graphs ------------------------------------------------------------------------- */

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags)
{
    (void)flags;
    *exec = nullptr;
    if (!graphs.count(graph)) return cudaErrorInvalidResourceHandle;
    CUgraphExec_st *x = new CUgraphExec_st{graph->nodes};
    execs.insert(x);
    *exec = x;
    return cudaSuccess;
}

cudaError_t cudaGraphUpload(cudaGraphExec_t exec, cudaStream_t stream)
{
    if (!execs.count(exec) || !resolve(stream)) return cudaErrorInvalidResourceHandle;
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream)
{
    if (!execs.count(exec)) return cudaErrorInvalidResourceHandle;
    /* The nodes are shared with the exec, which must outlive the launch (it does on a
     * device too: destroying an exec waits for its launches). */
    return rr_fake_enqueue(stream, [exec] {
        for (auto &n : exec->nodes)
            n();
    });
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec)
{
    if (!execs.count(exec)) return cudaErrorInvalidResourceHandle;
    drain_all();
    execs.erase(exec);
    delete exec;
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph)
{
    if (!graphs.count(graph)) return cudaErrorInvalidResourceHandle;
    graphs.erase(graph);
    delete graph;
    return cudaSuccess;
}

/* ---- events ------------------------------------------------------------------------- */

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *ev, unsigned int flags)
{
    (void)flags;
    *ev = new CUevent_st;
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *ev)
{
    return cudaEventCreateWithFlags(ev, cudaEventDefault);
}

cudaError_t cudaEventDestroy(cudaEvent_t ev)
{
    delete ev;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t ev, cudaStream_t stream)
{
    CUstream_st *s = resolve(stream);
    if (!s) return cudaErrorInvalidResourceHandle;
    if (s->capture) {
        fprintf(stderr, "fake CUDA runtime: events inside a stream capture are not modelled\n");
        abort();
    }
    std::shared_ptr<rr_event_state> st = ev->s;
    st->pending = true;
    st->stream = s;
    return rr_fake_enqueue(stream, [st] {
        st->pending = false;
        st->at = std::chrono::steady_clock::now();
    });
}

cudaError_t cudaEventSynchronize(cudaEvent_t ev)
{
    if (refused_in_capture("cudaEventSynchronize")) return cudaErrorStreamCaptureUnsupported;
    std::shared_ptr<rr_event_state> st = ev->s;
    while (st->pending) {
        std::function<void()> w = std::move(st->stream->q.front());
        st->stream->q.pop_front();
        w();
    }
    return cudaSuccess;
}

cudaError_t cudaEventQuery(cudaEvent_t ev)
{
    return cudaEventSynchronize(ev);
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end)
{
    if (start->s->pending || end->s->pending) return cudaErrorNotReady;
    *ms = std::chrono::duration<float, std::milli>(end->s->at - start->s->at).count();
    return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t ev, unsigned int flags)
{
    (void)flags;
    CUstream_st *s = resolve(stream);
    if (!s) return cudaErrorInvalidResourceHandle;
    if (s->capture) {
        fprintf(stderr, "fake CUDA runtime: events inside a stream capture are not modelled\n");
        abort();
    }
    std::shared_ptr<rr_event_state> st = ev->s;
    if (!st->pending) return cudaSuccess;
    return rr_fake_enqueue(stream, [st] {
        while (st->pending) {
            std::function<void()> w = std::move(st->stream->q.front());
            st->stream->q.pop_front();
            w();
        }
    });
}

} /* extern "C" */
