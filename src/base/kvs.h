/*
 * kvs.h - project-wide constants and error codes.
 *
 * Every action in kvs returns 0 or one of the negative KVS_E* codes below;
 * kvs_strerror() names them for logs and JSON errors.  Predicates return
 * bool, constructors a pointer or NULL.
 */
#ifndef KVS_H
#define KVS_H

#define KVS_VERSION "0.1.0"

enum kvs_err {
	KVS_OK = 0,
	KVS_ENOMEM = -1,    /* allocation failed */
	KVS_EINVAL = -2,    /* malformed input */
	KVS_ENOTFOUND = -3, /* no such key (or only a tombstone) */
	KVS_EIO = -4,       /* storage or system failure */
	KVS_ESTALE = -5,    /* remote version not newer than ours: ignored */
	KVS_ECONFLICT = -6, /* same timestamp, other UUID */
	KVS_ETOOBIG = -7,   /* over a configured cap */
	KVS_EPEER = -8,     /* peer unreachable or answered an error */
	KVS_ESTOPPED = -9,  /* node is shutting down */
	KVS_EPRECOND = -10, /* a write's condition (If-Match, ...) does not hold */
	KVS_EAHEAD = -11,   /* a peer's version is stamped too far ahead of our clock */
};

/* Returns a static string naming code (never NULL). */
const char *kvs_strerror(int code);

#endif
