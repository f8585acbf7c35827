/*
 * node.c - the node's stop flag, interruptible sleeps and thread list.
 *
 * Every background thread loops on node_sleep_ms(), which waits on
 * stop_cond with a deadline; node_request_stop() sets `stopping` and
 * broadcasts, so shutdown never waits for a sleep to run out.
 */
#include "node.h"

#include <errno.h>
#include <time.h>

#include "kvs.h"

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

int node_spawn(struct kvs_node *node, void *(*fn)(void *))
{
	if (node->thread_count >= (int)(sizeof(node->threads) / sizeof(node->threads[0])))
		return KVS_ENOMEM;
	if (pthread_create(&node->threads[node->thread_count], NULL, fn, node) != 0)
		return KVS_ENOMEM;
	node->thread_count++;
	return 0;
}

void node_join_threads(struct kvs_node *node)
{
	for (int i = 0; i < node->thread_count; i++)
		pthread_join(node->threads[i], NULL);
	node->thread_count = 0;
}
