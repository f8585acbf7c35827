/*
 * zstd_codec.h - one zstd frame in, one out: the compression of large push
 * bodies between peers (replicate.c sends, api_peer.c receives).
 *
 * Compression is negotiated, never assumed: a node that takes zstd bodies
 * says so in its push replies (Accept-Encoding: zstd, RFC 7694), and a
 * sender compresses only for a peer that said so.  Decompression is
 * bounded: a frame that would grow past the receiver's body cap is refused
 * without ever holding more than the cap (a small frame of zeros can claim
 * gigabytes).
 */
#ifndef KVS_ZSTD_CODEC_H
#define KVS_ZSTD_CODEC_H

#include <stddef.h>

#include "buf.h"

/* Below this, a push body is sent as it is: the frame would save little. */
#define ZSTD_CODEC_MIN_BYTES (16u << 10)

/* Compresses in[0..len) into out (emptied first) as one frame, level 1.
 * Returns 0, or KVS_ENOMEM / KVS_ETOOBIG (out's cap). */
int zstd_pack(const void *in, size_t len, struct buf *out);

/*
 * Decompresses exactly one whole frame in[0..len) of at most cap bytes
 * into *out (malloc'd, NUL-terminated; the caller frees it) and *out_len.
 * Returns 0; KVS_ETOOBIG when the content passes cap; KVS_EINVAL for a
 * damaged or truncated frame, or bytes after it; KVS_ENOMEM.  *out is NULL
 * on every error.  Thread-safe (no shared state).
 */
int zstd_unpack(const void *in, size_t len, size_t cap, char **out, size_t *out_len);

#endif
