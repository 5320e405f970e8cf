/* What one idle server-side OpenSSL connection keeps on the heap after a TLS 1.3 handshake, by allocation site.
 *
 * Same context settings as Sources/TLS/TLSContext.swift (TLS 1.2 minimum, no renegotiation, no compression,
 * SSL_MODE_RELEASE_BUFFERS, no server session cache, X25519/P-256/P-384, stateless tickets). N connections run
 * over socketpairs: handshake, the client's tickets read, a few bytes each way (as after the WebSocket upgrade),
 * then the client side is freed and the server SSL kept. OpenSSL's allocator is replaced with
 * CRYPTO_set_mem_functions, which passes the file and line of every OPENSSL_malloc, so the live allocations
 * can be summed per site and divided by N.
 *
 *   cc -O1 -o tls-ssl-memory Benchmarks/tls-ssl-memory.c -lssl -lcrypto
 *   ./tls-ssl-memory 1000 cert.pem key.pem           (Benchmarks/tls-memory.sh runs it)
 * Variants, one environment variable each: NO_TICKETS=1 (SSL_CTX_set_num_tickets 0), FREE_BUFFERS=1
 * (SSL_free_buffers after the exchange), CHACHA=1 (ChaCha20-Poly1305 preferred over AES-128-GCM).
 */
#include <fcntl.h>
#include <malloc.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SLOTS (1 << 22)
typedef struct { void *p; const char *file; int line; size_t n; } rec;
static rec *live;
static int tracking;
#define TOMB ((void *)1)

static size_t slot(void *p) { return (((size_t)p >> 4) * 2654435761u) & (SLOTS - 1); }
static void add(void *p, size_t n, const char *f, int l) {
    if (!p || !tracking) return;
    size_t i = slot(p);
    while (live[i].p && live[i].p != TOMB) i = (i + 1) & (SLOTS - 1);
    live[i] = (rec){p, f, l, n};
}
static void del(void *p) {
    if (!p) return;
    for (size_t i = slot(p); live[i].p; i = (i + 1) & (SLOTS - 1))
        if (live[i].p == p) { live[i].p = TOMB; return; }
}
static void *m(size_t n, const char *f, int l) { void *p = malloc(n); add(p, n, f, l); return p; }
static void *r(void *o, size_t n, const char *f, int l) { del(o); void *p = realloc(o, n); add(p, n, f, l); return p; }
static void fr(void *p, const char *f, int l) { (void)f; (void)l; del(p); free(p); }
static int env(const char *k) { const char *v = getenv(k); return v && *v == '1'; }

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    const char *cert = argc > 2 ? argv[2] : "cert.pem", *key = argc > 3 ? argv[3] : "key.pem";
    live = calloc(SLOTS, sizeof(rec));
    CRYPTO_set_mem_functions(m, r, fr);
    OPENSSL_init_ssl(0, NULL);
    SSL_CTX *s = SSL_CTX_new(TLS_server_method()), *c = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);
    SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
    SSL_CTX_set1_groups_list(s, "X25519:P-256:P-384");
    if (env("CHACHA")) SSL_CTX_set_ciphersuites(s, "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256");
    if (env("NO_TICKETS")) SSL_CTX_set_num_tickets(s, 0);
    if (SSL_CTX_use_certificate_chain_file(s, cert) != 1 || SSL_CTX_use_PrivateKey_file(s, key, SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL **kept = calloc(n, sizeof(SSL *));
    struct mallinfo2 before = mallinfo2();
    tracking = 1;
    for (int i = 0; i < n; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) { perror("socketpair"); return 1; }
        fcntl(sv[0], F_SETFL, O_NONBLOCK);
        fcntl(sv[1], F_SETFL, O_NONBLOCK);
        SSL *ss = SSL_new(s), *cs = SSL_new(c);
        SSL_set_fd(ss, sv[0]);
        SSL_set_fd(cs, sv[1]);
        SSL_set_accept_state(ss);
        SSL_set_connect_state(cs);
        int sd = 0, cd = 0;
        for (int k = 0; k < 100 && !(sd && cd); k++) {
            if (!cd) cd = SSL_do_handshake(cs) == 1;
            if (!sd) sd = SSL_do_handshake(ss) == 1;
        }
        if (!(sd && cd)) { fprintf(stderr, "handshake failed\n"); ERR_print_errors_fp(stderr); return 1; }
        char buf[64];
        SSL_write(cs, "hello", 5);
        for (int k = 0; k < 4; k++) { SSL_read(cs, buf, sizeof buf); SSL_read(ss, buf, sizeof buf); }
        SSL_write(ss, "world", 5);
        SSL_read(cs, buf, sizeof buf);
        if (env("FREE_BUFFERS")) SSL_free_buffers(ss);
        SSL_free(cs);
        close(sv[1]);
        kept[i] = ss;
    }
    tracking = 0;
    struct mallinfo2 after = mallinfo2();
    typedef struct { const char *f; int l; size_t bytes, count; } site;
    site *sites = calloc(4096, sizeof(site));
    int ns = 0;
    size_t total = 0, chunks = 0;
    for (size_t i = 0; i < SLOTS; i++) {
        if (live[i].p == NULL || live[i].p == TOMB) continue;
        int j;
        for (j = 0; j < ns; j++) if (sites[j].f == live[i].file && sites[j].l == live[i].line) break;
        if (j == ns) { if (ns == 4096) continue; sites[ns++] = (site){live[i].file, live[i].line, 0, 0}; }
        sites[j].bytes += live[i].n;
        sites[j].count++;
        total += live[i].n;
        chunks++;
    }
    for (int x = 0; x < ns; x++)
        for (int y = x + 1; y < ns; y++)
            if (sites[y].bytes > sites[x].bytes) { site t = sites[x]; sites[x] = sites[y]; sites[y] = t; }
    printf("%d idle server SSLs: %.0f B requested per connection in %.1f allocations; glibc heap in use +%.0f B per connection\n",
           n, (double)total / n, (double)chunks / n, (double)(after.uordblks - before.uordblks) / n);
    for (int x = 0; x < ns && x < 20; x++)
        printf("%8.0f B %5.2f x  %s:%d\n", (double)sites[x].bytes / n, (double)sites[x].count / n, sites[x].f ? sites[x].f : "?", sites[x].l);
    for (int i = 0; i < n; i++) SSL_free(kept[i]);
    return 0;
}
