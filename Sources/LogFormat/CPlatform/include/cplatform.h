// What LogFormat asks of the C library directly: glibc's malloc_trim for the writer (after a seal, the memory it freed
// — its part of records, the decoded events, the sealed file's buffer — is given back to the system rather than kept
// by malloc's arenas, where it raised the collector's resident memory for the rest of its life), and the processor a
// thread runs on, for work shared among the cores (`CallerCore`), and unnamed files (`O_TMPFILE`, a macro Swift does
// not import) for the seal hints of logs waiting for their seal.
#ifndef AUDIT_CPLATFORM_H
#define AUDIT_CPLATFORM_H

/// Returns the free pages of every malloc arena to the system: 1 when some were, 0 when none were or the C
/// library is not glibc.
int cplatform_release_free_pages(void);

/// The processor the calling thread runs on, or -1 where that cannot be known.
int cplatform_current_cpu(void);

/// When the calling thread runs on processor `cpu` and may run on another, moves it to one of the others (its
/// affinity narrowed, then widened again to what it was, so that it is not pinned): 1 when it was moved, else 0.
int cplatform_leave_cpu(int cpu);

/// Opens an unnamed file in `directory`, read and write, closed on exec (Linux's O_TMPFILE: it never has a name,
/// and its blocks are freed when the last descriptor closes). Returns the descriptor, or -1 with errno set (also
/// where O_TMPFILE does not exist, or the file system does not support it).
int cplatform_open_unnamed_file(const char *directory);

#endif
