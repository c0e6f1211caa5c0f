/*
 * Unit tests for core/scoreboard.c: slot life cycle, counters, and that a
 * child's writes are visible to the parent (the point of MAP_SHARED).
 */
#include "qlnconfig.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "core/scoreboard.h"

START_TEST(claim_until_full_then_reuse)
{
    struct scoreboard sb = {0};
    struct scoreboard_slot *a, *b, *c;

    ck_assert_int_eq(scoreboard_init(&sb, 2), 0);
    a = scoreboard_claim(&sb, 1, 100);
    b = scoreboard_claim(&sb, 2, 100);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_null(scoreboard_claim(&sb, 3, 100));
    scoreboard_release(a);
    c = scoreboard_claim(&sb, 3, 250);
    ck_assert_ptr_eq(c, a);
    ck_assert_int_eq(atomic_load(&c->age), 3);
    ck_assert_int_eq(scoreboard_heartbeat_ms(c), 250);
    scoreboard_fini(&sb);
    ck_assert_ptr_null(sb.slots);
}
END_TEST

START_TEST(claim_resets_previous_worker_state)
{
    struct scoreboard sb = {0};
    struct scoreboard_slot *s;

    ck_assert_int_eq(scoreboard_init(&sb, 1), 0);
    s = scoreboard_claim(&sb, 1, 10);
    scoreboard_slot_set_pid(s, 4242);
    scoreboard_request_begin(s, 20);
    scoreboard_request_end(s, 30);
    scoreboard_release(s);
    s = scoreboard_claim(&sb, 2, 40);
    ck_assert_int_eq(atomic_load(&s->pid), 0);
    ck_assert_uint_eq(atomic_load(&s->requests), 0);
    ck_assert_int_eq(atomic_load(&s->request_start_ms), 0);
    scoreboard_fini(&sb);
}
END_TEST

START_TEST(requests_are_counted_and_beat)
{
    struct scoreboard sb = {0};
    struct scoreboard_slot *s;

    ck_assert_int_eq(scoreboard_init(&sb, 4), 0);
    s = scoreboard_claim(&sb, 1, 0);
    scoreboard_request_begin(s, 100);
    ck_assert_int_eq(atomic_load(&s->request_start_ms), 100);
    ck_assert_int_eq(scoreboard_heartbeat_ms(s), 100);
    /* A second overlapping request (gthread) keeps the oldest start. */
    scoreboard_request_begin(s, 150);
    ck_assert_int_eq(atomic_load(&s->request_start_ms), 100);
    ck_assert_uint_eq(scoreboard_request_end(s, 200), 1);
    ck_assert_int_ne(atomic_load(&s->request_start_ms), 0);
    ck_assert_uint_eq(scoreboard_request_end(s, 300), 2);
    ck_assert_int_eq(atomic_load(&s->request_start_ms), 0);
    ck_assert_int_eq(scoreboard_heartbeat_ms(s), 300);
    scoreboard_heartbeat(s, 400);
    ck_assert_int_eq(scoreboard_heartbeat_ms(s), 400);
    scoreboard_fini(&sb);
}
END_TEST

START_TEST(child_writes_are_shared)
{
    struct scoreboard sb = {0};
    struct scoreboard_slot *s;
    pid_t pid;
    int status;

    ck_assert_int_eq(scoreboard_init(&sb, 8), 0);
    s = scoreboard_claim(&sb, 1, 5);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        scoreboard_heartbeat(s, 12345);
        scoreboard_request_begin(s, 12346);
        scoreboard_request_end(s, 12347);
        _exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(scoreboard_heartbeat_ms(s), 12347);
    ck_assert_uint_eq(atomic_load(&s->requests), 1);
    scoreboard_fini(&sb);
}
END_TEST

START_TEST(lanes_track_the_oldest_running_request)
{
    struct scoreboard sb;
    struct scoreboard_slot *s;

    ck_assert_int_eq(scoreboard_init(&sb, 2), 0);
    s = scoreboard_claim(&sb, 1, 10);
    ck_assert_int_eq(scoreboard_oldest_request_ms(s), 0);
    scoreboard_lane_begin(s, 0, 100);
    scoreboard_lane_begin(s, 1, 150);
    ck_assert_int_eq(scoreboard_oldest_request_ms(s), 100);
    /* The oldest ends while the other runs on: the answer moves to it. */
    scoreboard_lane_end(s, 0);
    ck_assert_int_eq(scoreboard_oldest_request_ms(s), 150);
    scoreboard_lane_begin(s, 0, 200);
    ck_assert_int_eq(scoreboard_oldest_request_ms(s), 150);
    scoreboard_lane_end(s, 1);
    ck_assert_int_eq(scoreboard_oldest_request_ms(s), 200);
    /* Lanes past the table are ignored, not written out of bounds. */
    scoreboard_lane_begin(s, SCOREBOARD_LANES, 50);
    ck_assert_int_eq(scoreboard_oldest_request_ms(s), 200);
    scoreboard_lane_end(s, 0);
    ck_assert_int_eq(scoreboard_oldest_request_ms(s), 0);
    /* A reused slot starts idle and not ready. */
    scoreboard_lane_begin(s, 3, 300);
    scoreboard_set_ready(s);
    ck_assert_int_eq(scoreboard_ready(s), 1);
    scoreboard_release(s);
    s = scoreboard_claim(&sb, 2, 400);
    ck_assert_int_eq(scoreboard_oldest_request_ms(s), 0);
    ck_assert_int_eq(scoreboard_ready(s), 0);
    scoreboard_fini(&sb);
}
END_TEST

static Suite *
scoreboard_suite(void)
{
    Suite *s = suite_create("scoreboard");
    TCase *tc = tcase_create("slots");

    tcase_add_test(tc, claim_until_full_then_reuse);
    tcase_add_test(tc, claim_resets_previous_worker_state);
    tcase_add_test(tc, requests_are_counted_and_beat);
    tcase_add_test(tc, child_writes_are_shared);
    tcase_add_test(tc, lanes_track_the_oldest_running_request);
    tcase_set_timeout(tc, 5);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(scoreboard_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
