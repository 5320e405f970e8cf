#ifndef CZLIB_SHIM_H
#define CZLIB_SHIM_H
#include <stdlib.h>
#include <zlib.h>

/* deflateInit2 and inflateInit2 are function-like macros (they pass ZLIB_VERSION and
   sizeof(z_stream)), which Swift's ClangImporter does not import: re-export them. */
static inline int cshim_deflateInit2(z_streamp strm, int level, int windowBits, int memLevel, int strategy) {
    return deflateInit2(strm, level, Z_DEFLATED, windowBits, memLevel, strategy);
}
static inline int cshim_inflateInit2(z_streamp strm, int windowBits) {
    return inflateInit2(strm, windowBits);
}

/* A zlib allocator that counts the bytes it hands out, so the memory a stream really holds can
   be reported (metrics, tests). `opaque` points to a size_t counter; each block carries its size
   in a 16-byte prefix, which keeps malloc's 16-byte alignment. */
static inline voidpf cshim_counting_zalloc(voidpf opaque, uInt items, uInt size) {
    size_t bytes = (size_t)items * (size_t)size;
    size_t *block = (size_t *)malloc(bytes + 16);
    if (block == NULL) return Z_NULL;
    block[0] = bytes;
    *(size_t *)opaque += bytes;
    return (voidpf)((char *)block + 16);
}
static inline void cshim_counting_zfree(voidpf opaque, voidpf address) {
    if (address == Z_NULL) return;
    size_t *block = (size_t *)((char *)address - 16);
    *(size_t *)opaque -= block[0];
    free(block);
}
/* Installs the counting allocator on `strm` (before deflateInit2/inflateInit2). */
static inline void cshim_use_counting_allocator(z_streamp strm, size_t *counter) {
    strm->zalloc = cshim_counting_zalloc;
    strm->zfree = cshim_counting_zfree;
    strm->opaque = (voidpf)counter;
}
#endif
