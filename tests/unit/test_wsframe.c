/* The WebSocket frame format (plugins/python-wsgi/wsframe.c): heads, masks, close codes. */
#include "qlnconfig.h"

#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "plugins/python-wsgi/wsframe.h"

static int
parse(const uint8_t *buf, size_t n, uint64_t max, struct ws_frame *f, int *why)
{
    *why = 0;
    return ws_frame_parse(buf, n, max, f, why);
}

START_TEST(test_small_masked_text)
{
    static const uint8_t frame[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                    0x7f, 0x9f, 0x4d, 0x51, 0x58}; /* RFC 6455 §5.7: "Hello" */
    uint8_t payload[5];
    struct ws_frame f;
    int why;

    ck_assert_int_eq(parse(frame, 1, 100, &f, &why), 0);
    ck_assert_int_eq(parse(frame, 5, 100, &f, &why), 0); /* the mask is not whole yet */
    ck_assert_int_eq(parse(frame, sizeof(frame), 100, &f, &why), 1);
    ck_assert(f.fin);
    ck_assert_uint_eq(f.opcode, WS_TEXT);
    ck_assert_uint_eq(f.len, 5);
    ck_assert_uint_eq(f.head_len, 6);
    memcpy(payload, frame + 6, 5);
    ws_unmask(payload, 5, f.mask, 0);
    ck_assert(memcmp(payload, "Hello", 5) == 0);
}
END_TEST

START_TEST(test_unmask_offset)
{
    static const uint8_t mask[4] = {1, 2, 3, 4};
    uint8_t a[10] = "abcdefghij", b[10];

    memcpy(b, a, 10);
    ws_unmask(b, 10, mask, 0);
    /* Unmasking in two pieces, the second from offset 3, gives the same bytes. */
    ws_unmask(a, 3, mask, 0);
    ws_unmask(a + 3, 7, mask, 3);
    ck_assert(memcmp(a, b, 10) == 0);
}
END_TEST

START_TEST(test_extended_lengths)
{
    uint8_t h16[] = {0x82, 0xfe, 0x01, 0x00, 1, 2, 3, 4};
    uint8_t h64[] = {0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4};
    struct ws_frame f;
    int why;

    ck_assert_int_eq(parse(h16, sizeof(h16), 1 << 20, &f, &why), 1);
    ck_assert_uint_eq(f.len, 256);
    ck_assert_uint_eq(f.head_len, 8);
    ck_assert_int_eq(parse(h64, sizeof(h64), 1 << 20, &f, &why), 1);
    ck_assert_uint_eq(f.len, 65536);
    ck_assert_uint_eq(f.head_len, 14);
    ck_assert_int_eq(parse(h64, sizeof(h64), 65535, &f, &why), -1);
    ck_assert_int_eq(why, WS_TOO_BIG);
    h64[2] = 0x80; /* the top bit of a 64-bit length */
    ck_assert_int_eq(parse(h64, sizeof(h64), UINT64_MAX, &f, &why), -1);
    ck_assert_int_eq(why, WS_PROTOCOL_ERROR);
}
END_TEST

START_TEST(test_protocol_errors)
{
    static const uint8_t unmasked[] = {0x81, 0x02, 'h', 'i'};
    static const uint8_t rsv[] = {0xc1, 0x80, 1, 2, 3, 4};
    static const uint8_t opcode[] = {0x83, 0x80, 1, 2, 3, 4};
    static const uint8_t frag_ping[] = {0x09, 0x80, 1, 2, 3, 4};
    static const uint8_t long_ping[] = {0x89, 0xfe, 0x00, 0x7e, 1, 2, 3, 4};
    const uint8_t *bad[] = {unmasked, rsv, opcode, frag_ping, long_ping};
    size_t len[] = {sizeof(unmasked), sizeof(rsv), sizeof(opcode), sizeof(frag_ping),
                    sizeof(long_ping)};
    struct ws_frame f;
    int why;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(parse(bad[i], len[i], 1 << 20, &f, &why), -1);
        ck_assert_int_eq(why, WS_PROTOCOL_ERROR);
    }
}
END_TEST

START_TEST(test_server_heads)
{
    uint8_t h[10];

    ck_assert_uint_eq(ws_frame_head(h, WS_TEXT, 5), 2);
    ck_assert_uint_eq(h[0], 0x81);
    ck_assert_uint_eq(h[1], 5);
    ck_assert_uint_eq(ws_frame_head(h, WS_BINARY, 300), 4);
    ck_assert_uint_eq(h[0], 0x82);
    ck_assert_uint_eq(h[1], 126);
    ck_assert_uint_eq(h[2] << 8 | h[3], 300);
    ck_assert_uint_eq(ws_frame_head(h, WS_BINARY, 70000), 10);
    ck_assert_uint_eq(h[1], 127);
    ck_assert_uint_eq((uint64_t)h[7] << 16 | (uint64_t)h[8] << 8 | h[9], 70000);
    ck_assert_uint_eq(ws_frame_head(h, WS_CLOSE, 2), 2);
    ck_assert_uint_eq(h[0], 0x88);
}
END_TEST

START_TEST(test_close_codes)
{
    ck_assert(ws_close_code_valid(1000));
    ck_assert(ws_close_code_valid(1011));
    ck_assert(ws_close_code_valid(4001));
    ck_assert(!ws_close_code_valid(999));
    ck_assert(!ws_close_code_valid(1005)); /* never sent in a frame */
    ck_assert(!ws_close_code_valid(1006));
    ck_assert(!ws_close_code_valid(2000));
    ck_assert(!ws_close_code_valid(5000));
}
END_TEST

static Suite *
wsframe_suite(void)
{
    Suite *s = suite_create("wsframe");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_small_masked_text);
    tcase_add_test(tc, test_unmask_offset);
    tcase_add_test(tc, test_extended_lengths);
    tcase_add_test(tc, test_protocol_errors);
    tcase_add_test(tc, test_server_heads);
    tcase_add_test(tc, test_close_codes);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(wsframe_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
