/* Process-level setup: fork handlers so a child gets its own trace, names and connection. */
#include <pthread.h>

#include "tw_core.h"

static void after_fork_in_child(void)
{
    tw_timeline_after_fork();
    tw_channel_after_fork();
    tw_coll_after_fork();
    tw_ipc_after_fork();
    tw_mem_after_fork();
    tw_names_after_fork();
    tw_trace_after_fork();
}

__attribute__((constructor(102))) static void init_process(void)
{
    pthread_atfork(NULL, NULL, after_fork_in_child);
    tw_config_get();
    tw_trace_start();
}
