/* Private contract between clock.c (time), actors.c (the causal jump rule) and waits.c (the
 * interposed OS waits). Times are the run's virtual time (every process reads the same clock),
 * "host" times real CLOCK_MONOTONIC. */
#ifndef TW_ACTORS_H
#define TW_ACTORS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "timewarp/records.h"

/* ---- clock.c ---- */
int64_t tw_clock_host_ns(void);              /* real CLOCK_MONOTONIC */
/* Starts the clock's next segment at target (a jump); false when it already was there. */
bool tw_clock_advance_to(int64_t target_ns);
/* Host time a span of virtual time takes at the current rate (INT64_MAX while paused). */
int64_t tw_clock_host_span_ns(int64_t virtual_span_ns);
bool tw_clock_tracks_real_time(clockid_t id);
int64_t tw_clock_minus_mono_ns(clockid_t id);  /* clock id's reading minus CLOCK_MONOTONIC */
void tw_clock_spin_hint(int weight);         /* a yield or a zero-timeout poll (a read weighs 1) */
void tw_clock_spin_reset(void);              /* the thread entered a real wait */
/* issued_seq: tw_issued_seq() when the wait began, which orders it among the process's ops */
void tw_clock_record_wait(int64_t begin_ns, int64_t end_ns, int reason, uint32_t what_name_id, uint64_t issued_seq);

/* ---- actors.c ---- */
/* The calling thread's slot, registering it on first use (NULL if the table is full). */
tw_actor *tw_actor_self(void);
/* Marks the caller blocked (target < 0: indefinitely) and returns its slot. */
tw_actor *tw_actor_block(const char *label, int64_t target_ns, uint32_t flags);
void tw_actor_run(void);
/* What a blocked thread should do next. */
enum tw_jump_result {
    TW_JUMP_NONE = 0,      /* someone runs: they re-evaluate when they block */
    TW_JUMP_DONE = 1,      /* time advanced (or a target is already reached) */
    TW_JUMP_RETRY = 2      /* all blocked but not yet quiescent: try again in a few µs */
};
enum tw_jump_result tw_actors_try_jump(void);
/* Waits on the epoch word for at most host_timeout_ns (a jump or a kick wakes it); 0 or an
 * errno (EINTR when a signal came). */
int tw_actors_wait_epoch(uint32_t seen_epoch, int64_t host_timeout_ns);
/* A futex wait and wake on a word of this process (the emulator's own, not the program's) */
void tw_actors_wait_word(uint32_t *word, uint32_t seen, int64_t host_timeout_ns);
void tw_actors_wake_word(uint32_t *word);
uint32_t tw_actors_epoch(void);
/* Wake every epoch waiter to re-evaluate (a state they wait on changed). */
void tw_actors_kick(void);
/* The clock resumed after a pause during which waiters sized their sleeps: wake them to resize. */
void tw_actors_wake_sleepers(void);
/* A blocked slot (of any thread of this process) gets a target: it may wake on a jump to it. */
void tw_actor_set_target(tw_actor *slot, int64_t target_ns);
/* The calling thread is the emulator's own (a progress thread): never an actor. */
void tw_actor_exempt_self(void);
/* Starts such a thread without claiming an actor slot for it. */
int tw_thread_create_exempt(pthread_t *thread, void *(*fn)(void *), void *arg);
/* Checks for a run where every thread waits forever; reports it and ends the run. */
void tw_actors_check_deadlock(void);
/* Spin detection from clock.c decided the caller busy-polls (true) or works again (false). */
void tw_actor_set_spinning(bool spinning);

/* Set by the wake signal a jumper sends to a thread in an OS wait whose target it passed. */
extern __thread int tw_woken_by_jump;

/* ---- waits.c ---- */
/* Block until local virtual time reaches target (epoch waits): sleeps and GPU waits. With
 * interruptible, a signal ends the wait early and EINTR is returned; else 0. */
int tw_wait_virtual(int64_t target_ns, const char *label, bool interruptible);

/* Waits, as an interposed poll, until fd is readable or timeout_ns (virtual; -1: none) passes:
 * poll's result (1 ready, 0 timed out, -1 with errno). */
int tw_wait_fd_readable(int fd, int64_t timeout_ns, const char *label);

#define TW_SLICE_TIMED_NS (50 * 1000000LL)     /* longest real slice of a timed OS wait */
#define TW_SLICE_COND_NS (5 * 1000000LL)       /* condvars ignore the wake signal */
#define TW_SLICE_FOREVER_NS (250 * 1000000LL)  /* untimed waits: deadlock checks */
#define TW_RETRY_NS (20 * 1000LL)              /* re-check quiescence after this */
#define TW_BACKOFF_FIRST_NS (1000000LL)        /* first re-check while another thread runs */

#endif
