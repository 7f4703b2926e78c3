/*
 * firecrest-shell: the login node's ForceCommand. Runs one allow-listed program per SSH channel, never a
 * shell, and sends one audit record per command to the site's root-owned audit collector.
 *
 * The command line (SSH_ORIGINAL_COMMAND) must be words as Python's shlex.quote writes them: bare safe
 * characters or '...' segments (an embedded quote as '"'"'). It is split here and exec'd as an argv, so no
 * shell ever interprets user data. An optional first word ID=<request id> tags the audit record. A prefix
 * `timeout [-k N] [-s SIG] DURATION` is carried out here (exit status 124 on expiry, the command's process
 * group killed), which saves the gateway's hot path two process starts per command.
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

#define MAX_WORDS 4096

static const char *line = "";
static const char *request_id = "-";
static volatile sig_atomic_t child_group = 0;

static void audit(int status) {
    char blob[8192] = "-";
    const char *auth = getenv("SSH_USER_AUTH");
    if (auth) {
        FILE *f = fopen(auth, "r");
        if (f) {
            char method[64], kind[128];
            if (fscanf(f, "%63s %127s %8191s", method, kind, blob) != 3) strcpy(blob, "-");
            fclose(f);
        }
    }
    size_t size = strlen(line) * 4 + strlen(blob) + 256;
    char *msg = malloc(size);
    if (!msg) return;
    int n = snprintf(msg, size, "firecrest-shell: %d %s %s ", status, blob, request_id);
    /* A refused line may hold control characters: they are written as \xNN, one record per line. */
    for (const unsigned char *p = (const unsigned char *)line; *p && (size_t)n + 5 < size; p++) {
        if (*p < 0x20 || *p == 0x7f)
            n += snprintf(msg + n, size - n, "\\x%02x", *p);
        else
            msg[n++] = (char)*p;
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        strncpy(addr.sun_path, AUDIT_SOCKET, sizeof(addr.sun_path) - 1);
        /* The kernel attaches our real uid (the collector sets SO_PASSCRED). */
        sendto(fd, msg, n, 0, (struct sockaddr *)&addr, sizeof(addr));
        close(fd);
    }
    free(msg);
}

static void refuse(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("firecrest-shell: refused: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    audit(126);
    exit(126);
}

static int safe_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("_@%+=:,./-", c);
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
                if (count == MAX_WORDS) refuse("too many words");
                words[count++] = strdup(word);
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
        if (count == MAX_WORDS) refuse("too many words");
        words[count++] = strdup(word);
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

static void forward(int sig) {
    if (child_group > 0) kill(-child_group, sig);
}

static volatile sig_atomic_t alarmed = 0;

static void on_alarm(int sig) {
    (void)sig;
    alarmed = 1;
}

static void arm(double seconds) {
    struct itimerval t = {{0, 0}, {(time_t)seconds, (suseconds_t)((seconds - (time_t)seconds) * 1e6)}};
    alarmed = 0;
    setitimer(ITIMER_REAL, &t, NULL);
}

/* Waits for `pid`; returns 0 if the alarm went off first. */
static int wait_child(pid_t pid, int *status) {
    while (waitpid(pid, status, 0) < 0) {
        if (errno != EINTR) return 1;
        if (alarmed) return 0;
    }
    return 1;
}

int main(void) {
    const char *given = getenv("SSH_ORIGINAL_COMMAND");
    line = given ? given : "";
    if (!*line) refuse("no command given (interactive shells are not available)");
    for (const unsigned char *p = (const unsigned char *)line; *p; p++)
        if (*p < 0x20 || *p == 0x7f) refuse("control characters in the command line");

    static char *words[MAX_WORDS + 1];
    int count = split(line, words), i = 0;
    if (count > 0 && strncmp(words[0], "ID=", 3) == 0) {
        const char *id = words[0] + 3;
        size_t len = strlen(id);
        int ok = len >= 1 && len <= 64;
        for (const char *c = id; ok && *c; c++) ok = safe_char(*c) && !strchr("@%+=:,/", *c);
        if (ok) {
            request_id = id;
            i = 1;
        }
    }

    double limit = 0, kill_after = 0;
    int sig = SIGTERM;
    if (i < count && strcmp(words[i], "timeout") == 0) {
        for (i++; i < count && words[i][0] == '-'; i++) {
            const char *o = words[i];
            if ((!strcmp(o, "-k") || !strcmp(o, "--kill-after")) && i + 1 < count) kill_after = duration(words[++i]);
            else if (!strncmp(o, "--kill-after=", 13)) kill_after = duration(o + 13);
            else if ((!strcmp(o, "-s") || !strcmp(o, "--signal")) && i + 1 < count) sig = signal_number(words[++i]);
            else if (!strncmp(o, "--signal=", 9)) sig = signal_number(o + 9);
            else refuse("unknown timeout option %.40s", o);
            if (kill_after < 0 || sig < 0) refuse("invalid timeout option %.40s", o);
        }
        if (i >= count || (limit = duration(words[i])) < 0) refuse("timeout needs a duration");
        i++;
    }
    if (i >= count) refuse("no program named");
    const char *program = words[i];
    for (const char *c = program; *c; c++)
        if (!safe_char(*c) || *c == '/') refuse("no program named");
    if (!allowed(program)) refuse("'%.100s' is not an allowed command", program);

    setenv("PATH", "/usr/bin:/bin", 1);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) refuse("cannot start the command");
    if (pid == 0) {
        setpgid(0, 0); /* its own process group, so a timeout kills everything it started */
        execvp(program, words + i);
        fprintf(stderr, "firecrest-shell: %s: %s\n", program, strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    child_group = pid;
    struct sigaction sa = {.sa_handler = forward};
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    struct sigaction alarm_action = {.sa_handler = on_alarm}; /* no SA_RESTART: waitpid returns EINTR */
    sigaction(SIGALRM, &alarm_action, NULL);
    int status = 0, result;
    if (limit > 0) arm(limit);
    if (wait_child(pid, &status)) {
        result = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    } else {
        kill(-pid, sig);
        arm(kill_after > 0 ? kill_after : 5);
        if (!wait_child(pid, &status)) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
        result = 124;
    }
    audit(result);
    return result;
}
