/* >>replay.c (being written) */
