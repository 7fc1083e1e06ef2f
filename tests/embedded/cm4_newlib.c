/* cm4_newlib.c - a Cortex-M4F board with newlib-nano and semihosting (rdimon), as a hosted
   firmware SDK would have it (QEMU mps2-an386): the vector table and a reset handler that
   enables the FPU and enters newlib's crt0, which calls main() and exit(). Output through
   stdio. Link with cm4.ld, --specs=nano.specs --specs=rdimon.specs. */
#include "board.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

extern void _start(void);
extern char __stack_top[];

void board_write(const char *s, size_t len) { fwrite(s, 1, len, stdout); }
/* crt0 moves the stack to where QEMU says RAM ends: not measured on this board */
size_t board_stack_used(void) { return 0; }
size_t board_stack_size(void) { return 0; }

int main(void) {
    int rc = firmware_main();
    fflush(stdout);
    return rc;
}

void Reset_Handler(void);
void Reset_Handler(void) {
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20); /* CPACR: enable the FPU */
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    _start();
}

static void Fault_Handler(void) {
    fputs("fault\n", stdout);
    fflush(stdout);
    exit(99);
}

__attribute__((section(".vectors"), used)) static const uintptr_t vectors[16] = {
    (uintptr_t)__stack_top, (uintptr_t)Reset_Handler, (uintptr_t)Fault_Handler, (uintptr_t)Fault_Handler,
    (uintptr_t)Fault_Handler, (uintptr_t)Fault_Handler, (uintptr_t)Fault_Handler};
