// wsload: a small C load generator for WebSocket connection setup (issue 17). It exists so the loader is
// not the bound when compare.sh measures handshakes/s: switchboard-bench (Swift) spends 67-108 µs of CPU
// per handshake, this one about a tenth of that, so on a 2-core machine the server's core fills first.
//
// Each of --concurrency slots repeatedly: connects (non-blocking, SO_LINGER 0 so closing resets and leaves
// no TIME_WAIT to exhaust ephemeral ports), sends the RFC 6455 §4.1 upgrade request, checks the 101 and its
// Sec-WebSocket-Accept (§4.2.2, computed once with OpenSSL's SHA-1), then, per --until:
//   upgrade  done at the checked 101;
//   text     done at the first text frame (Switchboard's `hello`);
//   match    sends --send as a masked text frame right after the 101 (nothing when --send ""; e.g. a join
//            in the URL, `/ws?join=hs`) and is done at the first text frame containing --match (default
//            "joined"); a text containing --error-match fails the handshake.
// A slot that does not finish within --timeout-ms fails. Servers' frames must be unmasked (§5.1).
//
// Two ways to run:
//   churn (default)    each connection is reset as soon as it is done, for --count connections or
//                      --duration seconds. Every handshake then also pays for a close on both sides.
//   --clients N        a reconnect storm: N clients arrive (--concurrency in flight) and stay connected.
//                      The round's clock stops at the last one; then all are closed (untimed), the loader
//                      waits until the server is idle, and rounds repeat until --duration seconds of
//                      rounds. Rates and CPU figures cover the rounds only.
//
// It prints one JSON line with the same keys as `switchboard-bench handshakes --json`, plus the loader's
// own CPU per handshake, so compare.sh can use either.
//
// build: cc -O2 -o wsload Benchmarks/loader/wsload.c -lcrypto
// usage: wsload --port P [--host 127.0.0.1] [--path /ws] [--until upgrade|text|match] [--send TEXT]
//               [--match S] [--error-match S] [--count N] [--duration SECONDS] [--concurrency C]
//               [--timeout-ms MS] [--procs N] [--server-pid PID] [--clients N]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum until { UNTIL_UPGRADE, UNTIL_TEXT, UNTIL_MATCH };
enum phase { PH_CONNECTING, PH_HEADERS, PH_FRAMES };
enum failure { F_CONNECT, F_RESET, F_STATUS, F_ACCEPT, F_PROTOCOL, F_CLOSED, F_ERROR_TEXT, F_TIMEOUT, F_COUNT };
static const char *failure_names[F_COUNT] = {"connect", "reset_or_eof", "not_101", "bad_accept", "bad_frame",
                                             "close_frame", "error_text", "timeout"};

#define BUF 8192
struct slot {
    int fd;
    enum phase phase;
    int sent;  // request written
    uint64_t started_ns;
    size_t len;
    unsigned char buf[BUF];
};

static struct {
    const char *host, *path, *send, *match, *error_match;
    int port, concurrency, procs, timeout_ms;
    long count;  // 0: until --duration
    double duration;
    enum until until;
    int server_pid;
    long clients;  // > 0: reconnect-storm rounds of this many clients that stay connected
} opt = {"127.0.0.1", "/ws", "{\"op\":\"join\",\"room\":\"hs\"}", "\"joined\"", "\"op\":\"error\"",
         0, 256, 1, 10000, 0, 10.0, UNTIL_UPGRADE, 0, 0};

static char request[1024];
static size_t request_len;
static char expected_accept[64];
static unsigned char join_frame[1024];
static size_t join_frame_len;
static struct sockaddr_in server_addr;

// What one process did; children send theirs (and their latency samples) to the parent over a pipe.
struct tally {
    long completed, failed, launched;
    long failures[F_COUNT];
    uint64_t last_done_ns;
    long samples;
};

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

// RFC 6455 §4.2.2: base64(SHA-1(key + GUID)).
static void compute_accept(const char *key) {
    char in[128];
    unsigned char digest[SHA_DIGEST_LENGTH];
    snprintf(in, sizeof in, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    unsigned int n = 0;
    if (!EVP_Digest(in, strlen(in), digest, &n, EVP_sha1(), NULL)) die("EVP_Digest");
    EVP_EncodeBlock((unsigned char *)expected_accept, digest, (int)n);
}

static uint32_t rng_state = 0x9e3779b9u;
static uint32_t xorshift(void) {
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_state = x;
}

// A masked text frame (§5.2, §5.3); the key varies per frame.
static void build_join_frame(void) {
    size_t n = strlen(opt.send), o = 0;
    if (n > 900) {
        fprintf(stderr, "--send longer than 900 bytes\n");
        exit(2);
    }
    join_frame[o++] = 0x81;
    if (n < 126) {
        join_frame[o++] = 0x80 | (unsigned char)n;
    } else {
        join_frame[o++] = 0x80 | 126;
        join_frame[o++] = (unsigned char)(n >> 8);
        join_frame[o++] = (unsigned char)n;
    }
    o += 4;  // mask key, filled per send
    memcpy(join_frame + o, opt.send, n);
    join_frame_len = o + n;
}

static void send_join(struct slot *s) {
    unsigned char frame[1024];
    memcpy(frame, join_frame, join_frame_len);
    size_t key_at = (frame[1] & 0x7f) == 126 ? 4 : 2;
    uint32_t k = xorshift();
    memcpy(frame + key_at, &k, 4);
    unsigned char *mask = frame + key_at;
    for (size_t i = key_at + 4; i < join_frame_len; i++) frame[i] ^= mask[(i - key_at - 4) & 3];
    // The 101 just arrived, so the socket's send buffer is empty: one write goes out whole or fails.
    if (write(s->fd, frame, join_frame_len) != (ssize_t)join_frame_len) s->phase = PH_CONNECTING;
}

static int contains(const unsigned char *hay, size_t n, const char *needle) {
    size_t m = strlen(needle);
    return m == 0 || (n >= m && memmem(hay, n, needle, m) != NULL);
}

// Finds header `name` (case-insensitive, at a line start) in the head [p, end) and returns its trimmed value.
static const char *header_value(const char *p, const char *end, const char *name, size_t *len) {
    size_t nl = strlen(name);
    for (const char *line = p; line < end;) {
        const char *eol = memmem(line, (size_t)(end - line), "\r\n", 2);
        if (!eol) eol = end;
        if ((size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            *len = (size_t)(ve - v);
            return v;
        }
        line = eol + 2;
    }
    return NULL;
}

// Result of feeding what a slot has read: 0 more needed, 1 done, -1 - failure code.
static int progress(struct slot *s) {
    if (s->phase == PH_HEADERS) {
        unsigned char *end = memmem(s->buf, s->len, "\r\n\r\n", 4);
        if (!end) return s->len == BUF ? -1 - F_STATUS : 0;
        size_t head = (size_t)(end - s->buf) + 4;
        if (s->len < 12 || memcmp(s->buf, "HTTP/1.1 101", 12) != 0) return -1 - F_STATUS;
        size_t vl = 0;
        const char *v = header_value((const char *)s->buf, (const char *)end, "sec-websocket-accept", &vl);
        if (!v || vl != strlen(expected_accept) || memcmp(v, expected_accept, vl) != 0) return -1 - F_ACCEPT;
        memmove(s->buf, s->buf + head, s->len - head);
        s->len -= head;
        s->phase = PH_FRAMES;
        if (opt.until == UNTIL_UPGRADE) return 1;
        if (opt.until == UNTIL_MATCH && opt.send[0]) {
            send_join(s);
            if (s->phase != PH_FRAMES) return -1 - F_RESET;
        }
    }
    // §5.2 base framing; the server never masks (§5.1).
    for (;;) {
        if (s->len < 2) return 0;
        unsigned op = s->buf[0] & 0x0f;
        if (s->buf[1] & 0x80) return -1 - F_PROTOCOL;
        uint64_t n = s->buf[1] & 0x7f;
        size_t h = 2;
        if (n == 126) {
            if (s->len < 4) return 0;
            n = ((uint64_t)s->buf[2] << 8) | s->buf[3];
            h = 4;
        } else if (n == 127) {
            if (s->len < 10) return 0;
            n = 0;
            for (int i = 2; i < 10; i++) n = (n << 8) | s->buf[i];
            h = 10;
        }
        if (n > BUF - h) return -1 - F_PROTOCOL;  // nothing this loader waits for is that large
        if (s->len < h + n) return 0;
        const unsigned char *payload = s->buf + h;
        if (op == 8) return -1 - F_CLOSED;
        if (op == 1) {
            if (opt.until == UNTIL_TEXT) return 1;
            if (contains(payload, n, opt.match)) return 1;
            if (opt.error_match[0] && contains(payload, n, opt.error_match)) return -1 - F_ERROR_TEXT;
        }
        memmove(s->buf, s->buf + h + n, s->len - h - n);
        s->len -= h + n;
    }
}

// One process's run state (file-level so the helpers below stay plain C).
static int ep;
static struct slot *slots;
static size_t cap;
static uint64_t *samples;
static struct tally *t;
static long run_count;
static int in_flight, running;
static int *held;  // --clients: the finished connections of this round, closed after it
static long held_n;
static uint64_t deadline;
static const struct linger reset_on_close = {1, 0};

// (Re)starts slot i, or leaves it idle when the run is over.
static void launch(int i) {
    struct slot *s = &slots[i];
    s->fd = -1;
    if (!running || (run_count && t->launched >= run_count) || now_ns() >= deadline) return;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset_on_close, sizeof reset_on_close);
    t->launched++;
    in_flight++;
    s->fd = fd;
    s->phase = PH_CONNECTING;
    s->sent = 0;
    s->len = 0;
    s->started_ns = now_ns();
    if (connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) == 0 || errno == EINPROGRESS) {
        // On loopback the TCP handshake usually completes inside connect(): try the request at once.
        if (write(fd, request, request_len) == (ssize_t)request_len) {
            s->sent = 1;
            s->phase = PH_HEADERS;
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET | (s->sent ? 0 : EPOLLOUT), .data.u64 = ((uint64_t)(uint32_t)fd << 32) | (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
    } else {
        s->started_ns = 0;  // failed by the next sweep
    }
}

// Ends slot i's connection with `result` (1 done, -1 - failure code) and starts the next.
static void finish(int i, int result) {
    struct slot *s = &slots[i];
    uint64_t now = now_ns();
    if (result == 1) {
        t->completed++;
        t->last_done_ns = now;
        if ((size_t)t->samples == cap) {
            cap *= 2;
            samples = realloc(samples, cap * sizeof *samples);
            if (!samples) die("realloc");
        }
        samples[t->samples++] = now - s->started_ns;
    } else {
        t->failed++;
        t->failures[-1 - result]++;
    }
    if (result == 1 && held) {
        held[held_n++] = s->fd;
    } else {
        close(s->fd);
    }
    in_flight--;
    launch(i);
}

static int run_one(long count, int concurrency, struct tally *tally, uint64_t **samples_out) {
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    slots = calloc((size_t)concurrency, sizeof *slots);
    cap = 1 << 16;
    samples = malloc(cap * sizeof *samples);
    if (!slots || !samples) die("malloc");
    t = tally;
    memset(t, 0, sizeof *t);
    run_count = count;
    uint64_t start = now_ns();
    // A --clients round runs until its clients are in; --duration counts rounds, not one round's time.
    deadline = opt.clients > 0 ? UINT64_MAX : start + (uint64_t)(opt.duration * 1e9);
    uint64_t timeout = (uint64_t)opt.timeout_ms * 1000000ull;
    in_flight = 0;
    running = 1;

    for (int i = 0; i < concurrency; i++) launch(i);
    struct epoll_event evs[512];
    uint64_t last_sweep = start;
    while (in_flight > 0) {
        int n = epoll_wait(ep, evs, 512, 20);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int k = 0; k < n; k++) {
            int i = (int)(uint32_t)evs[k].data.u64;
            struct slot *s = &slots[i];
            if (s->fd < 0 || s->fd != (int)(evs[k].data.u64 >> 32)) continue;  // a held connection's event
            uint32_t e = evs[k].events;
            if (!s->sent && (e & EPOLLOUT)) {
                if (write(s->fd, request, request_len) != (ssize_t)request_len) {
                    finish(i, -1 - F_CONNECT);
                    continue;
                }
                s->sent = 1;
                s->phase = PH_HEADERS;
            }
            if (!(e & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
            int result = 0;
            for (;;) {  // edge-triggered: read until EAGAIN or a verdict
                ssize_t r = read(s->fd, s->buf + s->len, BUF - s->len);
                if (r > 0) {
                    s->len += (size_t)r;
                    if ((result = progress(s)) != 0) break;
                    continue;
                }
                if (r < 0 && errno == EAGAIN) break;
                result = -1 - (s->sent ? F_RESET : F_CONNECT);
                break;
            }
            if (result != 0) finish(i, result);
        }
        uint64_t now = now_ns();
        if (now >= deadline) running = 0;
        if (now - last_sweep > 20000000ull) {
            last_sweep = now;
            for (int i = 0; i < concurrency; i++)
                if (slots[i].fd >= 0 && (slots[i].started_ns == 0 || now - slots[i].started_ns > timeout))
                    finish(i, -1 - (slots[i].started_ns == 0 ? F_CONNECT : F_TIMEOUT));
        }
    }
    close(ep);
    free(slots);
    *samples_out = samples;
    return 0;
}

static void write_all(int fd, const void *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) die("write to parent");
        p = (const char *)p + w;
        n -= (size_t)w;
    }
}

static int read_all(int fd, void *p, size_t n) {
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r <= 0) return -1;
        p = (char *)p + r;
        n -= (size_t)r;
    }
    return 0;
}

// CPU time the whole machine spent busy (every CPU; not idle, not iowait) in seconds, from /proc/stat.
static double busy_seconds(void) {
    char line[1024];
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (f && fgets(line, sizeof line, f))
        sscanf(line, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
               &v[7]);
    if (f) fclose(f);
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

// Adds one run's counts to `total` (its latency samples are appended by the caller).
static void add_tally(struct tally *total, const struct tally *r) {
    total->completed += r->completed;
    total->failed += r->failed;
    total->launched += r->launched;
    for (int f = 0; f < F_COUNT; f++) total->failures[f] += r->failures[f];
    if (r->last_done_ns > total->last_done_ns) total->last_done_ns = r->last_done_ns;
}

static double cpu_seconds(int who) {
    struct rusage u;
    getrusage(who, &u);
    return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void usage(void);

// CPU time of every thread of `pid` in seconds, from /proc/PID/task/*/schedstat (nanoseconds: finer than
// the 10 ms ticks of /proc/PID/stat, which matter for rounds of a few hundred ms); -1 when unknown.
static double server_seconds(int pid) {
    if (pid <= 0) return -1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    unsigned long long ns = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char f[320];
        snprintf(f, sizeof f, "/proc/%d/task/%s/schedstat", pid, e->d_name);
        FILE *fp = fopen(f, "r");
        unsigned long long v = 0;
        if (fp && fscanf(fp, "%llu", &v) == 1) ns += v;
        if (fp) fclose(fp);
    }
    closedir(d);
    return (double)ns / 1e9;
}

// After a round's clients are closed: waits until the server used under 1 ms of CPU in 20 ms (at most 5 s),
// so its close work is not counted in the next round.
static void wait_for_idle_server(void) {
    double prev = server_seconds(opt.server_pid);
    for (int i = 0; i < 250; i++) {
        usleep(20000);
        double cur = server_seconds(opt.server_pid);
        if (prev < 0 || cur - prev < 0.001) return;
        prev = cur;
    }
}

// Churn mode: one run, in this process or split over --procs children whose results come back by pipe.
static void run_processes(struct tally *total, uint64_t **all, size_t *all_n) {
    if (opt.procs == 1) {
        run_one(opt.count, opt.concurrency, total, all);
        *all_n = (size_t)total->samples;
        return;
    }
    int pipes[64][2];
    pid_t kids[64];
    if (opt.procs > 64) usage();
    for (int p = 0; p < opt.procs; p++) {
        if (pipe(pipes[p]) < 0) die("pipe");
        long c = opt.count ? opt.count / opt.procs + (p < opt.count % opt.procs) : 0;
        int conc = opt.concurrency / opt.procs + (p < opt.concurrency % opt.procs);
        if ((kids[p] = fork()) == 0) {
            rng_state ^= (uint32_t)getpid() * 2654435761u;
            struct tally r;
            uint64_t *s;
            run_one(c, conc, &r, &s);
            write_all(pipes[p][1], &r, sizeof r);
            write_all(pipes[p][1], s, (size_t)r.samples * sizeof *s);
            _exit(0);
        }
        close(pipes[p][1]);
    }
    for (int p = 0; p < opt.procs; p++) {
        struct tally r;
        if (read_all(pipes[p][0], &r, sizeof r) < 0) die("child result");
        *all = realloc(*all, (*all_n + (size_t)r.samples) * sizeof **all);
        if (r.samples && (!*all || read_all(pipes[p][0], *all + *all_n, (size_t)r.samples * sizeof **all) < 0))
            die("child samples");
        *all_n += (size_t)r.samples;
        add_tally(total, &r);
        waitpid(kids[p], NULL, 0);
    }
}

static void usage(void) {
    fprintf(stderr,
            "usage: wsload --port P [--host H] [--path /ws] [--until upgrade|text|match] [--send TEXT]\n"
            "              [--match S] [--error-match S] [--count N] [--duration S] [--concurrency C]\n"
            "              [--timeout-ms MS] [--procs N] [--server-pid PID] [--clients N]\n");
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        i++;
        if (!strcmp(a, "--port")) opt.port = atoi(v);
        else if (!strcmp(a, "--host")) opt.host = v;
        else if (!strcmp(a, "--path")) opt.path = v;
        else if (!strcmp(a, "--send")) opt.send = v;
        else if (!strcmp(a, "--match")) opt.match = v;
        else if (!strcmp(a, "--error-match")) opt.error_match = v;
        else if (!strcmp(a, "--count")) opt.count = atol(v);
        else if (!strcmp(a, "--duration")) opt.duration = atof(v);
        else if (!strcmp(a, "--concurrency")) opt.concurrency = atoi(v);
        else if (!strcmp(a, "--timeout-ms")) opt.timeout_ms = atoi(v);
        else if (!strcmp(a, "--procs")) opt.procs = atoi(v);
        else if (!strcmp(a, "--clients")) opt.clients = atol(v);
        else if (!strcmp(a, "--server-pid")) opt.server_pid = atoi(v);
        else if (!strcmp(a, "--until")) {
            if (!strcmp(v, "upgrade")) opt.until = UNTIL_UPGRADE;
            else if (!strcmp(v, "text")) opt.until = UNTIL_TEXT;
            else if (!strcmp(v, "match")) opt.until = UNTIL_MATCH;
            else usage();
        } else usage();
    }
    if (opt.port <= 0 || opt.concurrency < 1 || opt.procs < 1 || opt.procs > opt.concurrency) usage();
    server_addr.sin_family = AF_INET;
    server_addr.sin_port = htons((uint16_t)opt.port);
    if (inet_pton(AF_INET, opt.host, &server_addr.sin_addr) != 1) usage();
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    compute_accept(key);
    request_len = (size_t)snprintf(request, sizeof request,
                                   "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                                   opt.path, opt.host, opt.port, key);
    build_join_frame();

    struct tally total = {0};
    uint64_t *all = NULL;
    size_t all_n = 0;
    // Sums over the measured windows (the whole run in churn mode, the rounds with --clients).
    double window = 0, loader_cpu = 0, server_cpu = 0, busy = 0;
    int server_known = opt.server_pid > 0;
    long rounds = 0;
    if (opt.clients > 0) {
        if (opt.procs != 1) usage();
        held = malloc((size_t)opt.clients * sizeof *held);
        if (!held) die("malloc");
        do {
            double busy0 = busy_seconds();
            double srv0 = server_seconds(opt.server_pid), cpu0 = cpu_seconds(RUSAGE_SELF);
            uint64_t start = now_ns();
            struct tally r;
            uint64_t *samples_r;
            held_n = 0;
            run_one(opt.clients, opt.concurrency, &r, &samples_r);
            double srv1 = server_seconds(opt.server_pid), cpu1 = cpu_seconds(RUSAGE_SELF), busy1 = busy_seconds();
            window += (double)((r.last_done_ns > start ? r.last_done_ns : now_ns()) - start) / 1e9;
            loader_cpu += cpu1 - cpu0;
            if (srv0 < 0 || srv1 < 0) server_known = 0;
            server_cpu += srv1 - srv0;
            busy += busy1 - busy0;
            all = realloc(all, (all_n + (size_t)r.samples) * sizeof *all);
            if (r.samples && !all) die("realloc");
            memcpy(all + all_n, samples_r, (size_t)r.samples * sizeof *all);
            all_n += (size_t)r.samples;
            free(samples_r);
            add_tally(&total, &r);
            rounds++;
            for (long k = 0; k < held_n; k++) close(held[k]);
            wait_for_idle_server();
        } while (window < opt.duration && total.completed > 0);
    } else {
        double busy0 = busy_seconds();
        double srv0 = server_seconds(opt.server_pid);
        double cpu0 = cpu_seconds(RUSAGE_SELF) + cpu_seconds(RUSAGE_CHILDREN);
        uint64_t start = now_ns();
        run_processes(&total, &all, &all_n);
        uint64_t end = now_ns();
        double srv1 = server_seconds(opt.server_pid);
        double cpu1 = cpu_seconds(RUSAGE_SELF) + cpu_seconds(RUSAGE_CHILDREN);
        double busy1 = busy_seconds();
        // The rate counts to the last completion; CPU shares are over the whole run (the tail included).
        double wall = (double)(end - start) / 1e9;
        double done = total.last_done_ns > start ? (double)(total.last_done_ns - start) / 1e9 : wall;
        loader_cpu = (cpu1 - cpu0) * done / wall;
        server_known = server_known && srv0 >= 0 && srv1 >= 0;
        server_cpu = (srv1 - srv0) * done / wall;
        busy = (busy1 - busy0) * done / wall;
        window = done;
    }
    double rate = window > 0 ? (double)total.completed / window : 0;
    qsort(all, all_n, sizeof *all, cmp_u64);
    double p50 = all_n ? (double)all[all_n / 2] / 1e6 : 0, p99 = all_n ? (double)all[(size_t)(all_n * 0.99)] / 1e6 : 0;

    printf("{\"scenario\":\"handshakes\",\"loader\":\"wsload\",\"procs\":%d,\"concurrency\":%d,\"completed\":%ld,"
           "\"failed\":%ld,\"rounds\":%ld,\"clients_per_round\":%ld,\"seconds\":%.3f,\"handshakes_per_second\":%.1f,\"latency_p50_ms\":%.3f,"
           "\"latency_p99_ms\":%.3f,\"bench_cpu_percent\":%.1f,\"bench_cpu_us_per_handshake\":%.2f",
           opt.procs, opt.concurrency, total.completed, total.failed, rounds, opt.clients, window, rate, p50, p99,
           100 * loader_cpu / window, total.completed ? 1e6 * loader_cpu / (double)total.completed : 0);
    if (server_known)
        printf(",\"gateway_cpu_percent\":%.1f,\"gateway_cpu_us_per_handshake\":%.2f", 100 * server_cpu / window,
               total.completed ? 1e6 * server_cpu / (double)total.completed : 0);
    double other = busy - loader_cpu - (server_known ? server_cpu : 0);
    printf(",\"other_cpu_percent\":%.1f,\"failures\":{", 100 * (other > 0 ? other : 0) / window);
    int first = 1;
    for (int f = 0; f < F_COUNT; f++)
        if (total.failures[f]) {
            printf("%s\"%s\":%ld", first ? "" : ",", failure_names[f], total.failures[f]);
            first = 0;
        }
    printf("}}\n");
    free(all);
    return total.completed > 0 ? 0 : 1;
}
