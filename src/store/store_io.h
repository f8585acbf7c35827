/*
 * store_io.h - the RocksDB calls of the store, as a table a test can
 * override: the failure-injection seam of practice 12 (SQLite's syscall
 * table, aSyscall[] in os_unix.c).
 *
 * store.c and store_walk.c make every RocksDB call that reads, writes or
 * walks the data through `store_io`, never directly: open, write (every
 * store_apply and purge), get, put (meta), flush, and the iterator calls.
 * The calls that only build options, batches and caches cannot fail and
 * stay direct.  By default the table holds the real RocksDB functions, so
 * the only cost is the indirect call.
 *
 * For tests: copy store_io_real, replace the entries to fail (a fake may
 * call the real one for the calls it lets through), point store_io at the
 * copy, and point it back at &store_io_real afterwards.  An injected error
 * is reported the way RocksDB reports one: *errptr set to a string the
 * store releases with free() (strdup() one), or for iterators
 * iter_valid() false and then iter_get_error() setting *errptr.
 *
 * Threads: the pointer and the table are read without a lock by every
 * thread that uses a store.  Change them only while no other thread can
 * call the store (before store_open or before the threads that use it
 * start, e.g. http_start); a fake that must change its behaviour later
 * does so through its own atomics.
 */
#ifndef KVS_STORE_IO_H
#define KVS_STORE_IO_H

#include <stddef.h>

#include <rocksdb/c.h>

/* Each entry has the signature of the rocksdb_* function of the same name
 * (rocksdb/c.h is their manual). */
struct store_io {
	rocksdb_t *(*open_column_families)(const rocksdb_options_t *opts, const char *name,
					   int num_cf, const char *const *cf_names,
					   const rocksdb_options_t *const *cf_opts,
					   rocksdb_column_family_handle_t **handles, char **errptr);
	void (*write)(rocksdb_t *db, const rocksdb_writeoptions_t *opts,
		      rocksdb_writebatch_t *batch, char **errptr);
	char *(*get_cf)(rocksdb_t *db, const rocksdb_readoptions_t *opts,
			rocksdb_column_family_handle_t *cf, const char *key, size_t klen,
			size_t *vlen, char **errptr);
	void (*put_cf)(rocksdb_t *db, const rocksdb_writeoptions_t *opts,
		       rocksdb_column_family_handle_t *cf, const char *key, size_t klen,
		       const char *val, size_t vlen, char **errptr);
	void (*flush_cf)(rocksdb_t *db, const rocksdb_flushoptions_t *opts,
			 rocksdb_column_family_handle_t *cf, char **errptr);
	rocksdb_iterator_t *(*create_iterator_cf)(rocksdb_t *db,
						  const rocksdb_readoptions_t *opts,
						  rocksdb_column_family_handle_t *cf);
	void (*iter_seek)(rocksdb_iterator_t *it, const char *key, size_t klen);
	void (*iter_seek_for_prev)(rocksdb_iterator_t *it, const char *key, size_t klen);
	void (*iter_seek_to_first)(rocksdb_iterator_t *it);
	void (*iter_seek_to_last)(rocksdb_iterator_t *it);
	unsigned char (*iter_valid)(const rocksdb_iterator_t *it);
	void (*iter_next)(rocksdb_iterator_t *it);
	void (*iter_prev)(rocksdb_iterator_t *it);
	const char *(*iter_key)(const rocksdb_iterator_t *it, size_t *klen);
	const char *(*iter_value)(const rocksdb_iterator_t *it, size_t *vlen);
	void (*iter_get_error)(const rocksdb_iterator_t *it, char **errptr);
	void (*iter_destroy)(rocksdb_iterator_t *it);
};

/* The real RocksDB functions. */
extern const struct store_io store_io_real;

/* The table every store call goes through; &store_io_real unless a test
 * points it elsewhere (see above). */
extern const struct store_io *store_io;

#endif
