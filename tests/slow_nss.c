/* Makes the system's user database slow for one user, as a far or failing
 * LDAP/SSSD directory is: LD_PRELOAD it into a process with
 * SLOW_NSS_USER=name, SLOW_NSS_SECONDS=3 and, optionally,
 * SLOW_NSS_LOG=file (one line appended per lookup of that user).  Every
 * other lookup, and that one after the wait, is the real getpwnam_r. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int (*getpwnam_r_fn)(const char *, struct passwd *, char *, size_t, struct passwd **);

int getpwnam_r(const char *name, struct passwd *pwd, char *buf, size_t buflen, struct passwd **result) {
    static getpwnam_r_fn real;
    if (real == NULL) {
        real = (getpwnam_r_fn)dlsym(RTLD_NEXT, "getpwnam_r");
    }
    const char *slow = getenv("SLOW_NSS_USER");
    if (slow != NULL && strcmp(name, slow) == 0) {
        const char *log = getenv("SLOW_NSS_LOG");
        if (log != NULL) {
            int fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0600);
            if (fd >= 0) {
                (void)write(fd, "lookup\n", 7);
                close(fd);
            }
        }
        const char *seconds = getenv("SLOW_NSS_SECONDS");
        double wait = seconds != NULL ? atof(seconds) : 3.0;
        struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        while (nanosleep(&ts, &ts) != 0) {
        }
    }
    return real(name, pwd, buf, buflen, result);
}
