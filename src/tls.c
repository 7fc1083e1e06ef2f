/* >>tls.c (being written) */
