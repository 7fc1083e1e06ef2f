/* >>json_patch.c (being written) */
