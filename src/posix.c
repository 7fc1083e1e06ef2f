/* >>posix.c (being written) */
