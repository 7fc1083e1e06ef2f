/* bare.c - what the boards without any libc share: the start of the program, semihosting
   output and exit, the stack measurement, and the four memory functions GCC may call even in
   freestanding code. */
#include "board.h"

extern uint32_t __bss_start__[], __bss_end__[];
extern unsigned char __stack_limit[], __stack_top[];

/* Semihosting operations (the same numbers on Arm and RISC-V). */
#define SEMI_OPEN 0x01
#define SEMI_WRITE 0x05
#define SEMI_EXIT_EXTENDED 0x20
#define SEMI_APPLICATION_EXIT 0x20026

static uintptr_t semi_stdout;

void board_write(const char *s, size_t len) {
    uintptr_t args[3];
    if (!semi_stdout) {
        uintptr_t open_args[3] = {(uintptr_t)":tt", 4, 3}; /* ":tt" for writing: the host's stdout */
        semi_stdout = bare_semihost(SEMI_OPEN, open_args);
    }
    args[0] = semi_stdout, args[1] = (uintptr_t)s, args[2] = len;
    bare_semihost(SEMI_WRITE, args);
}

/* The stack is painted before the program runs; the deepest byte that lost its paint marks
   the peak. */
#define PAINT 0xA5

size_t board_stack_size(void) { return (size_t)(__stack_top - __stack_limit); }

size_t board_stack_used(void) {
    const volatile unsigned char *p = __stack_limit;
    while (p < __stack_top && *p == PAINT) p++;
    return (size_t)(__stack_top - (const unsigned char *)p);
}

void bare_exit(int status) {
    uintptr_t args[2];
    args[0] = SEMI_APPLICATION_EXIT, args[1] = (uintptr_t)status;
    bare_semihost(SEMI_EXIT_EXTENDED, args);
    for (;;) {
    }
}

void bare_start(void) {
    uint32_t *w;
    volatile unsigned char *p;
    /* all but the top 256 bytes, where the reset code is running */
    const unsigned char *paint_end = (const unsigned char *)((uintptr_t)__stack_top - 256);
    for (w = __bss_start__; w < __bss_end__; w++) *w = 0; /* QEMU loads .data in place */
    for (p = __stack_limit; p < paint_end; p++) *p = PAINT;
    bare_exit(firmware_main());
}

void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

void *memcpy(void *d, const void *s, size_t n) {
    unsigned char *a = (unsigned char *)d;
    const unsigned char *b = (const unsigned char *)s;
    while (n--) *a++ = *b++;
    return d;
}

void *memmove(void *d, const void *s, size_t n) {
    unsigned char *a = (unsigned char *)d;
    const unsigned char *b = (const unsigned char *)s;
    if (a < b) return memcpy(d, s, n);
    while (n--) a[n] = b[n];
    return d;
}

void *memset(void *d, int c, size_t n) {
    unsigned char *a = (unsigned char *)d;
    while (n--) *a++ = (unsigned char)c;
    return d;
}

int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
    for (; n; n--, x++, y++)
        if (*x != *y) return *x - *y;
    return 0;
}
