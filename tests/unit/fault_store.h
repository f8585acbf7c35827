/*
 * fault_store.h - a faulty RocksDB for unit tests, through the store's seam
 * (src/store/store_io.h): a copy of the real table whose write, get, put,
 * open and iterator entries fail on demand and otherwise call the real
 * RocksDB.  Included by the test files that make the store fail
 * (test_store_fault.c, test_api_fault.c); one copy per test binary.
 *
 * Switches (atomics: HTTP worker threads read them while a test sets them):
 *   fault_write      every write (store_apply, purge) fails, nothing written
 *   fault_get        every point read (records and meta) fails
 *   fault_put        every meta put fails
 *   fault_open       opening the database fails
 *   fault_walk_after each iterator created from now on stops after this
 *                    many iter_valid() calls with an I/O error (-1: never)
 * Counters: fault_writes_tried (write calls, failed or not).
 *
 * fault_store_install() points store_io at the faulty table with every
 * switch off; call it before the store's threads start (store_io.h).
 * fault_store_reset() turns every switch off again.
 */
#ifndef KVS_TEST_FAULT_STORE_H
#define KVS_TEST_FAULT_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "store_io.h"

static atomic_bool fault_write, fault_get, fault_put, fault_open;
static _Atomic int fault_walk_after = -1;
static _Atomic int fault_writes_tried;

/* Per thread: a store walk uses one iterator at a time on its thread. */
static _Thread_local int walk_left = -1;   /* valid() calls before the failure */
static _Thread_local bool walk_failed;     /* the iterator ended on the failure */

/* An error string as RocksDB hands one out: the store free()s it. */
static void fault_set_error(char **errptr, const char *what)
{
	*errptr = strdup(what);
}

static rocksdb_t *fault_open_cf(const rocksdb_options_t *opts, const char *name, int num_cf,
				const char *const *cf_names,
				const rocksdb_options_t *const *cf_opts,
				rocksdb_column_family_handle_t **handles, char **errptr)
{
	if (atomic_load(&fault_open)) {
		fault_set_error(errptr, "IO error: injected open failure");
		return NULL;
	}
	return store_io_real.open_column_families(opts, name, num_cf, cf_names, cf_opts, handles,
						  errptr);
}

static void fault_do_write(rocksdb_t *db, const rocksdb_writeoptions_t *opts,
			   rocksdb_writebatch_t *batch, char **errptr)
{
	atomic_fetch_add(&fault_writes_tried, 1);
	if (atomic_load(&fault_write)) {
		fault_set_error(errptr, "IO error: No space left on device (injected)");
		return;
	}
	store_io_real.write(db, opts, batch, errptr);
}

static char *fault_get_cf(rocksdb_t *db, const rocksdb_readoptions_t *opts,
			  rocksdb_column_family_handle_t *cf, const char *key, size_t klen,
			  size_t *vlen, char **errptr)
{
	if (atomic_load(&fault_get)) {
		fault_set_error(errptr, "IO error: injected read failure");
		return NULL;
	}
	return store_io_real.get_cf(db, opts, cf, key, klen, vlen, errptr);
}

static void fault_put_cf(rocksdb_t *db, const rocksdb_writeoptions_t *opts,
			 rocksdb_column_family_handle_t *cf, const char *key, size_t klen,
			 const char *val, size_t vlen, char **errptr)
{
	if (atomic_load(&fault_put)) {
		fault_set_error(errptr, "IO error: injected put failure");
		return;
	}
	store_io_real.put_cf(db, opts, cf, key, klen, val, vlen, errptr);
}

static rocksdb_iterator_t *fault_create_iterator(rocksdb_t *db,
						 const rocksdb_readoptions_t *opts,
						 rocksdb_column_family_handle_t *cf)
{
	walk_left = atomic_load(&fault_walk_after);
	walk_failed = false;
	return store_io_real.create_iterator_cf(db, opts, cf);
}

static unsigned char fault_iter_valid(const rocksdb_iterator_t *it)
{
	if (walk_failed)
		return 0;
	if (walk_left >= 0 && walk_left-- == 0) {
		walk_failed = true;
		return 0;
	}
	return store_io_real.iter_valid(it);
}

static void fault_iter_get_error(const rocksdb_iterator_t *it, char **errptr)
{
	if (walk_failed) {
		walk_failed = false;
		fault_set_error(errptr, "Corruption: injected block checksum mismatch");
		return;
	}
	store_io_real.iter_get_error(it, errptr);
}

static struct store_io fault_table;

static void fault_store_reset(void)
{
	atomic_store(&fault_write, false);
	atomic_store(&fault_get, false);
	atomic_store(&fault_put, false);
	atomic_store(&fault_open, false);
	atomic_store(&fault_walk_after, -1);
}

static void fault_store_install(void)
{
	fault_table = store_io_real;
	fault_table.open_column_families = fault_open_cf;
	fault_table.write = fault_do_write;
	fault_table.get_cf = fault_get_cf;
	fault_table.put_cf = fault_put_cf;
	fault_table.create_iterator_cf = fault_create_iterator;
	fault_table.iter_valid = fault_iter_valid;
	fault_table.iter_get_error = fault_iter_get_error;
	fault_store_reset();
	store_io = &fault_table;
}

#endif
