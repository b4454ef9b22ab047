// glibc's malloc_trim for LogFormat's writer: after a seal, the memory it freed (its part of records, the decoded
// events, the sealed file's buffer) is given back to the system rather than kept by malloc's arenas, where it
// raised the collector's resident memory for the rest of its life.
#ifndef AUDIT_CMEMORY_H
#define AUDIT_CMEMORY_H

/// Returns the free pages of every malloc arena to the system: 1 when some were, 0 when none were or the C
/// library is not glibc.
int cmemory_release_free_pages(void);

#endif
