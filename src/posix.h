/* >>posix.h (being written) */
