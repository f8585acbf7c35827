/*
 * peer_io.h - the libcurl transfer of peer.c, as a table a test can
 * override: the failure-injection seam of practice 12 (SQLite's syscall
 * table), the peer-side twin of store_io.h.
 *
 * peer_request() sets the request up on the thread's easy handle, then
 * makes the transfer through `peer_io->perform`, never by calling
 * curl_easy_perform() directly; the real entry performs the transfer and
 * reads the HTTP status.  The only cost is the indirect call.
 *
 * For tests: copy peer_io_real, replace perform with a fake, point peer_io
 * at the copy, and back at &peer_io_real afterwards.  A fake stands for
 * the whole exchange: it sees the request (struct peer_call), returns a
 * CURLcode (CURLE_OK when an answer came, e.g. CURLE_COULDNT_CONNECT or
 * CURLE_OPERATION_TIMEDOUT when none did), sets *status (the HTTP status;
 * left 0 when there was no answer) and may append a reply body to reply
 * with buf_add() (past the buffer's cap, return CURLE_WRITE_ERROR as
 * libcurl would); it may also call peer_io_real.perform to let a request
 * through to a real server.
 *
 * Threads: the pointer and the table are read without a lock by every
 * thread that sends to peers.  Change them only before those threads start
 * (or while none runs); a fake that must change its behaviour later does
 * so through its own atomics.
 */
#ifndef KVS_PEER_IO_H
#define KVS_PEER_IO_H

#include <curl/curl.h>

#include "buf.h"

/* The request set up on the handle, as peer_request() was given it;
 * borrowed for the call. */
struct peer_call {
	const char *url;     /* scheme://host:port/path?query */
	const char *method;  /* "GET", "POST", ... */
	const char *body;    /* NULL for none */
	size_t len;          /* bytes of body */
};

struct peer_io {
	/* Performs the transfer call set up on h; on CURLE_OK *status is the
	 * HTTP status.  The body goes to reply (h's write callback appends
	 * it; the buffer's cap ends the transfer with an error). */
	CURLcode (*perform)(CURL *h, const struct peer_call *call, struct buf *reply,
			    long *status);
};

/* The real libcurl transfer. */
extern const struct peer_io peer_io_real;

/* The table peer_request() goes through; &peer_io_real unless a test
 * points it elsewhere (see above). */
extern const struct peer_io *peer_io;

#endif
