#include "cmemory.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

int cmemory_release_free_pages(void) {
#if defined(__GLIBC__)
    return malloc_trim(0);
#else
    return 0;
#endif
}
