/*
 * The scoreboard: one shared anonymous mapping made by the master before
 * the first fork, one slot per worker. A worker writes only its own slot
 * (heartbeat, counters); the master reads every slot (timeouts, stats).
 * Fields are C11 atomics, so no lock is shared between processes.
 */
#ifndef QILIN_CORE_SCOREBOARD_H
#define QILIN_CORE_SCOREBOARD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Serving threads per worker whose requests --request-timeout can watch. */
#define SCOREBOARD_LANES 64

struct scoreboard_slot {
    _Atomic int32_t pid;              /* 0: free */
    _Atomic int32_t age;              /* spawn order, as gunicorn's worker.age */
    _Atomic int64_t heartbeat_ms;     /* last sign of life, util_now_ms() clock */
    _Atomic uint64_t requests;        /* requests served since the worker started */
    _Atomic int64_t request_start_ms; /* start of the oldest running request; 0: idle */
    _Atomic uint32_t active;          /* requests running now (several under gthread) */
    _Atomic uint32_t ready;           /* the worker loaded the app and is about to serve */
    _Atomic int64_t lane_start_ms[SCOREBOARD_LANES]; /* per thread: its request's start; 0: idle */
};

struct scoreboard {
    struct scoreboard_slot *slots;
    size_t nslots;
    size_t map_len;
};

/*
 * Maps NSLOTS zeroed slots (MAP_SHARED | MAP_ANONYMOUS). Master, before the
 * first fork. Returns 0 or -errno (mmap's).
 */
int scoreboard_init(struct scoreboard *sb, size_t nslots);
/* Unmaps; safe on a zeroed or already finished scoreboard. */
void scoreboard_fini(struct scoreboard *sb);

/*
 * Master: takes a free slot for a worker about to be forked, with AGE and a
 * heartbeat of NOW_MS (so boot time counts against `timeout`, as in
 * gunicorn). PID stays 0 until scoreboard_slot_set_pid(). NULL when full.
 */
struct scoreboard_slot *scoreboard_claim(struct scoreboard *sb, int age, int64_t now_ms);
/* Master: records the forked child's pid in SLOT. */
void scoreboard_slot_set_pid(struct scoreboard_slot *slot, pid_t pid);
/* Master: frees SLOT after its worker was reaped. */
void scoreboard_release(struct scoreboard_slot *slot);

/* Worker (any thread): marks SLOT alive at NOW_MS. */
void scoreboard_heartbeat(struct scoreboard_slot *slot, int64_t now_ms);
/*
 * Worker (any thread): a request starts / ends at NOW_MS. Ending counts it
 * as served and returns the new count (each caller sees a distinct value).
 */
void scoreboard_request_begin(struct scoreboard_slot *slot, int64_t now_ms);
uint64_t scoreboard_request_end(struct scoreboard_slot *slot, int64_t now_ms);

/* Worker: marks SLOT ready to serve (app loaded). Master: reads it. */
void scoreboard_set_ready(struct scoreboard_slot *slot);
int scoreboard_ready(const struct scoreboard_slot *slot);

/*
 * Worker: the thread serving in LANE (0.. SCOREBOARD_LANES - 1; others are
 * ignored) starts a request at NOW_MS / ends it. Master: the start of the
 * oldest request running in any lane, 0 when none. Unlike
 * request_start_ms, exact with overlapping requests (gthread).
 */
void scoreboard_lane_begin(struct scoreboard_slot *slot, unsigned lane, int64_t now_ms);
void scoreboard_lane_end(struct scoreboard_slot *slot, unsigned lane);
int64_t scoreboard_oldest_request_ms(const struct scoreboard_slot *slot);

/* Master: requests served so far / running now (stats). */
uint64_t scoreboard_requests(const struct scoreboard_slot *slot);
uint32_t scoreboard_active(const struct scoreboard_slot *slot);

/* Master: the last heartbeat of SLOT. */
int64_t scoreboard_heartbeat_ms(const struct scoreboard_slot *slot);

#endif
