// The LZ4 block API (lz4.h) imports directly; HC is used for the denser optional level.
#ifndef AUDIT_CLZ4_SHIM_H
#define AUDIT_CLZ4_SHIM_H
#include <lz4.h>
#include <lz4hc.h>
#endif
