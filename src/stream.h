/* >>stream.h (being written) */
