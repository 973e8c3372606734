/* Memory for secrets (data keys, plaintexts, PINs): locked, never swapped, wiped on free.
 *
 * sodium_malloc gives each allocation its own pages, guard pages and mlock: that costs several
 * system calls, which serialise threads on the address-space lock and dominated the hot path
 * (GenerateDataKey ran at a third of Encrypt's rate). Small secrets therefore come from slabs of
 * fixed-size slots carved out of one sodium_malloc'd (locked, guarded) region per size class;
 * larger ones, and any request once a class is full, fall back to sodium_malloc itself. Every
 * slot is wiped with sodium_memzero when it is freed. */
#ifndef KMS_UTIL_SECMEM_H
#define KMS_UTIL_SECMEM_H

#include <stddef.h>

/* NULL (with KMSInternalException raised) when out of memory. */
void *kms_secure_alloc(size_t n);
/* Wipes and frees memory from kms_secure_alloc; NULL is fine. */
void kms_secure_free(void *p);

#endif
