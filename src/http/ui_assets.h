/*
 * ui_assets.h - the web console's files (ui/ in the source tree), compiled
 * into the binary: scripts/embed_ui.py writes build/http/ui_assets.c from
 * them at build time, one constant row per file.  api_ui.c serves them.
 *
 * Constant data: any thread.
 */
#ifndef KVS_HTTP_UI_ASSETS_H
#define KVS_HTTP_UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
	const char *name;          /* file name under ui/, e.g. "console.js" */
	const char *ctype;         /* its Content-Type */
	const char *etag;          /* "\"<first 16 hex of its SHA-256>\"" */
	const unsigned char *data; /* its bytes */
	size_t len;
};

extern const struct ui_asset ui_assets[];
extern const int ui_asset_count;

#endif
