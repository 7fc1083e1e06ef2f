/* >>stream.c (being written) */
