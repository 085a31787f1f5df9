// Linux interfaces the Glibc module leaves out: signalfd, which lets a FastCGI worker wait on
// its stop signals without a signal handler, and epoll, whose EPOLLEXCLUSIVE wakes one of the
// workers sharing a listening socket rather than all of them.
#include <sys/epoll.h>
#include <sys/signalfd.h>

// epoll_event is packed on x86-64; these keep its layout on the C side.

/// Adds `fd` to `epoll` for reading, `exclusive` with EPOLLEXCLUSIVE; 0, or -1 and errno.
static inline int latchkey_epoll_add(int epoll, int fd, int exclusive) {
    struct epoll_event event = { .events = EPOLLIN | (exclusive ? EPOLLEXCLUSIVE : 0), .data = { .fd = fd } };
    return epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
}

/// Waits on `epoll` (holding `listening` and at most one more descriptor) with no time limit:
/// 1 when `listening` is ready, 2 when the other is, 3 for both; -1 and errno.
static inline int latchkey_epoll_wait(int epoll, int listening) {
    struct epoll_event events[2];
    int ready = epoll_wait(epoll, events, 2, -1), which = 0;
    for (int i = 0; i < ready; i++) which |= events[i].data.fd == listening ? 1 : 2;
    return ready < 0 ? -1 : which;
}
