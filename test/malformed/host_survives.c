/* An embedder's view of bad input: every malformed module and every request
 * that cannot be met comes back from the C API as a status naming what is
 * wrong, and the host process carries on to the next call.
 *
 *   gemmac_host_survives GOOD.gmc BAD.gmc... [checksum=BAD.gmc]...
 *
 * Prints one line per refusal and "host alive" at the end; exits 1 when a
 * call succeeded that should not have, or a message lacks what it names. */
#include <stdio.h>
#include <string.h>

#include "gemmac/runtime.h"

static int failures = 0;

/* Expects `st` to be an error whose message contains `fragment`. */
static void expect_error(gemmac_status *st, const char *what,
                         const char *fragment) {
  if (st == NULL) {
    printf("FAIL %s: succeeded, expected an error\n", what);
    ++failures;
    return;
  }
  const char *msg = gemmac_status_message(st);
  if (strstr(msg, fragment) == NULL) {
    printf("FAIL %s: message \"%s\" lacks \"%s\"\n", what, msg, fragment);
    ++failures;
  } else {
    printf("refused %s: %s\n", what, msg);
  }
  gemmac_status_free(st);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s GOOD.gmc BAD.gmc... [checksum=BAD.gmc]...\n",
            argv[0]);
    return 2;
  }
  gemmac_runtime_options ro;
  memset(&ro, 0, sizeof(ro));
  ro.struct_size = sizeof(ro);
  ro.search_plugins = 1;
  gemmac_runtime *rt = NULL;
  gemmac_status *st = gemmac_runtime_create(&ro, &rt);
  if (st != NULL) {
    printf("FAIL runtime: %s\n", gemmac_status_message(st));
    gemmac_status_free(st);
    return 1;
  }

  for (int i = 2; i < argc; ++i) {
    gemmac_module *bad = NULL;
    if (strncmp(argv[i], "checksum=", 9) == 0) {
      /* Loads (checksums are opt-in: they read every weight), then fails
       * the check. */
      const char *path = argv[i] + 9;
      st = gemmac_module_load(rt, path, &bad);
      if (st != NULL) {
        printf("FAIL %s: %s\n", path, gemmac_status_message(st));
        gemmac_status_free(st);
        ++failures;
        continue;
      }
      expect_error(gemmac_module_verify_checksums(bad), path,
                   "checksum mismatch");
      gemmac_module_release(bad);
      continue;
    }
    expect_error(gemmac_module_load(rt, argv[i], &bad), argv[i], argv[i]);
    if (bad != NULL) {
      printf("FAIL %s: a module came back with the error\n", argv[i]);
      ++failures;
      gemmac_module_release(bad);
    }
  }

  gemmac_module *m = NULL;
  st = gemmac_module_load(rt, argv[1], &m);
  if (st != NULL) {
    printf("FAIL %s: %s\n", argv[1], gemmac_status_message(st));
    gemmac_status_free(st);
    gemmac_runtime_release(rt);
    return 1;
  }

  gemmac_session_options so;
  memset(&so, 0, sizeof(so));
  so.struct_size = sizeof(so);
  so.batch_size = 1;
  so.context_length = 100000000;
  gemmac_session *s = NULL;
  expect_error(gemmac_session_create(rt, m, &so, &s), "context 100000000",
               "exceeds the model's max_context");

  so.context_length = 16;
  st = gemmac_session_create(rt, m, &so, &s);
  if (st != NULL) {
    printf("FAIL session: %s\n", gemmac_status_message(st));
    gemmac_status_free(st);
    ++failures;
  } else {
    expect_error(gemmac_session_generate(s, NULL, 4, NULL, NULL),
                 "generate on an empty session", "the session is empty");
    int32_t ids[64];
    for (int i = 0; i < 64; ++i)
      ids[i] = 5;
    expect_error(gemmac_session_append_tokens(s, ids, 64),
                 "64 tokens into a context of 16", "context full");
    int32_t bad_id = 1 << 30;
    expect_error(gemmac_session_append_tokens(s, &bad_id, 1), "token id 2^30",
                 "1073741824");
    gemmac_session_release(s);
  }
  gemmac_module_release(m);
  gemmac_runtime_release(rt);
  printf("host alive\n");
  return failures == 0 ? 0 : 1;
}
