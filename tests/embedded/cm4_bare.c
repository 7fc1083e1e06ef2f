/* cm4_bare.c - a Cortex-M4F board without any libc (QEMU mps2-an386): the vector table, the
   reset handler and the semihosting call; the rest is bare.c. Link with cm4.ld, -nostdlib
   and -lgcc. */
#include "board.h"

extern unsigned char __stack_top[];

uintptr_t bare_semihost(uintptr_t op, const void *arg) {
    register uintptr_t r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void Reset_Handler(void);
void Reset_Handler(void) {
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20); /* CPACR: enable the FPU */
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    bare_start();
}

static void Fault_Handler(void) {
    board_write("fault\n", 6);
    bare_exit(99);
}

__attribute__((section(".vectors"), used)) static const uintptr_t vectors[16] = {
    (uintptr_t)__stack_top, (uintptr_t)Reset_Handler, (uintptr_t)Fault_Handler, (uintptr_t)Fault_Handler,
    (uintptr_t)Fault_Handler, (uintptr_t)Fault_Handler, (uintptr_t)Fault_Handler};
