/*
 * Unit tests for core/service.c: the registry plugins offer function tables
 * through, looked up by name and version.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <check.h>

#include <qilin/service.h>

struct fake_table {
    uint32_t size;
    int tag;
};

static const struct fake_table v1 = {.size = sizeof(v1), .tag = 1};
static const struct fake_table v2 = {.size = sizeof(v2), .tag = 2};

START_TEST(register_then_get_by_name_and_version)
{
    const struct fake_table *t;

    ck_assert_ptr_null(qln_service_get("demo.svc", 1));
    ck_assert_int_eq(qln_service_register("demo.svc", 1, &v1), 0);
    ck_assert_int_eq(qln_service_register("demo.svc", 2, &v2), 0);
    t = qln_service_get("demo.svc", 1);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->tag, 1);
    t = qln_service_get("demo.svc", 2);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->tag, 2);
    /* Another version or another name is a different service. */
    ck_assert_ptr_null(qln_service_get("demo.svc", 3));
    ck_assert_ptr_null(qln_service_get("demo", 1));
}
END_TEST

START_TEST(duplicate_is_refused_and_keeps_the_first)
{
    ck_assert_int_eq(qln_service_register("dup", 1, &v1), 0);
    ck_assert_int_eq(qln_service_register("dup", 1, &v2), -EEXIST);
    ck_assert_ptr_eq(qln_service_get("dup", 1), &v1);
}
END_TEST

START_TEST(full_registry_is_refused)
{
    static char names[64][16];
    int i, rc = 0;

    for (i = 0; i < 64 && rc == 0; i++) {
        snprintf(names[i], sizeof(names[i]), "svc%d", i);
        rc = qln_service_register(names[i], 1, &v1);
    }
    ck_assert_int_eq(rc, -ENOSPC);
    /* What fitted is still there. */
    ck_assert_ptr_eq(qln_service_get("svc0", 1), &v1);
}
END_TEST

static Suite *
service_suite(void)
{
    Suite *s = suite_create("service");
    TCase *tc = tcase_create("registry");

    tcase_set_timeout(tc, 5);
    tcase_add_test(tc, register_then_get_by_name_and_version);
    tcase_add_test(tc, duplicate_is_refused_and_keeps_the_first);
    tcase_add_test(tc, full_registry_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(service_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
