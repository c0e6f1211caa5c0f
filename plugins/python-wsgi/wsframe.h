/*
 * The WebSocket frame format (RFC 6455 §5): parsing the head of a frame a
 * client sent, unmasking its payload, and the head of a frame the server
 * sends. Pure C on byte buffers, no I/O and no Python; any thread.
 */
#ifndef QILIN_PYW_WSFRAME_H
#define QILIN_PYW_WSFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ws_opcode {
    WS_CONT = 0x0,
    WS_TEXT = 0x1,
    WS_BINARY = 0x2,
    WS_CLOSE = 0x8,
    WS_PING = 0x9,
    WS_PONG = 0xA,
};

/* Close codes (RFC 6455 §7.4.1) the server sends itself. */
enum ws_close {
    WS_NORMAL = 1000,
    WS_GOING_AWAY = 1001,
    WS_PROTOCOL_ERROR = 1002,
    WS_NO_STATUS = 1005,
    WS_ABNORMAL = 1006,
    WS_INVALID_DATA = 1007,
    WS_TOO_BIG = 1009,
    WS_INTERNAL_ERROR = 1011,
};

/* The head of one frame. */
struct ws_frame {
    bool fin;
    unsigned opcode; /* enum ws_opcode */
    uint8_t mask[4];
    uint64_t len;    /* payload bytes */
    size_t head_len; /* bytes of the head, mask included */
};

/*
 * Parses the head of a client frame at BUF[0, N). Returns 1 with F filled,
 * 0 when more bytes are needed, or -1 with *WHY the close code: 1002 for a
 * frame a client must not send (no mask, reserved bits without an agreed
 * extension, an unknown opcode, a control frame fragmented or longer than
 * 125 bytes, a length with its top bit set), 1009 for a payload longer
 * than MAX.
 */
int ws_frame_parse(const uint8_t *buf, size_t n, uint64_t max, struct ws_frame *f, int *why);

/* XORs P[0, N) with MASK, P[0] being byte OFFSET of the payload. */
void ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset);

/* Writes the head of an unmasked final frame (OPCODE, LEN payload bytes) to OUT;
   returns its size. */
size_t ws_frame_head(uint8_t out[10], unsigned opcode, uint64_t len);

/* True when a close code may appear in a close frame (RFC 6455 §7.4). */
bool ws_close_code_valid(unsigned code);

#endif
