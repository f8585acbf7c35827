/*
 * zstd_codec.c - one-frame zstd compression with a bounded decompression
 * (see zstd_codec.h).
 */
#include "zstd_codec.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "kvs.h"

int zstd_pack(const void *in, size_t len, struct buf *out)
{
	size_t bound = ZSTD_compressBound(len), n;

	buf_reset(out);
	if (bound > out->max)
		return KVS_ETOOBIG;
	if (out->alloc < bound + 1) {
		char *p = realloc(out->data, bound + 1);

		if (!p)
			return KVS_ENOMEM;
		out->data = p;
		out->alloc = bound + 1;
	}
	n = ZSTD_compress(out->data, bound, in, len, 1);
	if (ZSTD_isError(n))
		return KVS_ENOMEM; /* only a lack of memory: the bound holds every input */
	out->len = n;
	out->data[n] = '\0';
	return 0;
}

int zstd_unpack(const void *in, size_t len, size_t cap, char **out, size_t *out_len)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	ZSTD_inBuffer src = { in, len, 0 };
	size_t alloc = 64u << 10, ret = 1;
	char *dst = NULL;
	int rc = 0;

	*out = NULL;
	*out_len = 0;
	if (!d)
		return KVS_ENOMEM;
	/* at most cap + 1 bytes ever: one byte past the cap proves it passed */
	/* a window no larger than the cap needs (a hostile frame may ask for
	 * more; 2^27 = 128 MiB at most), so memory stays near the cap */
	int wlog = 10; /* zstd's smallest */
	while (wlog < 27 && ((size_t)1 << wlog) < cap)
		wlog++;
	ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, wlog);
	alloc = alloc < cap + 1 ? alloc : cap + 1;
	if (!(dst = malloc(alloc + 1))) {
		ZSTD_freeDCtx(d);
		return KVS_ENOMEM;
	}
	ZSTD_outBuffer o = { dst, alloc, 0 };
	while (ret != 0) {
		if (o.pos == o.size) {
			if (o.size > cap) { /* cap + 1 bytes out and more to come */
				rc = KVS_ETOOBIG;
				break;
			}
			size_t grow = o.size * 2 < cap + 1 ? o.size * 2 : cap + 1;
			char *p = realloc(dst, grow + 1);

			if (!p) {
				rc = KVS_ENOMEM;
				break;
			}
			dst = p;
			o.dst = dst;
			o.size = grow;
		}
		size_t before_in = src.pos, before_out = o.pos;
		ret = ZSTD_decompressStream(d, &o, &src);
		if (ZSTD_isError(ret)) {
			rc = ZSTD_getErrorCode(ret) == ZSTD_error_memory_allocation ? KVS_ENOMEM
										  : KVS_EINVAL;
			break;
		}
		if (ret != 0 && src.pos == src.size && o.pos < o.size &&
		    before_in == src.pos && before_out == o.pos) {
			rc = KVS_EINVAL; /* input ended inside the frame: truncated */
			break;
		}
	}
	if (rc == 0 && o.pos > cap)
		rc = KVS_ETOOBIG;
	if (rc == 0 && src.pos != src.size)
		rc = KVS_EINVAL; /* bytes after the frame */
	ZSTD_freeDCtx(d);
	if (rc != 0) {
		free(dst);
		return rc;
	}
	dst[o.pos] = '\0';
	*out = dst;
	*out_len = o.pos;
	return 0;
}
