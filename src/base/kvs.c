/*
 * kvs.c - names for the KVS_E* error codes (see kvs.h).
 */
#include "kvs.h"

const char *kvs_strerror(int code)
{
	switch (code) {
	case KVS_OK: return "ok";
	case KVS_ENOMEM: return "out of memory";
	case KVS_EINVAL: return "invalid input";
	case KVS_ENOTFOUND: return "not found";
	case KVS_EIO: return "storage or I/O failure";
	case KVS_ESTALE: return "version not newer";
	case KVS_ECONFLICT: return "version conflict";
	case KVS_ETOOBIG: return "too large";
	case KVS_EPEER: return "peer failure";
	case KVS_ESTOPPED: return "node is stopping";
	case KVS_EPRECOND: return "precondition failed";
	case KVS_EAHEAD: return "timestamp too far ahead of this node's clock";
	}
	return "unknown error";
}
