/*
 * The shared scoreboard (see scoreboard.h). Master creates and reads it;
 * each worker writes its own slot.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "scoreboard.h"

int
scoreboard_init(struct scoreboard *sb, size_t nslots)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t len = nslots * sizeof(struct scoreboard_slot);
    void *p;

    if (page <= 0)
        page = 4096;
    len = (len + (size_t)page - 1) / (size_t)page * (size_t)page;
    /* Anonymous shared memory survives fork in both directions and is
       zero-filled, which is every field's "unused" value. */
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    sb->slots = p;
    sb->nslots = nslots;
    sb->map_len = len;
    return 0;
}

void
scoreboard_fini(struct scoreboard *sb)
{
    if (sb->slots != NULL)
        munmap(sb->slots, sb->map_len);
    sb->slots = NULL;
    sb->nslots = 0;
    sb->map_len = 0;
}

struct scoreboard_slot *
scoreboard_claim(struct scoreboard *sb, int age, int64_t now_ms)
{
    size_t i;

    for (i = 0; i < sb->nslots; i++) {
        struct scoreboard_slot *s = &sb->slots[i];

        /* age doubles as the "taken" mark: the pid is only known after fork. */
        if (atomic_load(&s->age) != 0)
            continue;
        atomic_store(&s->pid, 0);
        atomic_store(&s->heartbeat_ms, now_ms);
        atomic_store(&s->requests, 0);
        atomic_store(&s->request_start_ms, 0);
        atomic_store(&s->active, 0);
        atomic_store(&s->ready, 0);
        for (size_t k = 0; k < SCOREBOARD_LANES; k++)
            atomic_store(&s->lane_start_ms[k], 0);
        atomic_store(&s->age, age);
        return s;
    }
    return NULL;
}

void
scoreboard_slot_set_pid(struct scoreboard_slot *slot, pid_t pid)
{
    atomic_store(&slot->pid, (int32_t)pid);
}

void
scoreboard_release(struct scoreboard_slot *slot)
{
    atomic_store(&slot->pid, 0);
    atomic_store(&slot->age, 0);
}

void
scoreboard_heartbeat(struct scoreboard_slot *slot, int64_t now_ms)
{
    atomic_store_explicit(&slot->heartbeat_ms, now_ms, memory_order_relaxed);
}

void
scoreboard_request_begin(struct scoreboard_slot *slot, int64_t now_ms)
{
    /* Under gthread several requests overlap; the slot shows the oldest
       one's start, which is what a "stuck request" report needs. */
    if (atomic_fetch_add(&slot->active, 1) == 0)
        atomic_store(&slot->request_start_ms, now_ms);
    atomic_store_explicit(&slot->heartbeat_ms, now_ms, memory_order_relaxed);
}

uint64_t
scoreboard_request_end(struct scoreboard_slot *slot, int64_t now_ms)
{
    uint64_t served;

    if (atomic_fetch_sub(&slot->active, 1) == 1)
        atomic_store(&slot->request_start_ms, 0);
    served = atomic_fetch_add_explicit(&slot->requests, 1, memory_order_relaxed) + 1;
    atomic_store_explicit(&slot->heartbeat_ms, now_ms, memory_order_relaxed);
    return served;
}

int64_t
scoreboard_heartbeat_ms(const struct scoreboard_slot *slot)
{
    return atomic_load_explicit(&slot->heartbeat_ms, memory_order_relaxed);
}

void
scoreboard_set_ready(struct scoreboard_slot *slot)
{
    atomic_store(&slot->ready, 1);
}

int
scoreboard_ready(const struct scoreboard_slot *slot)
{
    return (int)atomic_load(&slot->ready);
}

void
scoreboard_lane_begin(struct scoreboard_slot *slot, unsigned lane, int64_t now_ms)
{
    if (lane < SCOREBOARD_LANES)
        atomic_store(&slot->lane_start_ms[lane], now_ms);
}

void
scoreboard_lane_end(struct scoreboard_slot *slot, unsigned lane)
{
    if (lane < SCOREBOARD_LANES)
        atomic_store(&slot->lane_start_ms[lane], 0);
}

int64_t
scoreboard_oldest_request_ms(const struct scoreboard_slot *slot)
{
    int64_t oldest = 0, t;
    size_t k;

    for (k = 0; k < SCOREBOARD_LANES; k++) {
        t = atomic_load(&slot->lane_start_ms[k]);
        if (t != 0 && (oldest == 0 || t < oldest))
            oldest = t;
    }
    return oldest;
}

uint64_t
scoreboard_requests(const struct scoreboard_slot *slot)
{
    return atomic_load_explicit(&slot->requests, memory_order_relaxed);
}

uint32_t
scoreboard_active(const struct scoreboard_slot *slot)
{
    return atomic_load(&slot->active);
}
