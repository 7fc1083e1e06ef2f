/* >>replay.h (being written) */
