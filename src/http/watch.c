/*
 * watch.c — the HTTP wing's disconnect watcher. libmicrohttpd neither polls nor times out a
 * suspended connection, so a client that hangs up while its request waits for the engine
 * would go unnoticed until the answer is written. One thread epolls the sockets of the
 * suspended requests for EPOLLRDHUP/HUP/ERR and marks their scheduler request cancelled,
 * which the batcher drops before compute.
 *
 * A watched request sits in a slot; the epoll event carries (generation << 32 | slot), and
 * unwatching bumps the generation under the lock, so a late event for a request that has
 * already ended matches nothing. The slot holds the scheduler request itself (it outlives
 * the slot: a request is unwatched before it is released).
 */
#define _GNU_SOURCE /* EPOLLRDHUP */
#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "http/wing.h"
#include "util/util.h"

#define STOP UINT64_MAX

static void *watch_main(void *arg)
{
    rr_http *h = arg;
    struct epoll_event ev[64];
    for (;;) {
        int n = epoll_wait(h->epfd, ev, 64, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return NULL;
        for (int i = 0; i < n; i++) {
            if (ev[i].data.u64 == STOP) return NULL;
            uint32_t slot = (uint32_t)ev[i].data.u64, gen = (uint32_t)(ev[i].data.u64 >> 32);
            pthread_mutex_lock(&h->watch_mu);
            if ((int)slot < h->n_slots && h->slots[slot].gen == gen && h->slots[slot].r)
                atomic_store(&h->slots[slot].r->cancelled, 1);
            pthread_mutex_unlock(&h->watch_mu);
        }
    }
}

int rr_http_watch(rr_http *h, rr_sched_req *r, int fd, int *slot)
{
    *slot = -1;
    pthread_mutex_lock(&h->watch_mu);
    int i = h->free_slot;
    if (i >= 0) {
        struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLONESHOT,
                                 .data.u64 = (uint64_t)h->slots[i].gen << 32 | (uint32_t)i};
        if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) == 0) {
            h->free_slot = h->slots[i].next_free;
            h->slots[i].r = r;
            h->slots[i].fd = fd;
            *slot = i;
        }
    }
    pthread_mutex_unlock(&h->watch_mu);
    return *slot >= 0;
}

void rr_http_unwatch(rr_http *h, int slot)
{
    if (slot < 0) return;
    pthread_mutex_lock(&h->watch_mu);
    epoll_ctl(h->epfd, EPOLL_CTL_DEL, h->slots[slot].fd, NULL);
    h->slots[slot].r = NULL;
    h->slots[slot].gen++;
    h->slots[slot].next_free = h->free_slot;
    h->free_slot = slot;
    pthread_mutex_unlock(&h->watch_mu);
}

int rr_http_watch_start(rr_http *h, int n_slots)
{
    pthread_mutex_init(&h->watch_mu, NULL);
    h->epfd = epoll_create1(EPOLL_CLOEXEC);
    h->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    h->slots = rr_calloc((size_t)n_slots, sizeof *h->slots);
    if (h->epfd < 0 || h->wake_fd < 0 || !h->slots) return 0;
    h->n_slots = n_slots;
    for (int i = 0; i < n_slots; i++)
        h->slots[i].next_free = i + 1 < n_slots ? i + 1 : -1;
    h->free_slot = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = STOP};
    if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->wake_fd, &ev) != 0) return 0;
    if (pthread_create(&h->watcher, NULL, watch_main, h) != 0) return 0;
    h->watcher_started = 1;
    return 1;
}

void rr_http_watch_stop(rr_http *h)
{
    if (h->watcher_started) {
        uint64_t one = 1;
        ssize_t w = write(h->wake_fd, &one, sizeof one);
        (void)w;
        pthread_join(h->watcher, NULL);
        h->watcher_started = 0;
    }
    if (h->epfd >= 0) close(h->epfd);
    if (h->wake_fd >= 0) close(h->wake_fd);
    h->epfd = h->wake_fd = -1;
    rr_free(h->slots);
    h->slots = NULL;
    pthread_mutex_destroy(&h->watch_mu);
}
