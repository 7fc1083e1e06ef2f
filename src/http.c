/* >>http.c (being written) */
