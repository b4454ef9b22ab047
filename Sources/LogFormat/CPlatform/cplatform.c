#define _GNU_SOURCE
#include "cplatform.h"

#include <errno.h>
#include <fcntl.h>

#if defined(__linux__)
#include <sched.h>
#endif

#if defined(__GLIBC__)
#include <malloc.h>
#endif

int cplatform_release_free_pages(void) {
#if defined(__GLIBC__)
    return malloc_trim(0);
#else
    return 0;
#endif
}

int cplatform_current_cpu(void) {
#if defined(__linux__)
    return sched_getcpu();
#else
    return -1;
#endif
}

int cplatform_leave_cpu(int cpu) {
#if defined(__linux__)
    if (cpu < 0 || sched_getcpu() != cpu) return 0;
    cpu_set_t allowed, others;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 || !CPU_ISSET(cpu, &allowed)) return 0;
    others = allowed;
    CPU_CLR(cpu, &others);
    if (CPU_COUNT(&others) == 0 || sched_setaffinity(0, sizeof others, &others) != 0) return 0;
    // Moved by now; every processor allowed again, so that the scheduler may place the thread anywhere later.
    sched_setaffinity(0, sizeof allowed, &allowed);
    return 1;
#else
    (void)cpu;
    return 0;
#endif
}

int cplatform_open_unnamed_file(const char *directory) {
#if defined(O_TMPFILE)
    return open(directory, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
#else
    errno = EOPNOTSUPP;
    return -1;
#endif
}
