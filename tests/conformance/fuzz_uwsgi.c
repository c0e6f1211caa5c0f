/*
 * libFuzzer target for the uwsgi packet decoder (core/uwsgi.c): arbitrary
 * bytes as the start of a uwsgi connection. A packet the decoder accepts is
 * written back as an HTTP head, which must fit the size the decoder
 * promised and be well framed (CRLF line ends only, one blank line at the
 * end), and is then parsed by the real HTTP parser as serve.c does, so the
 * two together are fuzzed. Built by `make fuzz-uwsgi` with clang
 * -fsanitize=fuzzer,address,undefined.
 */
#include "qlnconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/http.h"
#include "core/uwsgi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_limits lim = {.line = 8190, .fields = 100, .field_size = 8190};
    struct http_parser parser;
    struct uwsgi_packet p;
    size_t n, pos = 0, i;
    char *head;

    if (uwsgi_parse((const char *)data, size, &p) != UWSGI_DONE)
        return 0;
    if (p.len > size || p.len > UWSGI_PACKET_MAX)
        abort();
    head = malloc(uwsgi_http_head_size(&p));
    n = uwsgi_http_head(&p, head);
    if (n > uwsgi_http_head_size(&p) || n < 4 || memcmp(head + n - 4, "\r\n\r\n", 4) != 0)
        abort();
    for (i = 0; i + 4 < n; i++) {
        if ((head[i] == '\n' && (i == 0 || head[i - 1] != '\r')) ||
            (head[i] == '\r' && head[i + 1] != '\n') || head[i] == '\0')
            abort();
    }
    http_parser_init(&parser, &lim);
    http_parser_next(&parser);
    (void)http_parse(&parser, head, n, &pos);
    http_parser_fini(&parser);
    free(head);
    return 0;
}
