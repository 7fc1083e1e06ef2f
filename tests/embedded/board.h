/* board.h - what firmware.c needs from the board it runs on. One file per board implements
   it: cm4_bare.c (Cortex-M4, no libc), cm4_newlib.c (Cortex-M4, newlib-nano), rv32_bare.c
   (RISC-V, no libc) and ../test_embedded.c (the development machine). */
#ifndef AK_BOARD_H
#define AK_BOARD_H

#include <stddef.h>
#include <stdint.h>

/* Writes len bytes of text to the host (semihosting on the boards). */
void board_write(const char *s, size_t len);
/* Bytes of stack the program has used so far (the deepest write below the stack top), or 0
   when the board cannot tell. */
size_t board_stack_used(void);
/* Bytes the board reserves for the stack (0 when it cannot tell). */
size_t board_stack_size(void);
/* The program: returns the exit status the board reports to the host. */
int firmware_main(void);

/* Boards without libc (cm4_bare.c, rv32_bare.c) share bare.c: the reset code of the
   architecture calls bare_start(), which zeroes .bss, paints the stack, runs the program and
   reports its status with bare_exit(); bare.c needs the architecture's semihosting call (op,
   argument block) and the linker symbols __bss_start__, __bss_end__, __stack_limit and
   __stack_top. */
void bare_start(void);
void bare_exit(int status);
uintptr_t bare_semihost(uintptr_t op, const void *arg);

#endif
