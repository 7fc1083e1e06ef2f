/* >>json_schema.c (being written) */
