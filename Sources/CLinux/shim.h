#ifndef CLINUX_SHIM_H
#define CLINUX_SHIM_H
/* Linux-only headers that Glibc's Swift module does not re-export. */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <malloc.h>

/* epoll_event is packed on x86_64; Swift cannot always reach its union member cleanly. */
static inline struct epoll_event clinux_epoll_event(uint32_t events, uint64_t data) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = data;
    return ev;
}
static inline uint64_t clinux_epoll_data(const struct epoll_event *ev) { return ev->data.u64; }
static inline uint32_t clinux_epoll_events(const struct epoll_event *ev) { return ev->events; }

/* accept4 is declared only under _GNU_SOURCE, which the system module was not built with. */
extern int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);
static inline int clinux_accept4(int fd, int flags) { return accept4(fd, NULL, NULL, flags); }

/* sigset_t manipulation macros and CPU_* macros are not importable. */
static inline int clinux_block_signals(int a, int b, int c) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, a);
    sigaddset(&set, b);
    if (c > 0) sigaddset(&set, c);
    return pthread_sigmask(SIG_BLOCK, &set, NULL);
}
static inline int clinux_wait_signals(int a, int b, int c) {
    sigset_t set;
    int sig = 0;
    sigemptyset(&set);
    sigaddset(&set, a);
    sigaddset(&set, b);
    if (c > 0) sigaddset(&set, c);
    if (sigwait(&set, &sig) != 0) return -1;
    return sig;
}
/* CPU_SET and friends are _GNU_SOURCE macros: build the affinity mask by hand. */
static inline int clinux_pin_to_cpu(int cpu) {
    unsigned long mask[16] = {0};
    if (cpu < 0 || cpu >= 1024) return -1;
    mask[cpu / 64] |= 1UL << (cpu % 64);
    return (int)syscall(SYS_sched_setaffinity, 0, sizeof(mask), mask);
}
/* mallopt's M_* parameters (issue 17: keep glibc from trimming and regrowing a loop's heap per burst). */
static inline int clinux_malloc_keep_top(int trim_threshold, int top_pad) {
    return mallopt(M_TRIM_THRESHOLD, trim_threshold) && mallopt(M_TOP_PAD, top_pad);
}
#endif
