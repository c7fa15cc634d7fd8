/*
 * loadgen: the benchmark's load generator (python -m bench builds and runs it).
 *
 * Keeps CONNS connections x DEPTH requests in flight against a MEGA server and
 * reports, as one JSON object on stdout, how many answers came back in a
 * measured window and what the server process, this process and the whole
 * machine spent in CPU time during that window.
 *
 * It knows nothing of MEGA's frame layouts (they live in the Python codec):
 * the requests come prebuilt in a ring file (RING_REQUESTS requests of
 * REQUEST_BYTES each, built with mega_client.protocol.encode_request), every
 * answer is RESPONSE_BYTES long, must echo the first ECHO_BYTES of its request
 * (the correlation id) and carry SUCCESS_VALUE at SUCCESS_AT. An answer that
 * does not stops the run with an error: a wrong or short answer cannot be
 * counted as work done.
 *
 * One thread and epoll over every connection: on a 2-CPU machine the server
 * has one CPU, this the other. By default it sleeps in epoll_wait until
 * answers arrive and refills each connection's window as soon as they do;
 * --spin polls instead (lower wake-up latency, a whole CPU burnt).
 *
 * Output (one line): {"requests", "seconds", "all_requests", "reads", "server_cpu_seconds",
 * "server_user_seconds", "server_system_seconds", "self_cpu_seconds",
 * "machine_busy_seconds", "machine_cpus", "loadavg"}; on failure {"error": "..."}
 * and exit status 1 (2 for bad arguments).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RECV_BYTES (1 << 18)
#define MAX_CONNS 4096
#define MAX_ECHO 16

struct conn {
    int fd;
    long inflight;      /* requests sent whose answers are not complete */
    long sent;          /* requests queued so far */
    size_t ring_pos;    /* byte offset in the ring of the next byte to send */
    size_t unsent;      /* bytes queued but not yet taken by the kernel */
    size_t ans_off;     /* bytes of the current answer received so far */
    size_t ans_index;   /* ring index of the request the current answer is for */
    int want_out;       /* registered for EPOLLOUT */
    unsigned char head[MAX_ECHO + 1];
};

struct snapshot {
    double t;
    long answers;
    long reads;
    double server_cpu;  /* -1 when unknown */
    double server_user, server_system;
    double self_cpu;
    double machine_busy;
};

static struct {
    const char *host, *port, *ring_file;
    long conns, depth, count, server_pid;
    size_t request_bytes, response_bytes, echo_bytes, success_at;
    int success_value, spin;
    double warmup, duration, stall_timeout;
} opt = {
    .host = "127.0.0.1", .conns = 1, .depth = 64, .count = -1, .server_pid = -1,
    .echo_bytes = 4, .success_at = 4, .success_value = 1,
    .warmup = 0.3, .duration = 1.0, .stall_timeout = 20.0,
};

static void fail(const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* the message is ours (no outside text), but keep the JSON valid whatever it holds */
    printf("{\"error\": \"");
    for (const char *p = msg; *p; p++) {
        if (*p == '"' || *p == '\\') putchar('\\');
        putchar((unsigned char)*p < 0x20 ? ' ' : *p);
    }
    printf("\"}\n");
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double self_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The server's CPU time, every thread: the first field (ns) of each /proc/PID/task/TID/schedstat; -1 if unreadable. */
static double server_cpu(long pid) {
    char path[128];
    snprintf(path, sizeof path, "/proc/%ld/task", pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    double total = 0;
    int seen = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char p[300];
        snprintf(p, sizeof p, "/proc/%ld/task/%s/schedstat", pid, e->d_name);
        FILE *f = fopen(p, "r");
        if (!f) continue;
        unsigned long long ns;
        if (fscanf(f, "%llu", &ns) == 1) {
            total += ns / 1e9;
            seen = 1;
        }
        fclose(f);
    }
    closedir(d);
    return seen ? total : -1;
}

/* User and system time of the process (/proc/PID/stat, clock ticks). */
static void server_user_system(long pid, double *user, double *sys) {
    char path[64], buf[2048];
    *user = *sys = -1;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return;
    unsigned long long ut, st;
    /* after ")": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2) {
        double tick = (double)sysconf(_SC_CLK_TCK);
        *user = ut / tick;
        *sys = st / tick;
    }
}

/* CPU-seconds the whole machine spent busy (not idle, not waiting for I/O), from /proc/stat. */
static double machine_busy(int *cpus) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    char line[512];
    double busy = -1;
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "cpu ", 4) == 0) {
            unsigned long long v[8] = {0};
            sscanf(line + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7]);
            /* user nice system idle iowait irq softirq steal */
            busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
        } else if (strncmp(line, "cpu", 3) == 0) {
            n++;
        }
    }
    fclose(f);
    if (cpus) *cpus = n;
    return busy;
}

static long reads_total; /* reads that returned bytes */

static void take(struct snapshot *s, long answers) {
    s->t = now();
    s->answers = answers;
    s->reads = reads_total;
    s->self_cpu = self_cpu();
    s->server_cpu = -1;
    s->server_user = s->server_system = -1;
    if (opt.server_pid > 0) {
        s->server_cpu = server_cpu(opt.server_pid);
        server_user_system(opt.server_pid, &s->server_user, &s->server_system);
    }
    s->machine_busy = machine_busy(NULL);
}

static unsigned char *read_ring(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) fail("cannot open the ring file %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size <= 0) fail("the ring file %s is empty or unreadable", path);
    size_t n = (size_t)st.st_size;
    /* twice over, so that any run of up to one ring's bytes is contiguous from any position */
    unsigned char *ring = malloc(2 * n);
    if (!ring || fread(ring, 1, n, f) != n) fail("cannot read the ring file %s", path);
    fclose(f);
    memcpy(ring + n, ring, n);
    *size = n;
    return ring;
}

static int connect_to(const char *host, const char *port) {
    struct addrinfo hints = {0}, *res;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) fail("cannot resolve %s:%s: %s", host, port, gai_strerror(rc));
    int fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) fail("cannot connect to %s:%s: %s", host, port, strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) fail("cannot make a socket non-blocking: %s", strerror(errno));
    return fd;
}

static unsigned char *ring;
static size_t ring_bytes, ring_requests;
static int epfd;
static long answers_total;
static int sending = 1;

static void set_out(struct conn *c, int on) {
    if (c->want_out == on) return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) fail("epoll_ctl: %s", strerror(errno));
    c->want_out = on;
}

/* Hand the kernel as much of the queued bytes as it takes; wait for EPOLLOUT for the rest. */
static void flush(struct conn *c) {
    while (c->unsent) {
        size_t chunk = c->unsent < ring_bytes ? c->unsent : ring_bytes;
        ssize_t n = send(c->fd, ring + c->ring_pos, chunk, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            fail("send: %s", strerror(errno));
        }
        c->unsent -= (size_t)n;
        c->ring_pos = (c->ring_pos + (size_t)n) % ring_bytes;
    }
    set_out(c, c->unsent != 0);
}

/* Queue requests until DEPTH are in flight (or COUNT are sent), then flush. */
static void refill(struct conn *c) {
    if (!sending) return;
    long k = opt.depth - c->inflight;
    if (opt.count >= 0 && k > opt.count - c->sent) k = opt.count - c->sent;
    if (k <= 0) return;
    c->inflight += k;
    c->sent += k;
    c->unsent += (size_t)k * opt.request_bytes;
    flush(c);
}

/* Walk the answers in buf[0:n]: check each one's echo and success byte, count the complete ones. */
static long consume_answers(struct conn *c, const unsigned char *buf, size_t n) {
    size_t head = opt.echo_bytes > opt.success_at + 1 ? opt.echo_bytes : opt.success_at + 1;
    long done = 0;
    size_t i = 0;
    while (i < n) {
        if (c->ans_off < head) {
            size_t take = head - c->ans_off;
            if (take > n - i) take = n - i;
            memcpy(c->head + c->ans_off, buf + i, take);
            c->ans_off += take;
            i += take;
            if (c->ans_off < head) break;
            if (c->head[opt.success_at] != opt.success_value) {
                int code = i < n ? buf[i] : -1;
                fail("answer %ld is not a success (byte %d at offset %zu, next byte %d): "
                     "is the topic missing or full?",
                     answers_total + done, c->head[opt.success_at], opt.success_at, code);
            }
            const unsigned char *req = ring + c->ans_index * opt.request_bytes;
            if (memcmp(c->head, req, opt.echo_bytes) != 0)
                fail("answer %ld does not echo its request's first %zu bytes (the correlation id)",
                     answers_total + done, opt.echo_bytes);
            continue;
        }
        size_t take = opt.response_bytes - c->ans_off;
        if (take > n - i) take = n - i;
        c->ans_off += take;
        i += take;
        if (c->ans_off == opt.response_bytes) {
            c->ans_off = 0;
            c->ans_index = (c->ans_index + 1) % ring_requests;
            done++;
        }
    }
    return done;
}

static void usage(FILE *to) {
    fprintf(to,
            "usage: loadgen --port PORT --ring FILE --request-bytes N --response-bytes N [options]\n"
            "  --host HOST            server address (default 127.0.0.1)\n"
            "  --conns N              connections (default 1)\n"
            "  --depth N              requests in flight per connection (default 64)\n"
            "  --warmup S             seconds before the measured window (default 0.3)\n"
            "  --duration S           seconds measured (default 1.0)\n"
            "  --count N              instead of a timed run: send N requests per connection, then stop\n"
            "  --server-pid PID       report that process's CPU time over the window\n"
            "  --echo-bytes N         leading bytes an answer copies from its request (default 4)\n"
            "  --success-at N         offset of the success byte in an answer (default 4)\n"
            "  --success-value N      its value in a success (default 1)\n"
            "  --spin                 poll for answers instead of sleeping in epoll_wait\n"
            "  --stall-timeout S      fail after S seconds without an answer (default 20)\n");
}

static long arg_long(const char *s, const char *name, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "loadgen: --%s: expected an integer in %ld..%ld, got '%s'\n", name, lo, hi, s);
        exit(2);
    }
    return v;
}

static double arg_double(const char *s, const char *name) {
    char *end;
    double v = strtod(s, &end);
    if (*end || end == s || v < 0 || v > 86400) {
        fprintf(stderr, "loadgen: --%s: expected seconds in 0..86400, got '%s'\n", name, s);
        exit(2);
    }
    return v;
}

static void print_num(const char *key, double v, const char *sep) {
    if (v < 0)
        printf("\"%s\": null%s", key, sep);
    else
        printf("\"%s\": %.9f%s", key, v, sep);
}

int main(int argc, char **argv) {
    static struct option longs[] = {
        {"host", 1, 0, 'h'},          {"port", 1, 0, 'p'},         {"ring", 1, 0, 'r'},
        {"request-bytes", 1, 0, 'q'}, {"response-bytes", 1, 0, 'a'}, {"conns", 1, 0, 'c'},
        {"depth", 1, 0, 'd'},         {"warmup", 1, 0, 'w'},       {"duration", 1, 0, 't'},
        {"count", 1, 0, 'n'},         {"server-pid", 1, 0, 'P'},   {"echo-bytes", 1, 0, 'e'},
        {"success-at", 1, 0, 's'},    {"success-value", 1, 0, 'v'}, {"spin", 0, 0, 'S'},
        {"stall-timeout", 1, 0, 'T'}, {"help", 0, 0, 'H'},         {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 'h': opt.host = optarg; break;
        case 'p': arg_long(optarg, "port", 1, 65535); opt.port = optarg; break;
        case 'r': opt.ring_file = optarg; break;
        case 'q': opt.request_bytes = (size_t)arg_long(optarg, "request-bytes", 1, 1L << 30); break;
        case 'a': opt.response_bytes = (size_t)arg_long(optarg, "response-bytes", 1, 1L << 30); break;
        case 'c': opt.conns = arg_long(optarg, "conns", 1, MAX_CONNS); break;
        case 'd': opt.depth = arg_long(optarg, "depth", 1, 1L << 20); break;
        case 'w': opt.warmup = arg_double(optarg, "warmup"); break;
        case 't': opt.duration = arg_double(optarg, "duration"); break;
        case 'n': opt.count = arg_long(optarg, "count", 1, 1L << 40); break;
        case 'P': opt.server_pid = arg_long(optarg, "server-pid", 1, 1L << 30); break;
        case 'e': opt.echo_bytes = (size_t)arg_long(optarg, "echo-bytes", 0, MAX_ECHO); break;
        case 's': opt.success_at = (size_t)arg_long(optarg, "success-at", 0, MAX_ECHO - 1); break;
        case 'v': opt.success_value = (int)arg_long(optarg, "success-value", 0, 255); break;
        case 'S': opt.spin = 1; break;
        case 'T': opt.stall_timeout = arg_double(optarg, "stall-timeout"); break;
        case 'H': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!opt.port || !opt.ring_file || !opt.request_bytes || !opt.response_bytes || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (opt.response_bytes <= opt.success_at || opt.response_bytes < opt.echo_bytes) {
        fprintf(stderr, "loadgen: --response-bytes must exceed --success-at and --echo-bytes\n");
        return 2;
    }
    ring = read_ring(opt.ring_file, &ring_bytes);
    if (ring_bytes % opt.request_bytes) fail("the ring's size is not a multiple of --request-bytes");
    ring_requests = ring_bytes / opt.request_bytes;

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) fail("epoll_create1: %s", strerror(errno));
    struct conn *conns = calloc((size_t)opt.conns, sizeof *conns);
    if (!conns) fail("out of memory");
    for (long i = 0; i < opt.conns; i++) {
        conns[i].fd = connect_to(opt.host, opt.port);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, conns[i].fd, &ev) != 0) fail("epoll_ctl: %s", strerror(errno));
    }
    unsigned char *buf = malloc(RECV_BYTES);
    struct epoll_event *events = calloc((size_t)opt.conns, sizeof *events);
    if (!buf || !events) fail("out of memory");

    struct snapshot start, end;
    int timed = opt.count < 0;
    double t0 = now();
    double window_at = t0 + (timed ? opt.warmup : 0), deadline = window_at + opt.duration;
    int in_window = 0, done_window = 0;
    if (!timed) {
        take(&start, 0);
        in_window = 1;
    }
    long busy = opt.conns;
    for (long i = 0; i < opt.conns; i++) refill(&conns[i]);
    double last_answer = now();
    while (busy > 0) {
        int timeout = opt.spin ? 0 : 50;
        int nev = epoll_wait(epfd, events, (int)opt.conns, timeout);
        if (nev < 0) {
            if (errno == EINTR) continue;
            fail("epoll_wait: %s", strerror(errno));
        }
        for (int e = 0; e < nev; e++) {
            struct conn *c = events[e].data.ptr;
            if (events[e].events & EPOLLOUT) flush(c);
            if (!(events[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
            ssize_t n = recv(c->fd, buf, RECV_BYTES, 0);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
                fail("recv: %s", strerror(errno));
            }
            if (n == 0) fail("the server closed a connection (after %ld answers)", answers_total);
            reads_total++;
            long k = consume_answers(c, buf, (size_t)n);
            if (!k) continue;
            answers_total += k;
            c->inflight -= k;
            refill(c);
            if (c->inflight == 0 && (!sending || (opt.count >= 0 && c->sent >= opt.count))) busy--;
        }
        double t = now();
        if (nev > 0) last_answer = t;
        else if (t - last_answer > opt.stall_timeout)
            fail("no answer for %.0f s (%ld answers so far)", opt.stall_timeout, answers_total);
        if (timed && !in_window && t >= window_at) {
            take(&start, answers_total);
            in_window = 1;
        }
        if (timed && in_window && !done_window && t >= deadline) {
            take(&end, answers_total);
            done_window = 1;
            sending = 0;
            /* connections with nothing in flight are done now; the others drain their window */
            busy = 0;
            for (long i = 0; i < opt.conns; i++) busy += conns[i].inflight > 0;
        }
    }
    if (!timed) take(&end, answers_total);
    for (long i = 0; i < opt.conns; i++) close(conns[i].fd);

    int cpus = 0;
    machine_busy(&cpus);
    double la[3] = {-1, -1, -1};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &la[0], &la[1], &la[2]) != 3) la[0] = la[1] = la[2] = -1;
        fclose(f);
    }
    double secs = end.t - start.t;
    printf("{\"loadgen\": \"c\", \"conns\": %ld, \"depth\": %ld, ", opt.conns, opt.depth);
    printf("\"requests\": %ld, \"all_requests\": %ld, \"reads\": %ld, ", end.answers - start.answers, answers_total,
           end.reads - start.reads);
    print_num("seconds", secs, ", ");
    int have = start.server_cpu >= 0 && end.server_cpu >= 0;
    print_num("server_cpu_seconds", have ? end.server_cpu - start.server_cpu : -1, ", ");
    have = start.server_user >= 0 && end.server_user >= 0;
    print_num("server_user_seconds", have ? end.server_user - start.server_user : -1, ", ");
    print_num("server_system_seconds", have ? end.server_system - start.server_system : -1, ", ");
    print_num("self_cpu_seconds", end.self_cpu - start.self_cpu, ", ");
    have = start.machine_busy >= 0 && end.machine_busy >= 0;
    print_num("machine_busy_seconds", have ? end.machine_busy - start.machine_busy : -1, ", ");
    printf("\"machine_cpus\": %d, \"loadavg\": [%.2f, %.2f, %.2f]}\n", cpus, la[0], la[1], la[2]);
    return 0;
}
