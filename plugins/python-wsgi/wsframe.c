/* The WebSocket frame format (wsframe.h). */
#include "qlnconfig.h"

#include <string.h>

#include "wsframe.h"

int
ws_frame_parse(const uint8_t *buf, size_t n, uint64_t max, struct ws_frame *f, int *why)
{
    size_t need = 2;
    uint64_t len;
    unsigned i;

    if (n < 2)
        return 0;
    f->fin = (buf[0] & 0x80) != 0;
    f->opcode = buf[0] & 0x0f;
    len = buf[1] & 0x7f;
    *why = WS_PROTOCOL_ERROR;
    if ((buf[0] & 0x70) != 0 || (buf[1] & 0x80) == 0)
        return -1; /* reserved bits (no extension was agreed), or an unmasked client frame */
    switch (f->opcode) {
    case WS_CONT:
    case WS_TEXT:
    case WS_BINARY:
        break;
    case WS_CLOSE:
    case WS_PING:
    case WS_PONG:
        if (!f->fin || len > 125)
            return -1;
        break;
    default:
        return -1;
    }
    if (len == 126)
        need += 2;
    else if (len == 127)
        need += 8;
    need += 4;
    if (n < need)
        return 0;
    if (len == 126) {
        len = (uint64_t)buf[2] << 8 | buf[3];
    } else if (len == 127) {
        len = 0;
        for (i = 0; i < 8; i++)
            len = len << 8 | buf[2 + i];
        if (len >> 63)
            return -1;
    }
    if (len > max) {
        *why = WS_TOO_BIG;
        return -1;
    }
    memcpy(f->mask, buf + need - 4, 4);
    f->len = len;
    f->head_len = need;
    return 1;
}

void
ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset)
{
    size_t i;

    for (i = 0; i < n; i++)
        p[i] ^= mask[(offset + i) & 3];
}

size_t
ws_frame_head(uint8_t out[10], unsigned opcode, uint64_t len)
{
    unsigned i;

    out[0] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

bool
ws_close_code_valid(unsigned code)
{
    if (code >= 3000 && code <= 4999)
        return true; /* registered and private codes */
    return code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006;
}
