/*
 * api_ui.c - GET|HEAD /ui and /ui/{file}: the web console (SPEC section
 * 14), static files compiled into the binary (ui_assets.h).
 *
 * The console is a page of HTML, CSS and JavaScript that talks to the
 * node only through the public API (/kv/, /watch/, /members/, /health,
 * /metrics) with the user's own token, so it can do nothing curl cannot.
 * Serving its files is therefore open (the route's access is AUTH_OPEN):
 * they hold no data.  "ui: false" answers 404 to every /ui path.
 *
 * Every file is sent with its own Content-Type, an ETag (304 to a
 * matching If-None-Match), "Cache-Control: no-cache" (revalidated, so a
 * new binary's files are picked up at once) and a strict
 * Content-Security-Policy: scripts, styles and images from this node
 * only, requests to this node only, no inline script, no framing.
 *
 * Threads: worker threads, any number at once; the assets are constant.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "http.h"
#include "ui_assets.h"

#define UI_HEADERS                                                                           \
	"Cache-Control: no-cache\r\n"                                                        \
	"Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; " \
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "    \
	"frame-ancestors 'none'\r\n"                                                         \
	"X-Content-Type-Options: nosniff\r\n"                                                \
	"X-Frame-Options: DENY\r\n"                                                          \
	"Referrer-Policy: no-referrer\r\n"

/* The asset named by raw_path ("/ui", "/ui/": the page), or NULL. */
static const struct ui_asset *ui_find(const char *raw_path)
{
	const char *name = raw_path + strlen("/ui");

	if (*name == '/')
		name++;
	if (*name == '\0')
		name = "index.html";
	for (int i = 0; i < ui_asset_count; i++)
		if (strcmp(ui_assets[i].name, name) == 0)
			return &ui_assets[i];
	return NULL;
}

int api_ui(struct kvs_node *node, struct mg_connection *c, const struct mg_request_info *ri,
	   const char *raw_path)
{
	const struct ui_asset *a;
	const char *inm;
	char extra[1024];

	(void)ri;
	if (!node->cfg.ui)
		return http_error(c, 404, NULL, "the console is turned off on this node (ui: false)");
	if (!(a = ui_find(raw_path)))
		return http_error(c, 404, NULL, "no such console file: %.200s", raw_path);
	snprintf(extra, sizeof(extra), "ETag: %s\r\n" UI_HEADERS, a->etag);
	inm = mg_get_header(c, "If-None-Match");
	if (inm && strstr(inm, a->etag))
		return http_send(c, 304, a->ctype, extra, NULL, 0);
	return http_send(c, 200, a->ctype, extra, (const char *)a->data, a->len);
}
