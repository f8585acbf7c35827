/*
 * node.c - the node's stop flag, interruptible sleeps, thread list, reply
 * budget, mode and own member record.
 *
 * Every background thread loops on node_sleep_ms(), which waits on
 * stop_cond with a deadline; node_request_stop() sets `stopping` and
 * broadcasts, so shutdown never waits for a sleep to run out.  The mode
 * and the reply budget are atomics: no lock.
 */
#include "node.h"

#include <errno.h>
#include <time.h>

#include "kvs.h"
#include "log.h"
#include "notify.h"
#include "version.h"

bool node_sleep_ms(struct kvs_node *node, int64_t ms)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&node->stop_lock);
	while (!atomic_load(&node->stopping)) {
		if (pthread_cond_timedwait(&node->stop_cond, &node->stop_lock, &until) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&node->stop_lock);
	return !atomic_load(&node->stopping);
}

void node_request_stop(struct kvs_node *node)
{
	pthread_mutex_lock(&node->stop_lock);
	atomic_store(&node->stopping, true);
	pthread_cond_broadcast(&node->stop_cond);
	pthread_mutex_unlock(&node->stop_lock);
}

int node_spawn(struct kvs_node *node, void *(*fn)(void *), const char *name)
{
	if (node->thread_count >= (int)(sizeof(node->threads) / sizeof(node->threads[0])))
		return KVS_ENOMEM;
	if (pthread_create(&node->threads[node->thread_count], NULL, fn, node) != 0)
		return KVS_ENOMEM;
	pthread_setname_np(node->threads[node->thread_count], name); /* best effort */
	node->thread_count++;
	return 0;
}

void node_join_threads(struct kvs_node *node)
{
	for (int i = 0; i < node->thread_count; i++)
		pthread_join(node->threads[i], NULL);
	node->thread_count = 0;
}

bool node_reply_take(struct kvs_node *node, int64_t bytes)
{
	int64_t held = atomic_fetch_add(&node->reply_bytes, bytes);

	if (held + bytes <= NODE_REPLY_BUDGET || held == 0)
		return true; /* the first reply always fits, whatever its size */
	atomic_fetch_sub(&node->reply_bytes, bytes);
	return false;
}

void node_reply_give(struct kvs_node *node, int64_t bytes)
{
	atomic_fetch_sub(&node->reply_bytes, bytes);
}

void node_set_mode(struct kvs_node *node, int mode)
{
	int old = atomic_exchange(&node->mode, mode);

	if (old != mode) {
		log_info("mode_change", "from=%s to=%s", node_mode_name(old), node_mode_name(mode));
		notify_status(node_mode_name(mode));
	}
}

void node_self_member(struct kvs_node *node, struct member *out)
{
	*out = node->self;
	out->last_seen = version_now_ms();
	out->status = atomic_load(&node->left) ? MEMBER_LEFT : MEMBER_ALIVE;
}
