/* JSONTestSuite (../shared/testdata/JSONTestSuite/test_parsing): every y_ file accepted,
   every n_ file rejected, every i_ file parsed or rejected without crashing; accepted
   documents must survive write -> parse -> equal. One test per file. */
#include "test.h"
#include <dirent.h>

static char path[4096];

static void check_file(const char *name) {
    size_t len;
    char *text;
    ak_json_doc d, d2;
    ak_error e;
    ak_result rc;
    t_alloc ta;
    snprintf(path, sizeof path, "%s/testdata/JSONTestSuite/test_parsing/%s", t_shared(), name);
    text = t_read_file(path, &len);
    CHECK_MSG(text != NULL, "cannot read %s", path);
    if (!text) return;
    ak_json_doc_init(&d, t_alloc_init(&ta, 0));
    rc = ak_json_parse(&d, text, len, &e);
    if (name[0] == 'y') CHECK_MSG(rc == AK_OK, "%s rejected: %s", name, e.message);
    if (name[0] == 'n') CHECK_MSG(rc != AK_OK, "%s accepted", name);
    if (rc == AK_OK) {
        ak_buf b;
        ak_buf_init(&b, NULL);
        CHECK_OK(ak_json_write(d.root, &b));
        ak_json_doc_init(&d2, NULL);
        CHECK_MSG(ak_json_parse(&d2, b.ptr, b.len, &e) == AK_OK, "%s: rewrite does not parse", name);
        CHECK_MSG(ak_json_equal(d.root, d2.root), "%s: rewrite differs", name);
        ak_json_doc_free(&d2);
        ak_buf_free(&b);
    }
    ak_json_doc_free(&d);
    CHECK_EQ(ta.live, 0);
    free(text);
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(void) {
    char dir[4096], *names[1024];
    int n = 0, i;
    DIR *dp;
    struct dirent *de;
    snprintf(dir, sizeof dir, "%s/testdata/JSONTestSuite/test_parsing", t_shared());
    dp = opendir(dir);
    if (!dp) {
        fprintf(stderr, "cannot open %s\n", dir);
        return t_summary() | 1;
    }
    while ((de = readdir(dp)) != NULL && n < 1024)
        if (strstr(de->d_name, ".json")) names[n++] = strdup(de->d_name);
    closedir(dp);
    qsort(names, (size_t)n, sizeof names[0], cmp);
    for (i = 0; i < n; i++) {
        t_current = names[i];
        t_current_failed = 0;
        check_file(names[i]);
        if (t_current_failed) t_failed++;
        else t_passed++;
        free(names[i]);
    }
    if (n < 300) { fprintf(stderr, "only %d files found\n", n); t_failed++; }
    return t_summary();
}
