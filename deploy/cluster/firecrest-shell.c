/*
 * firecrest-shell: the login node's ForceCommand. Runs one allow-listed program per SSH channel, never a
 * shell, and has the site's root-owned audit collector record it before it runs.
 *
 * The command line (SSH_ORIGINAL_COMMAND) must be words as Python's shlex.quote writes them: bare safe
 * characters or '...' segments (an embedded quote as '"'"'). It is split here and exec'd as an argv, so no
 * shell ever interprets user data. An optional first word ID=<request id> tags the audit record. A prefix
 * `timeout [-k N] [-s SIG] DURATION` is carried out here (exit status 124 on expiry, the command's process
 * group killed), which saves the gateway's hot path two process starts per command.
 *
 * Audit. The wrapper runs as the user, so the user may signal it or run it from a job. It is installed setgid
 * to the audit group, the only group (besides root) that may connect to the collector's socket: it connects
 * first (close-on-exec), then drops the group for good (real, effective and saved), so the privilege is that
 * one connection and nothing else. Before the program runs, the collector has acknowledged a start record
 * (certificate, request id, command); the exit status follows on the same connection. Killing the wrapper
 * loses at most the exit status (the collector then records the command as "lost"), never the command. The
 * user cannot take the connection over: a setgid process is not dumpable (no ptrace, no /proc/<pid>/fd for
 * the user, also after the drop), and the loader ignores LD_* and similar variables for it.
 *
 * Built at `up` by deploy/local with -DALLOWED_FILE="..." -DAUDIT_SOCKET="...".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef ALLOWED_FILE
#error "build with -DALLOWED_FILE=\"/path/to/allowed-commands\""
#endif
#ifndef AUDIT_SOCKET
#error "build with -DAUDIT_SOCKET=\"/path/to/audit.sock\""
#endif
_Static_assert(sizeof(AUDIT_SOCKET) <= sizeof(((struct sockaddr_un *)0)->sun_path), "AUDIT_SOCKET is too long");

#define MAX_WORDS 4096
#define MAX_RECORD 65536 /* one message; the collector reads no more */
#define ACK_TIMEOUT_S 10

struct limit {
    double seconds, kill_after;
    int sig;
};

static const char *line = "";
static const char *request_id = "-";
static int audit_fd = -1;
static int started = 0; /* the collector has the start record */
static volatile sig_atomic_t child_group = 0;

/* Exits 126 before anything ran, when nothing can be recorded. */
static void fail(const char *why) {
    fprintf(stderr, "firecrest-shell: refused: %s\n", why);
    exit(126);
}

/* Connects to the collector while the audit group is effective, then gives the group up for good. */
static void audit_connect(void) {
    int connected = 0;
    audit_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (audit_fd >= 0) {
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        memcpy(addr.sun_path, AUDIT_SOCKET, sizeof(AUDIT_SOCKET));
        connected = connect(audit_fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    }
    gid_t gid = getgid(), r, e, s;
    if (setresgid(gid, gid, gid) != 0 || getresgid(&r, &e, &s) != 0 || r != gid || e != gid || s != gid)
        fail("cannot drop the audit group");
    if (!connected) fail("the audit log is unavailable");
}

/* The certificate this session authenticated with (sshd's ExposeAuthInfo file), read as the user. */
static void auth_blob(char *blob) {
    const char *auth = getenv("SSH_USER_AUTH");
    FILE *f = auth ? fopen(auth, "r") : NULL;
    if (!f) return;
    char method[64], kind[128];
    if (fscanf(f, "%63s %127s %8191s", method, kind, blob) != 3) strcpy(blob, "-");
    fclose(f);
}

/* Appends `s` at out[n] with control characters as \xNN (a refused line may hold them), within `cap`. */
static size_t append_escaped(char *out, size_t n, size_t cap, const char *s) {
    static const char more[] = " [truncated]";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (n + 4 + sizeof(more) >= cap) {
            memcpy(out + n, more, sizeof(more) - 1);
            return n + sizeof(more) - 1;
        }
        if (*p < 0x20 || *p == 0x7f)
            n += (size_t)snprintf(out + n, cap - n, "\\x%02x", *p);
        else
            out[n++] = (char)*p;
    }
    return n;
}

/* Sends the start record and waits until the collector has it: no program runs unrecorded. */
static int audit_start(void) {
    static char msg[MAX_RECORD];
    char blob[8192] = "-", ack[8];
    auth_blob(blob);
    int n = snprintf(msg, sizeof(msg), "start %s %s ", blob, request_id);
    if (n < 0 || (size_t)n >= sizeof(msg)) return 0;
    size_t len = append_escaped(msg, (size_t)n, sizeof(msg), line);
    if (send(audit_fd, msg, len, MSG_NOSIGNAL) != (ssize_t)len) return 0;
    started = 1;
    struct timeval t = {ACK_TIMEOUT_S, 0};
    if (setsockopt(audit_fd, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof(t)) != 0) return 0;
    ssize_t got;
    do got = recv(audit_fd, ack, sizeof(ack), 0);
    while (got < 0 && errno == EINTR);
    return got == 2 && memcmp(ack, "ok", 2) == 0;
}

/* The exit status; if it cannot be sent, the collector records the command as lost. */
static void audit_end(int status) {
    char msg[32];
    int n = snprintf(msg, sizeof(msg), "end %d", status);
    if (n > 0) (void)send(audit_fd, msg, (size_t)n, MSG_NOSIGNAL); /* the start record is there already */
}

static void refuse(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("firecrest-shell: refused: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (started || audit_start()) audit_end(126);
    exit(126);
}

static int safe_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("_@%+=:,./-", c);
}

static void add_word(char **words, int *count, const char *word) {
    if (*count == MAX_WORDS) refuse("too many words");
    if (!(words[*count] = strdup(word))) refuse("out of memory");
    (*count)++;
}

/* Splits `s` into words of the shlex.quote grammar; refuses anything else. */
static int split(const char *s, char **words) {
    int count = 0, inword = 0;
    char *word = malloc(strlen(s) + 1), *w = word;
    if (!word) refuse("out of memory");
    while (*s) {
        if (*s == ' ') {
            if (inword) {
                *w = 0;
                add_word(words, &count, word);
                w = word;
                inword = 0;
            }
            s++;
        } else if (safe_char(*s)) {
            *w++ = *s++;
            inword = 1;
        } else if (*s == '\'') {
            const char *end = strchr(s + 1, '\'');
            if (!end) refuse("unterminated quote");
            memcpy(w, s + 1, end - s - 1);
            w += end - s - 1;
            s = end + 1;
            inword = 1;
        } else if (strncmp(s, "\"'\"", 3) == 0) {
            *w++ = '\'';
            s += 3;
            inword = 1;
        } else {
            refuse("not a plain word list at: %.20s", s);
        }
    }
    if (inword) {
        *w = 0;
        add_word(words, &count, word);
    }
    free(word);
    words[count] = NULL;
    return count;
}

static int allowed(const char *program) {
    FILE *f = fopen(ALLOWED_FILE, "r");
    if (!f) return 0;
    char entry[256];
    int found = 0;
    while (!found && fgets(entry, sizeof(entry), f)) {
        entry[strcspn(entry, " \t\r\n#")] = 0;
        found = entry[0] && strcmp(entry, program) == 0;
    }
    fclose(f);
    return found;
}

static double duration(const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0 || (s[0] < '0' || s[0] > '9')) return -1;
    switch (*end) {
        case 0: case 's': break;
        case 'm': v *= 60; break;
        case 'h': v *= 3600; break;
        case 'd': v *= 86400; break;
        default: return -1;
    }
    if (v > 1e8) v = 1e8; /* about three years: keeps the timer's fields in range */
    return (*end && end[1]) ? -1 : v;
}

static int signal_number(const char *s) {
    static const struct { const char *name; int sig; } names[] = {
        {"TERM", SIGTERM}, {"KILL", SIGKILL}, {"INT", SIGINT}, {"HUP", SIGHUP}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}};
    if (strncmp(s, "SIG", 3) == 0) s += 3;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i].name) == 0) return names[i].sig;
    char *end;
    long n = strtol(s, &end, 10);
    return (*s && !*end && n > 0 && n < NSIG) ? (int)n : -1;
}

/* An optional first word ID=<request id>; returns the index of the next word. */
static int take_request_id(char **words, int count) {
    if (count == 0 || strncmp(words[0], "ID=", 3) != 0) return 0;
    const char *id = words[0] + 3;
    size_t len = strlen(id);
    int ok = len >= 1 && len <= 64;
    for (const char *c = id; ok && *c; c++) ok = safe_char(*c) && !strchr("@%+=:,/", *c);
    if (!ok) return 0;
    request_id = id;
    return 1;
}

/* An optional prefix `timeout [options] DURATION` at words[i]; returns the index of the program. */
static int take_timeout(char **words, int count, int i, struct limit *lim) {
    if (i >= count || strcmp(words[i], "timeout") != 0) return i;
    for (i++; i < count && words[i][0] == '-'; i++) {
        const char *o = words[i];
        if ((!strcmp(o, "-k") || !strcmp(o, "--kill-after")) && i + 1 < count) lim->kill_after = duration(words[++i]);
        else if (!strncmp(o, "--kill-after=", 13)) lim->kill_after = duration(o + 13);
        else if ((!strcmp(o, "-s") || !strcmp(o, "--signal")) && i + 1 < count) lim->sig = signal_number(words[++i]);
        else if (!strncmp(o, "--signal=", 9)) lim->sig = signal_number(o + 9);
        else refuse("unknown timeout option %.40s", o);
        if (lim->kill_after < 0 || lim->sig < 0) refuse("invalid timeout option %.40s", o);
    }
    if (i >= count || (lim->seconds = duration(words[i])) < 0) refuse("timeout needs a duration");
    return i + 1;
}

static void forward(int sig) {
    if (child_group > 0) kill(-child_group, sig);
}

static volatile sig_atomic_t alarmed = 0;

static void on_alarm(int sig) {
    (void)sig;
    alarmed = 1;
}

static int arm(double seconds) {
    struct itimerval t = {{0, 0}, {(time_t)seconds, (suseconds_t)((seconds - (time_t)seconds) * 1e6)}};
    alarmed = 0;
    return setitimer(ITIMER_REAL, &t, NULL);
}

/* Waits for `pid`; returns 0 if the alarm went off first. */
static int wait_child(pid_t pid, int *status) {
    while (waitpid(pid, status, 0) < 0) {
        if (errno != EINTR) return 1;
        if (alarmed) return 0;
    }
    return 1;
}

/* Signals for the wrapper go to the command's process group; the alarm interrupts waitpid (no SA_RESTART). */
static int install_handlers(void) {
    struct sigaction pass = {.sa_handler = forward}, alarm_action = {.sa_handler = on_alarm};
    return sigaction(SIGHUP, &pass, NULL) || sigaction(SIGTERM, &pass, NULL) || sigaction(SIGINT, &pass, NULL) ||
           sigaction(SIGALRM, &alarm_action, NULL);
}

/* Runs argv in its own process group (so a timeout kills everything it started); returns its exit status. */
static int run(char **argv, const struct limit *lim) {
    if (setenv("PATH", "/usr/bin:/bin", 1) != 0) refuse("cannot set PATH");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) refuse("cannot start the command");
    if (pid == 0) {
        if (setpgid(0, 0) != 0) _exit(127);
        execvp(argv[0], argv);
        fprintf(stderr, "firecrest-shell: %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    (void)setpgid(pid, pid); /* also done by the child; EACCES here only means it has exec'd already */
    child_group = pid;
    int status = 0;
    if (install_handlers() != 0 || (lim->seconds > 0 && arm(lim->seconds) != 0)) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
        refuse("cannot supervise the command");
    }
    if (wait_child(pid, &status)) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    kill(-pid, lim->sig);
    if (arm(lim->kill_after > 0 ? lim->kill_after : 5) != 0 || !wait_child(pid, &status)) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    return 124;
}

int main(void) {
    audit_connect(); /* first: the group privilege is used for this and nothing else */
    const char *given = getenv("SSH_ORIGINAL_COMMAND");
    line = given ? given : "";
    if (!*line) refuse("no command given (interactive shells are not available)");
    for (const unsigned char *p = (const unsigned char *)line; *p; p++)
        if (*p < 0x20 || *p == 0x7f) refuse("control characters in the command line");

    static char *words[MAX_WORDS + 1];
    struct limit lim = {0, 0, SIGTERM};
    int count = split(line, words);
    int i = take_timeout(words, count, take_request_id(words, count), &lim);
    if (i >= count) refuse("no program named");
    const char *program = words[i];
    for (const char *c = program; *c; c++)
        if (!safe_char(*c) || *c == '/') refuse("no program named");
    if (!allowed(program)) refuse("'%.100s' is not an allowed command", program);

    if (!audit_start()) fail("the audit log is unavailable");
    int result = run(words + i, &lim);
    audit_end(result);
    return result;
}
