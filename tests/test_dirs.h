/* test_dirs.h - scratch directories for the tests that use real files (POSIX). */
#ifndef AK_TEST_DIRS_H
#define AK_TEST_DIRS_H

#include "test.h"
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

/* Makes a fresh directory named NAME-XXXXXX under $TMPDIR (else /tmp) into out. */
T_UNUSED static void t_make_dir(char *out, size_t cap, const char *name) {
    const char *tmp = getenv("TMPDIR");
    snprintf(out, cap, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
    if (!mkdtemp(out)) abort();
}

/* Deletes a file or a directory tree. */
T_UNUSED static void t_rm_rf(const char *path) {
    DIR *d = opendir(path);
    struct dirent *e;
    if (!d) {
        unlink(path);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char sub[1024];
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        t_rm_rf(sub);
    }
    closedir(d);
    rmdir(path);
}

#endif
