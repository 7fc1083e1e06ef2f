/* rv32_bare.c - a RISC-V board without any libc (RV32IMAC, the memory map of QEMU's virt
   machine): the entry point and the semihosting call; the rest is bare.c. Link with rv32.ld,
   -nostdlib and -lgcc. CI links this board for the size table but has no RISC-V emulator
   to run it. */
#include "board.h"

__asm__(".section .text.start\n"
        ".globl _start\n"
        "_start:\n"
        "  la sp, __stack_top\n"
        "  call bare_start\n"
        "1: j 1b\n");

/* The RISC-V convention: an ebreak between two marker instructions, uncompressed and in one
   page. */
uintptr_t bare_semihost(uintptr_t op, const void *arg) {
    register uintptr_t a0 __asm("a0") = op;
    register const void *a1 __asm("a1") = arg;
    __asm volatile(".option push\n.option norvc\n.balign 16\n"
                   "slli x0, x0, 0x1f\nebreak\nsrai x0, x0, 7\n"
                   ".option pop"
                   : "+r"(a0)
                   : "r"(a1)
                   : "memory");
    return a0;
}
